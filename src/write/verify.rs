//! Verify a written shard against the contract: its bytes (sha256), its schema and metadata, and
//! every row's invariants (see `schemas/README.md`). The core of `refaug validate`.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::boxes::BoxXyxy;
use crate::write::row::{Row, best_match, check_fields, proposal_ious, rows_from_batch};
use crate::write::schema;

/// Where in a file a violation is.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// The file as a whole (bytes, schema, metadata).
    File,
    /// One row: its index in the file (0-based) and its `ref_id`.
    Row { index: usize, ref_id: i64 },
}

/// One broken rule in one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: PathBuf,
    pub location: Location,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File => write!(f, "{}: {}", self.path.display(), self.message),
            Location::Row { index, ref_id } => write!(
                f,
                "{}: row {index} (ref_id {ref_id}): {}",
                self.path.display(),
                self.message
            ),
        }
    }
}

/// Check one shard: sha256 (when `expected_sha256` is given), schema equal to the contract,
/// the `huggingface` and schema-version metadata, and every row's invariants. An empty list means
/// the shard is valid. A file that cannot be read or decoded gives one file-level violation.
pub fn verify_shard(path: &Path, expected_sha256: Option<&str>) -> Vec<Violation> {
    let mut violations = Vec::new();
    let file_violation = |message: String| Violation {
        path: path.to_path_buf(),
        location: Location::File,
        message,
    };

    if let Some(expected) = expected_sha256 {
        match crate::sha256_file(path) {
            Ok(actual) if actual.eq_ignore_ascii_case(expected) => {}
            Ok(actual) => violations.push(file_violation(format!(
                "sha256 is {actual}, expected {expected}"
            ))),
            Err(e) => {
                violations.push(file_violation(format!("cannot be read: {e}")));
                return violations;
            }
        }
    }

    let builder = match fs_err::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            ParquetRecordBatchReaderBuilder::try_new(f.into_file()).map_err(|e| e.to_string())
        }) {
        Ok(builder) => builder,
        Err(e) => {
            violations.push(file_violation(format!("not a readable Parquet file: {e}")));
            return violations;
        }
    };

    let metadata = builder.schema().metadata().clone();
    match metadata.get(schema::META_SCHEMA_VERSION) {
        Some(v) if v == schema::SCHEMA_VERSION => {}
        other => violations.push(file_violation(format!(
            "metadata `{}` is {other:?}, expected {:?}",
            schema::META_SCHEMA_VERSION,
            schema::SCHEMA_VERSION
        ))),
    }
    let expected_hf: serde_json::Value = serde_json::from_str(&schema::huggingface_metadata())
        .expect("the contract's features are JSON");
    match metadata
        .get(schema::META_HUGGINGFACE)
        .map(|v| serde_json::from_str::<serde_json::Value>(v))
    {
        Some(Ok(found)) if found == expected_hf => {}
        Some(Ok(_)) => violations.push(file_violation(format!(
            "metadata `{}` differs from the contract's features",
            schema::META_HUGGINGFACE
        ))),
        Some(Err(e)) => violations.push(file_violation(format!(
            "metadata `{}` is not JSON: {e}",
            schema::META_HUGGINGFACE
        ))),
        None => violations.push(file_violation(format!(
            "metadata `{}` is missing",
            schema::META_HUGGINGFACE
        ))),
    }

    // Whether proposals must lie inside the image: the detector's `clip_boxes` (contract 2.0).
    let clipped = match metadata
        .get(schema::META_DETECTOR)
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .and_then(|d| d.get("clip_boxes").and_then(serde_json::Value::as_bool))
    {
        Some(clip) => clip,
        None => {
            violations.push(file_violation(format!(
                "metadata `{}` does not state `clip_boxes` (true or false)",
                schema::META_DETECTOR
            )));
            // Check the stricter invariant.
            true
        }
    };

    if let Err(e) = check_fields(builder.schema()) {
        violations.push(file_violation(format!("schema: {e}")));
        return violations;
    }

    let reader = match builder.build() {
        Ok(reader) => reader,
        Err(e) => {
            violations.push(file_violation(format!("cannot be read: {e}")));
            return violations;
        }
    };
    let mut index = 0;
    let mut previous_ref_id: Option<i64> = None;
    for batch in reader {
        let rows = match batch
            .map_err(|e| e.to_string())
            .and_then(|b| rows_from_batch(&b).map_err(|e| e.to_string()))
        {
            Ok(rows) => rows,
            Err(e) => {
                violations.push(file_violation(format!(
                    "cannot be decoded after row {index}: {e}"
                )));
                return violations;
            }
        };
        for row in &rows {
            let mut messages = row_violations(row, clipped);
            if let Some(previous) = previous_ref_id
                && row.ref_id <= previous
            {
                messages.push(format!(
                    "ref_id is not above the previous row's ({previous}): rows of a shard \
                     must be in strictly ascending ref_id order"
                ));
            }
            previous_ref_id = Some(row.ref_id);
            violations.extend(messages.into_iter().map(|message| Violation {
                path: path.to_path_buf(),
                location: Location::Row {
                    index,
                    ref_id: row.ref_id,
                },
                message,
            }));
            index += 1;
        }
    }
    violations
}

fn inside(b: &BoxXyxy, width: f32, height: f32) -> bool {
    // Written as comparisons that are false for NaN, so NaN corners fail.
    0.0 <= b.xmin
        && b.xmin <= b.xmax
        && b.xmax <= width
        && 0.0 <= b.ymin
        && b.ymin <= b.ymax
        && b.ymax <= height
}

/// A finite box with its corners in order (what an unclipped proposal must be).
fn ordered(b: &BoxXyxy) -> bool {
    [b.xmin, b.ymin, b.xmax, b.ymax]
        .iter()
        .all(|c| c.is_finite())
        && b.xmin <= b.xmax
        && b.ymin <= b.ymax
}

/// The invariants one row breaks, as messages (empty when it is valid). `clipped`: the variant
/// clips its proposals to the image (its detector's `clip_boxes`), so they must lie inside it.
pub fn row_violations(row: &Row, clipped: bool) -> Vec<String> {
    let mut out = Vec::new();
    if row.image_width <= 0 || row.image_height <= 0 {
        out.push(format!(
            "image size {}x{} is not positive",
            row.image_width, row.image_height
        ));
    }
    if row.sentences.is_empty() {
        out.push("has no sentence".to_string());
    }
    let gt = &row.gt_box;
    // The ground truth is the annotation as given (not clipped), so only its shape is checked.
    let finite = [gt.xmin, gt.ymin, gt.xmax, gt.ymax]
        .iter()
        .all(|c| c.is_finite());
    if !(finite && gt.xmin <= gt.xmax && gt.ymin <= gt.ymax) {
        out.push(format!("gt_box {gt:?} is not a finite xyxy box"));
    }
    let (width, height) = (row.image_width as f32, row.image_height as f32);
    for (i, p) in row.proposals.iter().enumerate() {
        if clipped && !inside(&p.bbox, width, height) {
            out.push(format!(
                "proposal {i} box {:?} is not inside the {}x{} image (the detector clips boxes)",
                p.bbox, row.image_width, row.image_height
            ));
        } else if !ordered(&p.bbox) {
            out.push(format!(
                "proposal {i} box {:?} is not a finite xyxy box (xmin <= xmax, ymin <= ymax)",
                p.bbox
            ));
        }
        if !(0.0..=1.0).contains(&p.score) {
            out.push(format!("proposal {i} score {} is not in [0, 1]", p.score));
        }
        let previous = i.checked_sub(1).map(|j| row.proposals[j].score);
        if previous.is_some_and(|prev| {
            !matches!(
                p.score.partial_cmp(&prev),
                Some(Ordering::Less | Ordering::Equal)
            )
        }) {
            out.push(format!(
                "proposal {i} score {} is above the previous one's {}: proposals must be \
                 score-descending",
                p.score,
                row.proposals[i - 1].score
            ));
        }
    }
    if row.proposal_iou.len() != row.proposals.len() {
        out.push(format!(
            "proposal_iou has {} values for {} proposals",
            row.proposal_iou.len(),
            row.proposals.len()
        ));
        return out;
    }
    let ious = proposal_ious(&row.gt_box, &row.proposals);
    for (i, (stored, recomputed)) in row.proposal_iou.iter().zip(&ious).enumerate() {
        if stored.to_bits() != recomputed.to_bits() {
            out.push(format!(
                "proposal_iou[{i}] is {stored}, the IoU of proposal {i} with gt_box is {recomputed}"
            ));
        }
    }
    let (best_index, best_iou) = best_match(&ious);
    if row.best_index != best_index {
        out.push(format!(
            "best_index is {:?}, the first largest IoU is at {best_index:?}",
            row.best_index
        ));
    }
    if row.best_iou.to_bits() != best_iou.to_bits() {
        out.push(format!("best_iou is {}, expected {best_iou}", row.best_iou));
    }
    out
}
