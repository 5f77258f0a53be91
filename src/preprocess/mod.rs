//! Pre-processing: pure functions from decoded RGB to model input tensors (resampling rules, letterbox,
//! DETR sizing and normalisation).
