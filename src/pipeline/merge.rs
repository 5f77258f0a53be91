//! Completing an output: once every unit of the plan is committed — by one run, or by several
//! `--shard i/N` workers — each variant gets its `manifest.json` and the output its `errors.json`.
//! `refaug run` does this by itself when it finishes the last unit; `refaug merge` does it (or says
//! what is missing) for runs split across machines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::pipeline::journal::{self, ImageFailure, JournalError, UnitRecord, write_atomic};
use crate::pipeline::plan::Unit;
use crate::write::manifest::{MANIFEST_FILE, RuntimeInfo, SplitManifest, VariantManifest};

/// File name of the failures report at the top of an output.
pub const ERRORS_FILE: &str = "errors.json";

/// What the whole output will hold, split by split (`.refaug/plan.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSplit {
    pub split: String,
    pub shard_count: usize,
    pub images: u64,
    pub refs: u64,
}

/// `<out>/errors.json`: every image that could not be processed, and the refs left without a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorsReport {
    pub images_failed: u64,
    pub refs_without_row: u64,
    pub failures: Vec<ImageFailure>,
}

/// What a completed output holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MergeSummary {
    /// Variant → rows in all splits.
    pub rows: BTreeMap<String, u64>,
    pub images: u64,
    pub images_failed: u64,
    pub refs_without_row: u64,
}

/// Why an output cannot be completed.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{root}: not a refaug output (no .refaug/settings.json or .refaug/plan.json)")]
    NotAnOutput { root: String },
    #[error(
        "{root}: {missing} of {total} units are not committed yet (first missing: {first}); run the remaining workers (or `refaug run` again) first"
    )]
    Incomplete {
        root: String,
        missing: usize,
        total: usize,
        first: String,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

fn plan_path(root: &Path) -> std::path::PathBuf {
    root.join(".refaug").join("plan.json")
}

/// Records the plan of a run (the same for every worker of it).
pub fn write_plan(root: &Path, units: &[Unit]) -> Result<(), JournalError> {
    let mut splits: Vec<PlanSplit> = Vec::new();
    for u in units {
        match splits.iter_mut().find(|s| s.split == u.split) {
            Some(s) => {
                s.images += u.images.len() as u64;
                s.refs += u.ref_count() as u64;
            }
            None => splits.push(PlanSplit {
                split: u.split.clone(),
                shard_count: u.shard_count,
                images: u.images.len() as u64,
                refs: u.ref_count() as u64,
            }),
        }
    }
    let bytes = serde_json::to_vec_pretty(&splits).expect("plan serialises");
    write_atomic(&plan_path(root), &bytes)?;
    Ok(())
}

/// The recorded plan of an output.
pub fn read_plan(root: &Path) -> Result<Option<Vec<PlanSplit>>, JournalError> {
    journal::read_json(&plan_path(root))
}

/// Completes the output if every unit is committed; `None` if some are still missing.
pub fn merge_if_complete(root: &Path) -> Result<Option<MergeSummary>, JournalError> {
    match merge(root) {
        Ok(s) => Ok(Some(s)),
        Err(MergeError::Incomplete { .. }) => Ok(None),
        Err(MergeError::Journal(e)) => Err(e),
        Err(e @ MergeError::NotAnOutput { .. }) => {
            Err(JournalError::Io(std::io::Error::other(e.to_string())))
        }
    }
}

/// A unit of the plan: its split and shard index.
pub type UnitKey = (String, usize);

/// The plan's units, and those of them without a committed record.
pub fn uncommitted(plan: &[PlanSplit], records: &[UnitRecord]) -> (Vec<UnitKey>, Vec<UnitKey>) {
    let have: BTreeSet<(String, usize)> =
        records.iter().map(|r| (r.split.clone(), r.shard)).collect();
    let wanted: Vec<(String, usize)> = plan
        .iter()
        .flat_map(|s| (0..s.shard_count).map(move |i| (s.split.clone(), i)))
        .collect();
    let missing = wanted
        .iter()
        .filter(|k| !have.contains(*k))
        .cloned()
        .collect();
    (wanted, missing)
}

/// Checks that every unit of the plan is committed, then writes every variant's `manifest.json`
/// and `errors.json`.
pub fn merge(root: &Path) -> Result<MergeSummary, MergeError> {
    let not_output = || MergeError::NotAnOutput {
        root: root.display().to_string(),
    };
    let settings = journal::read_settings(root)?.ok_or_else(not_output)?;
    let plan = read_plan(root)?.ok_or_else(not_output)?;
    let records = journal::committed_units(root)?;
    let (wanted, missing) = uncommitted(&plan, &records);
    if let Some((split, shard)) = missing.first() {
        return Err(MergeError::Incomplete {
            root: root.display().to_string(),
            missing: missing.len(),
            total: wanted.len(),
            first: format!("{split} shard {shard}"),
        });
    }
    // Records of units outside the plan (an older plan) are ignored.
    let records: Vec<&UnitRecord> = records
        .iter()
        .filter(|r| wanted.contains(&(r.split.clone(), r.shard)))
        .collect();

    let mut summary = MergeSummary::default();
    let failures: Vec<ImageFailure> = records
        .iter()
        .flat_map(|r| r.failures.iter().cloned())
        .collect();
    let failed_images: BTreeSet<i64> = failures.iter().map(|f| f.image_id).collect();
    let failed_refs: BTreeSet<i64> = failures
        .iter()
        .flat_map(|f| f.ref_ids.iter().copied())
        .collect();
    summary.images = records.iter().map(|r| r.images as u64).sum();
    summary.images_failed = failed_images.len() as u64;
    summary.refs_without_row = failed_refs.len() as u64;

    let variants = settings["variants"].as_array().cloned().unwrap_or_default();
    let distinct = |f: fn(&UnitRecord) -> &String| -> Vec<String> {
        records
            .iter()
            .map(|r| f(r).clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let runtime = RuntimeInfo {
        onnxruntime_versions: distinct(|r| &r.onnxruntime),
        execution_providers: distinct(|r| &r.execution_provider),
    };
    let sources: BTreeMap<String, String> = [
        (
            "instances.json".to_string(),
            settings["dataset"]["instances_sha256"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ),
        (
            format!(
                "refs({}).p",
                settings["dataset"]["split_by"].as_str().unwrap_or("")
            ),
            settings["dataset"]["refs_sha256"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ),
    ]
    .into();

    for v in &variants {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        let mut splits = BTreeMap::new();
        for s in &plan {
            let mut of_split: Vec<&&UnitRecord> =
                records.iter().filter(|r| r.split == s.split).collect();
            of_split.sort_by_key(|r| r.shard);
            let shards: Vec<_> = of_split
                .iter()
                .filter_map(|r| r.shards.get(&name).cloned())
                .collect();
            let failed_refs: u64 = of_split
                .iter()
                .flat_map(|r| r.failures.iter())
                .filter(|f| f.variant.is_none() || f.variant.as_deref() == Some(name.as_str()))
                .map(|f| f.ref_ids.len() as u64)
                .sum();
            let rows: u64 = shards.iter().map(|s| s.rows).sum();
            *summary.rows.entry(name.clone()).or_default() += rows;
            splits.insert(
                s.split.clone(),
                SplitManifest {
                    rows,
                    images: s.images,
                    failed_refs,
                    shards,
                },
            );
        }
        let manifest = VariantManifest {
            variant: name.clone(),
            schema_version: crate::write::schema::SCHEMA_VERSION.to_string(),
            refaug_version: env!("CARGO_PKG_VERSION").to_string(),
            git_revision: env!("REFAUG_GIT_REVISION").to_string(),
            detector: v["detector"].clone(),
            runtime: runtime.clone(),
            dataset_kind: settings["dataset"]["kind"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            split_by: settings["dataset"]["split_by"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            sources: sources.clone(),
            splits,
            settings: settings.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        write_atomic(&root.join(&name).join(MANIFEST_FILE), &bytes).map_err(JournalError::Io)?;
    }
    let errors = ErrorsReport {
        images_failed: summary.images_failed,
        refs_without_row: summary.refs_without_row,
        failures,
    };
    let bytes = serde_json::to_vec_pretty(&errors).expect("errors serialise");
    write_atomic(&root.join(ERRORS_FILE), &bytes).map_err(JournalError::Io)?;
    Ok(summary)
}
