//! Read: the RefCOCO family on disk (`annotations/instances.json`, `annotations/refs(<split_by>).p`,
//! `images/`) into one validated, in-memory [`Dataset`].
//!
//! - [`load`] reads both annotation files once (hashing the bytes it parses), checks their
//!   structure and returns every structural problem at once ([`DatasetError::Invalid`]);
//! - [`check_images`] checks the image files the dataset will read; an absent or unreadable file
//!   is not fatal (the run records it per image and goes on), but `refaug inspect` reports it;
//! - [`Summary`] counts images / refs / sentences / categories per split for `refaug inspect`.
//!
//! Which images are kept: every image that at least one ref of the selected splits references, in
//! `instances.json` order. Images no selected ref uses are never opened.

mod error;
mod inspect;
mod instances;
mod load;
mod pickle;
mod summary;

use std::fmt;
use std::path::{Path, PathBuf};

pub use error::{DatasetError, Problem, ProblemKind, verdict};
pub use inspect::InspectReport;
pub use load::{ImageCheck, check_images, load};
pub use summary::{SplitCounts, Summary};

use crate::boxes::BoxXyxy;

/// Which dataset of the family; it decides which `split_by` values and split names exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    Refcoco,
    #[serde(rename = "refcoco+")]
    RefcocoPlus,
    Refcocog,
}

/// One image of `instances.json`, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    /// `images[].id`.
    pub image_id: i64,
    /// The name in `instances.json` (the file on disk, relative to the images folder).
    pub file_name: String,
    /// Width of the stored pixel grid (EXIF orientation is not applied).
    pub width: u32,
    /// Height of the stored pixel grid.
    pub height: u32,
}

/// One sentence of a ref.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sentence {
    /// Unique over the refs file.
    pub sent_id: i64,
    /// The normalised sentence (lower case, tokens joined by spaces).
    pub sent: String,
    /// The sentence as the annotator typed it.
    pub raw: String,
    pub tokens: Vec<String>,
}

/// One referred object (a ref), joined with its annotation's box.
#[derive(Debug, Clone, PartialEq)]
pub struct RefRecord {
    pub ref_id: i64,
    /// The referred annotation (`instances.json` `annotations[].id`).
    pub ann_id: i64,
    pub image_id: i64,
    /// COCO category id (1..90).
    pub category_id: i64,
    /// One of the split_by's split names.
    pub split: String,
    pub sentences: Vec<Sentence>,
    /// The annotation's `bbox` [x, y, w, h] as xyxy pixels.
    pub gt_box: BoxXyxy,
}

/// A loaded and validated dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub kind: DatasetKind,
    /// `umd`, `google` or `unc` ([`SplitBy::as_str`]).
    pub split_by: String,
    /// The folder image `file_name`s are relative to.
    pub images_dir: PathBuf,
    /// The images the refs use, in `instances.json` order (the processing order).
    pub images: Vec<ImageRecord>,
    /// The refs of the selected splits, in pickle order.
    pub refs: Vec<RefRecord>,
    /// COCO category id → name.
    pub categories: std::collections::BTreeMap<i64, String>,
    /// The annotation files this dataset was read from (path, size, SHA-256), for provenance.
    pub sources: SourceFiles,
}

/// Who split the dataset: it names the refs file (`refs(<split_by>).p`) and its split names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitBy {
    /// UMD (Nagaraja et al.): RefCOCOg train/val/test, no image in two splits.
    Umd,
    /// Google (Mao et al.): RefCOCOg train/val, RefCOCO train/val/test(A/B).
    Google,
    /// UNC (Yu et al.): RefCOCO and RefCOCO+ train/val/testA/testB.
    Unc,
}

impl SplitBy {
    /// The name used in file names and manifests (`umd`, `google`, `unc`).
    pub fn as_str(self) -> &'static str {
        match self {
            SplitBy::Umd => "umd",
            SplitBy::Google => "google",
            SplitBy::Unc => "unc",
        }
    }
}

impl fmt::Display for SplitBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DatasetKind {
    /// The name used in manifests (`refcoco`, `refcoco+`, `refcocog`).
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Refcoco => "refcoco",
            DatasetKind::RefcocoPlus => "refcoco+",
            DatasetKind::Refcocog => "refcocog",
        }
    }

    /// The `split_by` values this dataset is distributed with.
    pub fn split_bys(self) -> &'static [SplitBy] {
        match self {
            DatasetKind::Refcoco => &[SplitBy::Unc, SplitBy::Google],
            DatasetKind::RefcocoPlus => &[SplitBy::Unc],
            DatasetKind::Refcocog => &[SplitBy::Umd, SplitBy::Google],
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The split names of `kind` split by `split_by`, in their usual order; `None` when that
/// combination is not distributed (e.g. RefCOCO+ by UMD).
///
/// RefCOCO's Google split: the refer toolkit's copies name its test part `test`, some
/// redistributions `testA`/`testB`; all four are accepted.
pub fn split_names(kind: DatasetKind, split_by: SplitBy) -> Option<&'static [&'static str]> {
    match (kind, split_by) {
        (DatasetKind::Refcocog, SplitBy::Umd) => Some(&["train", "val", "test"]),
        (DatasetKind::Refcocog, SplitBy::Google) => Some(&["train", "val"]),
        (DatasetKind::Refcoco | DatasetKind::RefcocoPlus, SplitBy::Unc) => {
            Some(&["train", "val", "testA", "testB"])
        }
        (DatasetKind::Refcoco, SplitBy::Google) => {
            Some(&["train", "val", "test", "testA", "testB"])
        }
        _ => None,
    }
}

/// Where a dataset is and which part of it to read: what `[dataset]` of `data-manifest.toml`
/// says, with paths already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSource {
    /// Which dataset of the family.
    pub kind: DatasetKind,
    /// Who split it; names the refs file.
    pub split_by: SplitBy,
    /// The folder holding `instances.json` and `refs(<split_by>).p`.
    pub annotations_dir: PathBuf,
    /// The folder the `file_name`s of `instances.json` are relative to.
    pub images_dir: PathBuf,
    /// The splits to read; empty means all of the split_by's splits.
    pub splits: Vec<String>,
    /// SHA-256 (lowercase hex) the annotation files must have; checked by [`load`] when given.
    pub expected_sha256: ExpectedSha256,
}

impl DatasetSource {
    /// `<annotations>/instances.json`.
    pub fn instances_path(&self) -> PathBuf {
        self.annotations_dir.join("instances.json")
    }

    /// `<annotations>/refs(<split_by>).p`.
    pub fn refs_path(&self) -> PathBuf {
        self.annotations_dir
            .join(format!("refs({}).p", self.split_by.as_str()))
    }

    /// The selected splits: [`DatasetSource::splits`], or all of the split_by's splits when empty
    /// (empty too when kind and split_by do not go together; [`load`] reports that).
    pub fn selected_splits(&self) -> Vec<String> {
        if self.splits.is_empty() {
            split_names(self.kind, self.split_by)
                .unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            self.splits.clone()
        }
    }
}

/// Expected SHA-256 digests of the annotation files (lowercase hex).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedSha256 {
    /// For `instances.json`.
    pub instances: Option<String>,
    /// For `refs(<split_by>).p`.
    pub refs: Option<String>,
}

/// One file a dataset was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes that were parsed, lowercase hex.
    pub sha256: String,
}

impl SourceFile {
    pub(crate) fn of_bytes(path: &Path, bytes: &[u8]) -> Self {
        use sha2::Digest;
        SourceFile {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }
}

/// The annotation files of a [`Dataset`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceFiles {
    /// `instances.json`.
    pub instances: SourceFile,
    /// `refs(<split_by>).p`.
    pub refs: SourceFile,
}
