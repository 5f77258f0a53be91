//! What can be wrong with a dataset source: fatal errors ([`DatasetError`]) and the problems
//! ([`Problem`]) found while validating it, each naming the file and the record.

use std::fmt;
use std::path::PathBuf;

/// A problem found in a dataset source. Structural ones (every kind but the two image-file ones)
/// make [`super::load`] fail; [`ProblemKind::MissingImageFile`] and
/// [`ProblemKind::UnreadableImageFile`] come from [`super::check_images`] and are not fatal.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// A ref names an annotation that `instances.json` does not have.
    #[error("{refs}: ref_id {ref_id}: its annotation ann_id {ann_id} is not in {instances}")]
    MissingAnnotation {
        refs: PathBuf,
        instances: PathBuf,
        ref_id: i64,
        ann_id: i64,
    },
    /// A ref names an image that `instances.json` does not have.
    #[error("{refs}: ref_id {ref_id}: its image image_id {image_id} is not in {instances}")]
    MissingImageRecord {
        refs: PathBuf,
        instances: PathBuf,
        ref_id: i64,
        image_id: i64,
    },
    /// A ref's image is not its annotation's image.
    #[error(
        "{refs}: ref_id {ref_id}: image_id {ref_image_id} differs from the image_id {ann_image_id} of its annotation ann_id {ann_id}"
    )]
    ImageMismatch {
        refs: PathBuf,
        ref_id: i64,
        ann_id: i64,
        ref_image_id: i64,
        ann_image_id: i64,
    },
    /// An image `file_name` that is absolute, empty or climbs out of the images folder.
    #[error("{instances}: image_id {image_id}: file_name {file_name:?} {why}")]
    UnsafeFileName {
        instances: PathBuf,
        image_id: i64,
        file_name: String,
        why: &'static str,
    },
    /// Two records of one kind share an id.
    #[error("{file}: duplicate {what} {id}")]
    DuplicateId {
        file: PathBuf,
        /// `image id`, `annotation id`, `category id`, `ref_id` or `sent_id`.
        what: &'static str,
        id: i64,
    },
    /// A ref's split is not one of the split_by's splits.
    #[error(
        "{refs}: ref_id {ref_id}: split {split:?} is not a split of {dataset} (it has {allowed})"
    )]
    UnknownSplit {
        refs: PathBuf,
        ref_id: i64,
        split: String,
        /// e.g. `refcocog split by umd`.
        dataset: String,
        /// The allowed names, comma-separated.
        allowed: String,
    },
    /// A text field of a ref is a byte string that is not UTF-8.
    #[error("{refs}: ref_id {ref_id}: {field} is not valid UTF-8 ({bytes} bytes: {preview})")]
    InvalidUtf8 {
        refs: PathBuf,
        ref_id: i64,
        /// e.g. `split`, `sentences[1].raw`, `sentences[0].tokens[3]`.
        field: String,
        bytes: usize,
        /// The bytes, lossily decoded.
        preview: String,
    },
    /// A ref's `sent_ids` differ from the ids of its `sentences`.
    #[error(
        "{refs}: ref_id {ref_id}: sent_ids {sent_ids:?} differ from its sentences' sent_id {sentence_ids:?}"
    )]
    SentIdsMismatch {
        refs: PathBuf,
        ref_id: i64,
        sent_ids: Vec<i64>,
        sentence_ids: Vec<i64>,
    },
    /// A referred annotation's `bbox` is not finite or has a negative width or height.
    #[error(
        "{instances}: ann_id {ann_id} (ref_id {ref_id}): bbox {bbox:?} is not a box [x, y, width >= 0, height >= 0]"
    )]
    InvalidBox {
        instances: PathBuf,
        ann_id: i64,
        ref_id: i64,
        bbox: [f64; 4],
    },
    /// A used image record has zero width or height.
    #[error("{instances}: image_id {image_id}: size {width}x{height} is empty")]
    EmptyImageSize {
        instances: PathBuf,
        image_id: i64,
        width: u32,
        height: u32,
    },
    /// The image file a ref needs is not there (not fatal).
    #[error("{path}: image_id {image_id}: image file is missing")]
    MissingImageFile { path: PathBuf, image_id: i64 },
    /// The image file a ref needs cannot be opened (not fatal).
    #[error("{path}: image_id {image_id}: image file cannot be read: {error}")]
    UnreadableImageFile {
        path: PathBuf,
        image_id: i64,
        error: String,
    },
}

/// The kind of a [`Problem`], for counting and for machine-readable output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    MissingAnnotation,
    MissingImageRecord,
    ImageMismatch,
    UnsafeFileName,
    DuplicateId,
    UnknownSplit,
    InvalidUtf8,
    SentIdsMismatch,
    InvalidBox,
    EmptyImageSize,
    MissingImageFile,
    UnreadableImageFile,
}

impl ProblemKind {
    /// The snake_case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::MissingAnnotation => "missing_annotation",
            ProblemKind::MissingImageRecord => "missing_image_record",
            ProblemKind::ImageMismatch => "image_mismatch",
            ProblemKind::UnsafeFileName => "unsafe_file_name",
            ProblemKind::DuplicateId => "duplicate_id",
            ProblemKind::UnknownSplit => "unknown_split",
            ProblemKind::InvalidUtf8 => "invalid_utf8",
            ProblemKind::SentIdsMismatch => "sent_ids_mismatch",
            ProblemKind::InvalidBox => "invalid_box",
            ProblemKind::EmptyImageSize => "empty_image_size",
            ProblemKind::MissingImageFile => "missing_image_file",
            ProblemKind::UnreadableImageFile => "unreadable_image_file",
        }
    }

    /// Words for a count of this kind in a sentence: `2 missing image files`.
    pub fn describe(self, count: usize) -> String {
        let (one, many) = match self {
            ProblemKind::MissingAnnotation => (
                "ref with a missing annotation",
                "refs with a missing annotation",
            ),
            ProblemKind::MissingImageRecord => (
                "ref with a missing image record",
                "refs with a missing image record",
            ),
            ProblemKind::ImageMismatch => (
                "ref whose image differs from its annotation's",
                "refs whose image differs from their annotation's",
            ),
            ProblemKind::UnsafeFileName => ("unsafe image file name", "unsafe image file names"),
            ProblemKind::DuplicateId => ("duplicate id", "duplicate ids"),
            ProblemKind::UnknownSplit => {
                ("ref with an unknown split", "refs with an unknown split")
            }
            ProblemKind::InvalidUtf8 => (
                "text field that is not UTF-8",
                "text fields that are not UTF-8",
            ),
            ProblemKind::SentIdsMismatch => (
                "ref whose sent_ids differ from its sentences",
                "refs whose sent_ids differ from their sentences",
            ),
            ProblemKind::InvalidBox => ("invalid ground-truth box", "invalid ground-truth boxes"),
            ProblemKind::EmptyImageSize => ("image of empty size", "images of empty size"),
            ProblemKind::MissingImageFile => ("missing image file", "missing image files"),
            ProblemKind::UnreadableImageFile => ("unreadable image file", "unreadable image files"),
        };
        format!("{count} {}", if count == 1 { one } else { many })
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Problem {
    /// Which kind of problem this is.
    pub fn kind(&self) -> ProblemKind {
        match self {
            Problem::MissingAnnotation { .. } => ProblemKind::MissingAnnotation,
            Problem::MissingImageRecord { .. } => ProblemKind::MissingImageRecord,
            Problem::ImageMismatch { .. } => ProblemKind::ImageMismatch,
            Problem::UnsafeFileName { .. } => ProblemKind::UnsafeFileName,
            Problem::DuplicateId { .. } => ProblemKind::DuplicateId,
            Problem::UnknownSplit { .. } => ProblemKind::UnknownSplit,
            Problem::InvalidUtf8 { .. } => ProblemKind::InvalidUtf8,
            Problem::SentIdsMismatch { .. } => ProblemKind::SentIdsMismatch,
            Problem::InvalidBox { .. } => ProblemKind::InvalidBox,
            Problem::EmptyImageSize { .. } => ProblemKind::EmptyImageSize,
            Problem::MissingImageFile { .. } => ProblemKind::MissingImageFile,
            Problem::UnreadableImageFile { .. } => ProblemKind::UnreadableImageFile,
        }
    }

    /// Whether the problem stops [`super::load`]: everything but an absent or unreadable image
    /// file, which the run records per image and goes on.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self.kind(),
            ProblemKind::MissingImageFile | ProblemKind::UnreadableImageFile
        )
    }
}

/// A verdict line over a list of problems: `source OK: 0 problems` or
/// `source has 3 problems (2 missing image files, 1 duplicate id)`.
pub fn verdict(problems: &[Problem]) -> String {
    if problems.is_empty() {
        return "source OK: 0 problems".to_string();
    }
    let mut counts = std::collections::BTreeMap::<ProblemKind, usize>::new();
    for p in problems {
        *counts.entry(p.kind()).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| k.describe(*n)).collect();
    format!(
        "source has {} problem{} ({})",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// Reading a file failed (the message carries the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// `kind` and `split_by` do not go together.
    #[error("{kind} is not distributed split by {split_by} (it is split by {allowed})")]
    SplitByNotOfKind {
        kind: super::DatasetKind,
        split_by: super::SplitBy,
        allowed: String,
    },
    /// A selected split is not one of the split_by's splits.
    #[error("split {split:?} is not a split of {kind} split by {split_by} (it has {allowed})")]
    UnknownSelectedSplit {
        kind: super::DatasetKind,
        split_by: super::SplitBy,
        split: String,
        allowed: String,
    },
    /// A file's SHA-256 is not the expected one.
    #[error("{path}: SHA-256 mismatch: expected {expected}, found {actual}")]
    Sha256Mismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// `instances.json` is not JSON of the COCO shape (serde_json's message gives line and column).
    #[error("{path}: malformed COCO JSON: {error}")]
    Json {
        path: PathBuf,
        error: serde_json::Error,
    },
    /// The refs pickle refers to a callable or an object constructor: refaug reads data-only
    /// pickles and never calls anything, so such a pickle is refused before it is decoded.
    #[error(
        "{path}: refused: byte {offset}: the pickle {what}; a refs file holds only lists, dicts, strings and numbers, and refaug never runs code from a pickle"
    )]
    PickleNotData {
        path: PathBuf,
        offset: usize,
        what: String,
    },
    /// The refs pickle is not a readable pickle.
    #[error("{path}: malformed pickle: {error}")]
    Pickle { path: PathBuf, error: String },
    /// One entry of the refs list is not a ref dict of the expected shape.
    #[error("{path}: ref #{index}{}: {error}", ref_id.map(|id| format!(" (ref_id {id})")).unwrap_or_default())]
    PickleRecord {
        path: PathBuf,
        /// Position in the refs list.
        index: usize,
        ref_id: Option<i64>,
        error: String,
    },
    /// Structural problems, all of them, in file order.
    #[error("{} structural problem{} in the dataset source:{}", problems.len(), if problems.len() == 1 { "" } else { "s" }, list(problems))]
    Invalid { problems: Vec<Problem> },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}
