//! ONNX Runtime: finding and loading `libonnxruntime.so`, execution providers, session settings.
