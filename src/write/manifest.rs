//! `<out>/<variant>/manifest.json`: what a variant's shards are and how they were made.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pipeline::journal::ShardRecord;

/// File name of a variant's manifest, next to its shards.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One split of a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitManifest {
    /// Rows written (refs with proposals computed).
    pub rows: u64,
    /// Images of the split that were processed (failed ones included).
    pub images: u64,
    /// Refs of the split that have no row because their image failed (listed in `errors.json`).
    pub failed_refs: u64,
    pub shards: Vec<ShardRecord>,
}

/// The ONNX Runtime that produced the boxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Every ONNX Runtime version that made units of this output (one, unless workers differed).
    pub onnxruntime_versions: Vec<String>,
    pub execution_providers: Vec<String>,
}

/// `<out>/<variant>/manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantManifest {
    pub variant: String,
    pub schema_version: String,
    pub refaug_version: String,
    pub git_revision: String,
    /// The detector spec as used (name, family, model sha256, thresholds, training data, …).
    pub detector: serde_json::Value,
    pub runtime: RuntimeInfo,
    /// Dataset kind, split_by and the source files with their sha256.
    pub dataset_kind: String,
    pub split_by: String,
    /// Source file name → sha256 (instances.json and the refs pickle).
    pub sources: BTreeMap<String, String>,
    /// Split name → its shards, in shard order.
    pub splits: BTreeMap<String, SplitManifest>,
    /// The full settings of the run (`.refaug/settings.json`).
    pub settings: serde_json::Value,
}

impl VariantManifest {
    /// Reads a manifest, refusing shard names that are not plain file names beside it (a
    /// tampered `../../etc/passwd` would make every reader open files outside the output).
    pub fn read(path: &std::path::Path) -> Result<VariantManifest, std::io::Error> {
        let invalid = |message: String| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {message}", path.display()),
            )
        };
        let bytes = fs_err::read(path)?;
        let manifest: VariantManifest =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        for (split, s) in &manifest.splits {
            if let Some(bad) = s.shards.iter().find(|r| !is_plain_file_name(&r.file)) {
                return Err(invalid(format!(
                    "split {split}: shard file {:?} is not a plain file name in this folder",
                    bad.file
                )));
            }
        }
        Ok(manifest)
    }
}

/// A name without separators that is neither `.`, `..` nor hidden.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}
