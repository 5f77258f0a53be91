//! Read: the RefCOCO family on disk (`annotations/instances.json`, `annotations/refs(<split_by>).p`,
//! `images/`) into one validated, in-memory [`Dataset`].
//!
//! OWNER NOTE (skeleton): the types below are the contract the other stages use. The reader,
//! validation and `inspect` live in files of this module.

use std::path::PathBuf;

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
    pub image_id: i64,
    /// The name in `instances.json` (the file on disk, relative to the images folder).
    pub file_name: String,
    pub width: u32,
    pub height: u32,
}

/// One sentence of a ref.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sentence {
    pub sent_id: i64,
    pub sent: String,
    pub raw: String,
    pub tokens: Vec<String>,
}

/// One referred object (a ref), joined with its annotation's box.
#[derive(Debug, Clone, PartialEq)]
pub struct RefRecord {
    pub ref_id: i64,
    pub ann_id: i64,
    pub image_id: i64,
    pub category_id: i64,
    pub split: String,
    pub sentences: Vec<Sentence>,
    /// The annotation's `bbox` [x, y, w, h] as xyxy pixels.
    pub gt_box: BoxXyxy,
}

/// A loaded and validated dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub kind: DatasetKind,
    pub split_by: String,
    pub images_dir: PathBuf,
    /// Images in `instances.json` order (the processing order).
    pub images: Vec<ImageRecord>,
    /// Refs in pickle order.
    pub refs: Vec<RefRecord>,
    /// COCO category id → name.
    pub categories: std::collections::BTreeMap<i64, String>,
}
