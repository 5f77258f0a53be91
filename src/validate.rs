//! `refaug validate <out>`: checks a finished output against its contract and its own records —
//! every shard against the schema, its sha256 in `manifest.json` and the row invariants
//! ([`verify_shard`]), and the row counts against the plan made from the source dataset.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::pipeline::journal::{self, JournalError};
use crate::pipeline::merge::{self, ErrorsReport};
use crate::write::manifest::{MANIFEST_FILE, VariantManifest};
use crate::write::verify::verify_shard;

/// What `validate` found.
#[derive(Debug, Default)]
pub struct ValidationReport {
    pub shards: usize,
    pub rows: u64,
    /// Each problem names the file (and the row, for row problems).
    pub problems: Vec<String>,
    /// What is recorded as missing on purpose and is no problem (refs without image embeddings
    /// because their image could not be read when embedding).
    pub notes: Vec<String>,
}

impl ValidationReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Validates the output folder `root`. `Err` only when `root` is not a refaug output at all.
pub fn validate_output(root: &Path) -> Result<ValidationReport, JournalError> {
    let mut report = ValidationReport::default();
    let not_output = || {
        JournalError::Io(std::io::Error::other(format!(
            "{}: not a refaug output (no .refaug/settings.json and .refaug/plan.json)",
            root.display()
        )))
    };
    let settings = journal::read_settings(root)?.ok_or_else(not_output)?;
    let plan = merge::read_plan(root)?.ok_or_else(not_output)?;
    let errors_path = root.join(merge::ERRORS_FILE);
    let errors: Option<ErrorsReport> = match fs_err::read(&errors_path) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(e) => Some(e),
            Err(e) => {
                report
                    .problems
                    .push(format!("{}: unreadable: {e}", errors_path.display()));
                None
            }
        },
        Err(_) => {
            let records = journal::committed_units(root)?;
            let (wanted, missing) = merge::uncommitted(&plan, &records);
            let hint = if missing.is_empty() {
                format!(
                    "every unit is committed: run `refaug merge {}`",
                    root.display()
                )
            } else {
                format!(
                    "{} of {} units are not written yet: run `refaug run` again (every --shard \
                     worker) to finish it",
                    missing.len(),
                    wanted.len()
                )
            };
            report.problems.push(format!(
                "{}: missing (the output is not complete; {hint})",
                errors_path.display()
            ));
            None
        }
    };

    let variants: Vec<String> = settings["variants"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for name in &variants {
        let dir = root.join(name);
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = match VariantManifest::read(&manifest_path) {
            Ok(m) => m,
            Err(e) => {
                report
                    .problems
                    .push(format!("{}: {e}", manifest_path.display()));
                continue;
            }
        };
        let mut listed = BTreeSet::new();
        for planned in &plan {
            let Some(split) = manifest.splits.get(&planned.split) else {
                report.problems.push(format!(
                    "{}: split {} is missing",
                    manifest_path.display(),
                    planned.split
                ));
                continue;
            };
            if split.shards.len() != planned.shard_count {
                report.problems.push(format!(
                    "{}: split {} lists {} shards, the plan has {}",
                    manifest_path.display(),
                    planned.split,
                    split.shards.len(),
                    planned.shard_count
                ));
            }
            if split.rows + split.failed_refs != planned.refs {
                report.problems.push(format!(
                    "{}: split {}: {} rows + {} refs of failed images ≠ {} refs in the source",
                    manifest_path.display(),
                    planned.split,
                    split.rows,
                    split.failed_refs,
                    planned.refs
                ));
            }
            let mut rows = 0;
            for shard in &split.shards {
                let path = dir.join(&shard.file);
                listed.insert(shard.file.clone());
                report.shards += 1;
                let violations = verify_shard(&path, Some(&shard.sha256));
                report
                    .problems
                    .extend(violations.iter().map(|v| v.to_string()));
                match shard_rows(&path) {
                    Ok(n) => {
                        rows += n;
                        if n != shard.rows {
                            report.problems.push(format!(
                                "{}: {n} rows, manifest.json says {}",
                                path.display(),
                                shard.rows
                            ));
                        }
                    }
                    Err(e) if violations.is_empty() => {
                        report.problems.push(format!("{}: {e}", path.display()))
                    }
                    Err(_) => {}
                }
            }
            report.rows += rows;
        }
        if let Some(errors) = &errors {
            let failed: u64 = errors
                .failures
                .iter()
                .filter(|f| f.variant.is_none() || f.variant.as_deref() == Some(name.as_str()))
                .map(|f| f.ref_ids.len() as u64)
                .sum();
            let in_manifest: u64 = manifest.splits.values().map(|s| s.failed_refs).sum();
            if failed != in_manifest {
                report.problems.push(format!(
                    "{}: {in_manifest} refs of failed images, errors.json lists {failed}",
                    manifest_path.display()
                ));
            }
        }
        let embeddings = crate::embed::verify::verify_embeddings(&dir);
        report.problems.extend(embeddings.problems);
        report.notes.extend(embeddings.notes);
        for stray in parquet_files(&dir) {
            let file = stray
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !listed.contains(&file) {
                report.problems.push(format!(
                    "{}: not listed in {MANIFEST_FILE}",
                    stray.display()
                ));
            }
        }
    }
    Ok(report)
}

fn shard_rows(path: &Path) -> Result<u64, String> {
    use parquet::file::reader::FileReader;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader =
        parquet::file::reader::SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    Ok(reader.metadata().file_metadata().num_rows() as u64)
}

/// The `*.parquet` files directly in `dir`, sorted by name (none when it cannot be read).
pub(crate) fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
