//! `refaug export --format seed-csv`: each variant as the CSV the original research notebook
//! reads, `bboxes[<variant>].csv`, header `file_name,xmin,ymin,xmax,ymax,confidence`, one line
//! per box (xyxy pixels of the original image).
//!
//! Proposals belong to images while rows are refs: every image is written once, at its first
//! row (splits in reading order — train, val, test, … — shards in order, rows in file order),
//! its boxes in the row's order (score-descending). An image without proposals has no line.
//! `file_name` is the `instances.json` name of the image (the row's `file_name`).
//!
//! Numbers are the float32 values written as the shortest decimal that reads back to the same
//! float32 (Rust's `f32` `Display`: plain digits, never an exponent, whole numbers without a
//! fraction, e.g. `12`, `12.5`, `0.8766`). Parsing them as float32 is lossless; pandas reads
//! them as float64 decimals, as it read the research's CSVs.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::report::{OutputVariant, ReportError, find_variants};
use crate::write::shard::read_rows;

/// The CSV header the research notebook expects.
pub const SEED_CSV_HEADER: &str = "file_name,xmin,ymin,xmax,ymax,confidence";
/// Folder `refaug export` writes into, under the output folder, when no destination is given.
pub const EXPORT_DIR: &str = "export";

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `bboxes[<variant>].csv`, as the research notebook reads it.
    SeedCsv,
}

/// Errors of an export; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Read(#[from] ReportError),
    #[error("{path}: I/O error")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file name {file_name:?} of image {image_id} cannot go in a CSV field")]
    FileName {
        path: PathBuf,
        image_id: i64,
        file_name: String,
    },
}

/// What one exported file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    pub variant: String,
    pub path: PathBuf,
    /// Distinct images seen (with or without boxes).
    pub images: u64,
    /// Lines written (boxes), header excluded.
    pub boxes: u64,
}

/// `bboxes[<variant>].csv`.
pub fn seed_csv_file_name(variant: &str) -> String {
    format!("bboxes[{variant}].csv")
}

/// Write one variant's seed CSV to `path`: through a temporary file renamed into place.
pub fn write_seed_csv(variant: &OutputVariant, path: &Path) -> Result<ExportSummary, ExportError> {
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let temp = crate::write::atomic::temp_path(path);
    let result = (|| {
        let mut out = BufWriter::new(fs_err::File::create(&temp).map_err(io)?);
        writeln!(out, "{SEED_CSV_HEADER}").map_err(io)?;
        let mut seen = HashSet::new();
        let mut boxes = 0u64;
        for split in variant.splits() {
            for shard in variant.shard_paths(&split)? {
                for row in read_rows(&shard).map_err(ReportError::from)? {
                    if !seen.insert(row.image_id) {
                        continue;
                    }
                    if row.file_name.contains([',', '"', '\n', '\r']) {
                        return Err(ExportError::FileName {
                            path: shard.clone(),
                            image_id: row.image_id,
                            file_name: row.file_name.clone(),
                        });
                    }
                    for p in &row.proposals {
                        let b = p.bbox;
                        writeln!(
                            out,
                            "{},{},{},{},{},{}",
                            row.file_name, b.xmin, b.ymin, b.xmax, b.ymax, p.score
                        )
                        .map_err(io)?;
                        boxes += 1;
                    }
                }
            }
        }
        out.into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)?;
        Ok(ExportSummary {
            variant: variant.name.clone(),
            path: path.to_path_buf(),
            images: seen.len() as u64,
            boxes,
        })
    })();
    match result {
        Ok(summary) => {
            fs_err::rename(&temp, path).map_err(io)?;
            Ok(summary)
        }
        Err(err) => {
            // The partial file is ours and worthless; a failed removal leaves a hidden name.
            let _ = std::fs::remove_file(&temp);
            Err(err)
        }
    }
}

/// Export every variant of the output folder `out` into `dest` (created if needed).
pub fn export(
    out: &Path,
    dest: &Path,
    format: ExportFormat,
) -> Result<Vec<ExportSummary>, ExportError> {
    fs_err::create_dir_all(dest).map_err(|source| ExportError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    let variants = find_variants(out)?;
    for v in &variants {
        v.verify_shards()?;
    }
    variants
        .iter()
        .map(|variant| match format {
            ExportFormat::SeedCsv => {
                write_seed_csv(variant, &dest.join(seed_csv_file_name(&variant.name)))
            }
        })
        .collect()
}
