//! Detect: detector specs (`detectors/*.toml`), ONNX Runtime sessions, and each family's
//! pre-/post-processing that turns an RGB image into boxes in original-image pixels.
