//! Class-aware non-maximum suppression, as `torchvision.ops.nms` (CPU kernel) is called by the
//! YOLO families.
