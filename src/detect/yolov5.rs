//! The `yolov5` family (ultralytics/yolov5 v7.0): letterbox input, `[B, N, 5 + C]` output.

use crate::detect::Detection;
use crate::detect::nms::NmsParams;
use crate::preprocess::letterbox::LetterboxGeometry;

/// One image's `output0` rows, `[anchors, 5 + classes]` → boxes in original-image pixels, as
/// `non_max_suppression` + `scale_boxes` (+ `.round()` when `round_boxes`, as `detect.py`) do.
pub fn postprocess(
    pred: &[f32],
    classes: usize,
    params: &NmsParams,
    geom: &LetterboxGeometry,
    round_boxes: bool,
) -> Vec<Detection> {
    let _ = (pred, classes, params, geom, round_boxes);
    todo!("H3")
}
