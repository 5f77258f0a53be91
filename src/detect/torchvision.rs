//! The `torchvision` family (Faster R-CNN, RetinaNet, SSD exported with `torch.onnx.export`): one
//! `[3, H, W]` image in, `boxes` / `labels` / `scores` out; the graph resizes, normalises and runs NMS.

use crate::detect::Detection;

/// The graph's `boxes` `[N, 4]`, `labels` `[N]`, `scores` `[N]` → the boxes with `score > threshold`.
pub fn postprocess(
    boxes: &[f32],
    labels: &[i64],
    scores: &[f32],
    threshold: f32,
) -> Vec<Detection> {
    let _ = (boxes, labels, scores, threshold);
    todo!("H3")
}
