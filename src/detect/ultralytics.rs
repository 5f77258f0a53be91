//! The `ultralytics` family (YOLOv8 / YOLO11, ultralytics 8.4): letterbox input, `[B, 4 + C, N]` output.

use crate::detect::Detection;
use crate::detect::nms::NmsParams;
use crate::preprocess::letterbox::LetterboxGeometry;

/// One image's `output0` block, `[4 + classes, anchors]` → boxes in original-image pixels, as
/// `ultralytics.utils.nms.non_max_suppression` + `ops.scale_boxes` + clip do.
pub fn postprocess(
    pred: &[f32],
    classes: usize,
    anchors: usize,
    params: &NmsParams,
    geom: &LetterboxGeometry,
) -> Vec<Detection> {
    let _ = (pred, classes, anchors, params, geom);
    todo!("H3")
}
