//! The `ultralytics` family (YOLOv8 / YOLO11, ultralytics 8.4): letterbox input, `[B, 4 + C, N]` output.
