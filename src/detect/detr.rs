//! The `detr` family (Hugging Face transformers DETR): `pixel_values` input, `logits` + `pred_boxes`.

use crate::detect::Detection;

/// One image's `logits` `[queries, slots]` and `pred_boxes` `[queries, 4]` → boxes, as
/// `post_process_object_detection(threshold, target_sizes=[(h, w)])` does: NOT clipped (the library
/// does not clip; the detector clips afterwards), in query order.
pub fn postprocess(
    logits: &[f32],
    pred_boxes: &[f32],
    queries: usize,
    slots: usize,
    threshold: f32,
    orig_w: u32,
    orig_h: u32,
) -> Vec<Detection> {
    let _ = (
        logits, pred_boxes, queries, slots, threshold, orig_w, orig_h,
    );
    todo!("H3")
}
