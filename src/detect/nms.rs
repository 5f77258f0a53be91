//! Class-aware non-maximum suppression, as `torchvision.ops.nms` (CPU kernel) is called by the
//! YOLO families.

/// The numbers of a YOLO `non_max_suppression` call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NmsParams {
    /// Keep scores strictly greater than this.
    pub conf_threshold: f32,
    /// Suppress when IoU is strictly greater than this.
    pub iou_threshold: f32,
    /// Keep at most this many boxes after NMS.
    pub max_det: usize,
    /// Keep at most this many candidates (highest scores) before NMS (30000 in both YOLO libraries).
    pub max_nms: usize,
    /// Class offset for class-aware NMS (`max_wh`, 7680 in both YOLO libraries).
    pub max_wh: f32,
}
