//! Detect: detector specs (`detectors/*.toml`), ONNX Runtime sessions, and each family's
//! pre- and post-processing, which turn an RGB image into boxes in original-image pixels.
//!
//! Family files (`yolov5`, `ultralytics`, `detr`, `torchvision`) hold only what differs between
//! families and name the library function and version each step mirrors; [`nms`] is shared.

pub mod detector;
pub mod detr;
pub mod nms;
pub mod runtime;
pub mod spec;
pub mod torchvision;
pub mod ultralytics;
pub mod yolov5;

use crate::boxes::BoxXyxy;

/// One box a detector kept: original-image xyxy pixels (clipped to the image unless the spec says
/// `clip_boxes = false`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BoxXyxy,
    pub score: f32,
    /// The model's class index: 0..79 in COCO-80 order for the YOLO families, the COCO category id
    /// (91-slot space) for DETR and torchvision.
    pub class_id: i32,
}

/// The four model families: how a model's input is made and its outputs are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Yolov5,
    Ultralytics,
    Detr,
    Torchvision,
}

/// `Tensor.clamp_(0, hi)` as the YOLO libraries' `clip_boxes` calls it: NaN stays NaN.
pub(crate) fn clamp_like_torch(v: f32, hi: f32) -> f32 {
    if v.is_nan() { v } else { v.max(0.0).min(hi) }
}
