//! The Hugging Face DETR image processor: output size rule and the two processors' resize and
//! normalisation.
