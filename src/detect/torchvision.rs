//! The `torchvision` family (Faster R-CNN, RetinaNet, SSD exported with `torch.onnx.export`): one
//! `[3, H, W]` image in, `boxes` / `labels` / `scores` out; the graph resizes, normalises and runs NMS.

use crate::boxes::BoxXyxy;
use crate::detect::Detection;

/// The graph's `boxes` `[N, 4]`, `labels` `[N]`, `scores` `[N]` → the boxes with `score > threshold`
/// (float32 comparison), in graph order (the graph already sorts by descending score). Boxes are
/// taken as the graph gives them (it clips and rescales to the original image itself); labels are
/// the model's class ids (COCO category ids for the COCO models).
///
/// # Panics
/// If the three outputs disagree on `N`.
pub fn postprocess(
    boxes: &[f32],
    labels: &[i64],
    scores: &[f32],
    threshold: f32,
) -> Vec<Detection> {
    assert_eq!(
        boxes.len(),
        scores.len() * 4,
        "torchvision boxes are not [N, 4]"
    );
    assert_eq!(labels.len(), scores.len(), "torchvision labels are not [N]");
    boxes
        .chunks_exact(4)
        .zip(labels)
        .zip(scores)
        .filter(|&(_, &s)| s > threshold)
        .map(|((b, &l), &s)| Detection {
            bbox: BoxXyxy {
                xmin: b[0],
                ymin: b[1],
                xmax: b[2],
                ymax: b[3],
            },
            score: s,
            class_id: l as i32,
        })
        .collect()
}
