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
pub mod gallery;
pub mod manifest;
pub mod parity;
pub mod pipeline;
pub mod preprocess;
pub mod progress;
pub mod publish;
pub mod report;
pub mod validate;
pub mod write;

/// The sha256 of a file's bytes, lower-case hex, read in 1 MiB blocks (models, shards, sources).
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(
        &mut std::io::BufReader::with_capacity(1 << 20, &mut file),
        &mut hasher,
    )?;
    Ok(hex::encode(hasher.finalize()))
}

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
