//! refaug turns a referring-expression dataset (RefCOCOg, RefCOCO, RefCOCO+) into box-augmented
//! datasets: every image is read and decoded once, handed to every configured detector, and each
//! detector's proposals are written as one Parquet dataset variant.
//!
//! The modules follow the data flow:
//!
//! ```text
//! manifest ─┐
//! dataset ──┴─▶ decode ─▶ preprocess ─▶ detect ─▶ write
//!             (JPEG → RGB)  (per family)  (ONNX Runtime)  (Parquet shards)
//! ```
//!
//! [`boxes`] holds the one box type and IoU that every stage shares.

pub mod boxes;
pub mod cli;
pub mod dataset;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod export;
pub mod manifest;
pub mod parity;
pub mod pipeline;
pub mod preprocess;
pub mod progress;
pub mod publish;
pub mod report;
pub mod validate;
pub mod write;

/// An error with all its sources, `outer: inner: innermost`, for messages that go into a report
/// (errors.json) rather than through the CLI's own chain printing.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
