//! The `yolov5` family (ultralytics/yolov5 v7.0): letterbox input, `[B, N, 5 + C]` output.
