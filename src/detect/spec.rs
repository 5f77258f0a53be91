//! Detector specs: `detectors/<name>.toml`, validated into what the code uses.
