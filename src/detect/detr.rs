//! The `detr` family (Hugging Face transformers DETR): `pixel_values` input, `logits` + `pred_boxes`.
