//! `refaug report`: how good each variant's proposals are, per split, as the research measured
//! them: proposals per ref, the best IoU with the ground truth ("oracle" IoU, 0 without a
//! proposal), recall at IoU thresholds, and the share of refs the research's training filter
//! keeps. Printed as tables, written as Markdown, CSV and JSON, and drawn with [`plot`].
//!
//! Definitions (the numbers the JSON report holds; `tests/python/report_check.py` recomputes
//! them from the shards with numpy):
//! - `mean_proposals`, `median_proposals`: of the number of proposals per ref (the median of an
//!   even count is the mean of the two middle values, as `numpy.median`);
//! - `mean_best_iou`: the mean of the `best_iou` column (0 for a ref without proposals);
//! - recall at `t`: the share of refs whose `best_iou` is `>= t`;
//! - usable for training (mission.md, "How the training code read the proposals"): keep the
//!   proposals with `score > train_conf`, width `> min_size` and height `> min_size`; the ref is
//!   usable when at least `min_proposals` remain and the largest `proposal_iou` among them is
//!   `> min_best_iou`.
//!
//! Scores and IoUs are stored as float32 and compared as float32 with the threshold rounded to
//! float32 (as the research's torch code compared float32 tensors with Python floats), so that
//! a box whose IoU is exactly 0.7 counts at 0.7. Widths and heights are computed in f64 from the
//! float32 corners (pandas on the research's CSV), against the threshold in f64.
//!
//! A split with no refs reports 0 for every mean and share.

pub mod plot;
pub mod table;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::write::manifest::{MANIFEST_FILE, VariantManifest};
use crate::write::row::Row;
use crate::write::shard::{ShardError, read_rows};

use self::table::Table;

/// The research's thresholds, used as defaults (mission.md).
pub const RESEARCH_TRAIN_CONF: f64 = 0.25;
/// Proposals must be wider and taller than this many pixels to be kept for training.
pub const RESEARCH_MIN_SIZE: f64 = 16.0;
/// A training item needs at least this many proposals left after the filter.
pub const RESEARCH_MIN_PROPOSALS: usize = 2;
/// A training item's best remaining IoU must exceed this.
pub const RESEARCH_MIN_BEST_IOU: f64 = 0.5;
/// The IoU thresholds recall is reported at by default.
pub const RESEARCH_RECALL_AT: [f64; 3] = [0.3, 0.5, 0.7];
/// The recall curve is sampled at `i / CURVE_STEPS` for `i` in `0..=CURVE_STEPS`.
pub const CURVE_STEPS: u32 = 100;
/// Name of the folder `refaug report` writes into, under the output folder, by default.
pub const REPORT_DIR: &str = "report";

/// The thresholds of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportOptions {
    /// Proposals need a score strictly above this to count for training.
    pub train_conf: f64,
    /// Proposals need a width and a height strictly above this (pixels) to count for training.
    pub min_size: f64,
    /// A ref is usable for training with at least this many proposals left.
    pub min_proposals: usize,
    /// A ref is usable for training when its best remaining IoU is strictly above this.
    pub min_best_iou: f64,
    /// IoU thresholds at which recall (`best_iou >= t`) is reported.
    pub recall_at: Vec<f64>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            train_conf: RESEARCH_TRAIN_CONF,
            min_size: RESEARCH_MIN_SIZE,
            min_proposals: RESEARCH_MIN_PROPOSALS,
            min_best_iou: RESEARCH_MIN_BEST_IOU,
            recall_at: RESEARCH_RECALL_AT.to_vec(),
        }
    }
}

/// Errors of reading an output folder or writing a report; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: I/O error")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a variant manifest")]
    Manifest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no variant folder (`<variant>/{MANIFEST_FILE}`) in it")]
    NoVariants { path: PathBuf },
    #[error("{path}: the manifest lists shard `{file}` of split `{split}`, which is missing")]
    MissingShard {
        path: PathBuf,
        split: String,
        file: String,
    },
    #[error(
        "{path}: sha256 {actual} differs from the {expected} its manifest.json records: the shard \
         changed after it was written; run `refaug validate` on the output and regenerate it"
    )]
    DamagedShard {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error("{path}: drawing failed: {message}")]
    Plot { path: PathBuf, message: String },
    #[error("invalid report option: {0}")]
    Options(String),
}

/// One variant folder of an output folder.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputVariant {
    /// The folder name (the detector spec's name).
    pub name: String,
    /// `<out>/<variant>`.
    pub dir: PathBuf,
    pub manifest: VariantManifest,
}

impl OutputVariant {
    /// The split names in reading order: train, val, validation, test, testA, testB, then any
    /// other in name order.
    pub fn splits(&self) -> Vec<String> {
        let mut splits: Vec<String> = self.manifest.splits.keys().cloned().collect();
        splits.sort_by_key(|s| (split_rank(s), s.clone()));
        splits
    }

    /// The shard files of a split, in shard order, as the manifest lists them; each must exist.
    pub fn shard_paths(&self, split: &str) -> Result<Vec<PathBuf>, ReportError> {
        let Some(manifest) = self.manifest.splits.get(split) else {
            return Ok(Vec::new());
        };
        manifest
            .shards
            .iter()
            .map(|shard| {
                let path = self.dir.join(&shard.file);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(ReportError::MissingShard {
                        path: self.dir.join(MANIFEST_FILE),
                        split: split.to_string(),
                        file: shard.file.clone(),
                    })
                }
            })
            .collect()
    }

    /// Checks every shard the manifest lists against its recorded sha256, so that nothing made
    /// from this output (a published copy, an export) carries a damaged shard under a fresh
    /// checksum. `refaug validate` says more about what is wrong.
    pub fn verify_shards(&self) -> Result<(), ReportError> {
        for split in self.splits() {
            let records = &self.manifest.splits[&split].shards;
            for (path, record) in self.shard_paths(&split)?.iter().zip(records) {
                let actual = crate::sha256_file(path).map_err(|source| ReportError::Io {
                    path: path.clone(),
                    source,
                })?;
                if actual != record.sha256 {
                    return Err(ReportError::DamagedShard {
                        path: path.clone(),
                        expected: record.sha256.clone(),
                        actual,
                    });
                }
            }
        }
        Ok(())
    }

    /// The detector's name as its spec gives it (`detector.name`), else the folder name.
    pub fn detector_name(&self) -> String {
        self.manifest
            .detector
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or(&self.name)
            .to_string()
    }
}

fn split_rank(split: &str) -> usize {
    const ORDER: [&str; 6] = ["train", "val", "validation", "test", "testA", "testB"];
    ORDER
        .iter()
        .position(|s| *s == split)
        .unwrap_or(ORDER.len())
}

/// Every variant of an output folder: the sub-folders holding a `manifest.json`, in the data
/// manifest's order.
pub fn find_variants(out: &Path) -> Result<Vec<OutputVariant>, ReportError> {
    let io = |source| ReportError::Io {
        path: out.to_path_buf(),
        source,
    };
    let mut variants = Vec::new();
    for entry in fs_err::read_dir(out).map_err(io)? {
        let entry = entry.map_err(io)?;
        let dir = entry.path();
        let manifest_path = dir.join(MANIFEST_FILE);
        if !dir.is_dir() || !manifest_path.is_file() {
            continue;
        }
        let manifest =
            VariantManifest::read(&manifest_path).map_err(|source| ReportError::Manifest {
                path: manifest_path.clone(),
                source,
            })?;
        variants.push(OutputVariant {
            name: entry.file_name().to_string_lossy().into_owned(),
            dir,
            manifest,
        });
    }
    if variants.is_empty() {
        return Err(ReportError::NoVariants {
            path: out.to_path_buf(),
        });
    }
    // The data manifest's order (recorded in the run's settings), so that its first variant leads
    // tables and is the card's default config; by name for variants the settings do not list.
    let position = |v: &OutputVariant| {
        v.manifest.settings["variants"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .position(|x| x["name"].as_str() == Some(v.name.as_str()))
            })
            .unwrap_or(usize::MAX)
    };
    variants.sort_by(|a, b| {
        position(a)
            .cmp(&position(b))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(variants)
}

/// Whether the research's training code keeps this ref (see the module documentation).
pub fn usable_for_training(row: &Row, options: &ReportOptions) -> bool {
    let mut remaining = 0usize;
    let mut best = f32::NEG_INFINITY;
    for (proposal, &iou) in row.proposals.iter().zip(&row.proposal_iou) {
        let b = proposal.bbox;
        let width = f64::from(b.xmax) - f64::from(b.xmin);
        let height = f64::from(b.ymax) - f64::from(b.ymin);
        if proposal.score > options.train_conf as f32
            && width > options.min_size
            && height > options.min_size
        {
            remaining += 1;
            best = best.max(iou);
        }
    }
    // `best` stays -inf with nothing left, which no finite threshold is below.
    remaining >= options.min_proposals && best > options.min_best_iou as f32
}

/// What the report keeps of one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefOutcome {
    pub image_id: i64,
    pub proposals: usize,
    pub best_iou: f32,
    pub usable: bool,
}

impl RefOutcome {
    /// The outcome of one row under `options`.
    pub fn of(row: &Row, options: &ReportOptions) -> RefOutcome {
        RefOutcome {
            image_id: row.image_id,
            proposals: row.proposals.len(),
            best_iou: row.best_iou,
            usable: usable_for_training(row, options),
        }
    }
}

/// Recall at one IoU threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallAt {
    pub iou: f64,
    /// Share of refs with `best_iou >= iou`.
    pub recall: f64,
}

/// The numbers of one split (or of all splits together, split `all`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitStats {
    pub split: String,
    pub refs: u64,
    /// Distinct images of the refs.
    pub images: u64,
    pub mean_proposals: f64,
    pub median_proposals: f64,
    pub mean_best_iou: f64,
    pub recall: Vec<RecallAt>,
    /// Refs the research's training filter keeps.
    pub usable_refs: u64,
    /// `usable_refs / refs`.
    pub usable_share: f64,
    /// `proposal_histogram[n]` = refs with exactly `n` proposals.
    pub proposal_histogram: Vec<u64>,
    /// Recall at `i / CURVE_STEPS`, `i` = 0..=CURVE_STEPS.
    pub recall_curve: Vec<f64>,
}

fn share(count: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

/// The IoU thresholds the recall curve is sampled at.
pub fn curve_thresholds() -> Vec<f64> {
    (0..=CURVE_STEPS)
        .map(|i| f64::from(i) / f64::from(CURVE_STEPS))
        .collect()
}

fn recall(outcomes: &[RefOutcome], threshold: f64) -> f64 {
    let hits = outcomes
        .iter()
        .filter(|o| o.best_iou >= threshold as f32)
        .count();
    share(hits as u64, outcomes.len() as u64)
}

impl SplitStats {
    /// The numbers of a set of refs.
    pub fn of(split: &str, outcomes: &[RefOutcome], options: &ReportOptions) -> SplitStats {
        let refs = outcomes.len() as u64;
        let images = outcomes
            .iter()
            .map(|o| o.image_id)
            .collect::<BTreeSet<_>>()
            .len() as u64;
        let mut counts: Vec<usize> = outcomes.iter().map(|o| o.proposals).collect();
        counts.sort_unstable();
        let median_proposals = match counts.len() {
            0 => 0.0,
            n if n % 2 == 1 => counts[n / 2] as f64,
            n => (counts[n / 2 - 1] as f64 + counts[n / 2] as f64) / 2.0,
        };
        let mean = |sum: f64| if refs == 0 { 0.0 } else { sum / refs as f64 };
        let mut proposal_histogram = vec![0u64; counts.last().map_or(0, |&m| m + 1)];
        for &c in &counts {
            proposal_histogram[c] += 1;
        }
        let usable_refs = outcomes.iter().filter(|o| o.usable).count() as u64;
        SplitStats {
            split: split.to_string(),
            refs,
            images,
            mean_proposals: mean(counts.iter().map(|&c| c as f64).sum()),
            median_proposals,
            mean_best_iou: mean(outcomes.iter().map(|o| f64::from(o.best_iou)).sum()),
            recall: options
                .recall_at
                .iter()
                .map(|&iou| RecallAt {
                    iou,
                    recall: recall(outcomes, iou),
                })
                .collect(),
            usable_refs,
            usable_share: share(usable_refs, refs),
            proposal_histogram,
            recall_curve: curve_thresholds()
                .into_iter()
                .map(|t| recall(outcomes, t))
                .collect(),
        }
    }
}

/// The numbers of one variant: per split, then all splits together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantStats {
    pub variant: String,
    pub detector: String,
    pub splits: Vec<SplitStats>,
    /// All splits together (split name `all`).
    pub all: SplitStats,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub options: ReportOptions,
    /// The IoU thresholds of every `recall_curve`.
    pub curve_thresholds: Vec<f64>,
    pub variants: Vec<VariantStats>,
}

impl ReportOptions {
    /// Refuse thresholds that make no sense.
    pub fn validate(&self) -> Result<(), ReportError> {
        let finite = [self.train_conf, self.min_size, self.min_best_iou];
        if finite.iter().any(|v| !v.is_finite()) || self.recall_at.iter().any(|v| !v.is_finite()) {
            return Err(ReportError::Options(format!(
                "thresholds must be finite numbers: {self:?}"
            )));
        }
        if self.recall_at.is_empty() {
            return Err(ReportError::Options(
                "--recall-at needs at least one IoU threshold".to_string(),
            ));
        }
        Ok(())
    }
}

/// The outcome of every ref of a variant, per split in reading order.
pub fn variant_outcomes(
    variant: &OutputVariant,
    options: &ReportOptions,
) -> Result<Vec<(String, Vec<RefOutcome>)>, ReportError> {
    variant
        .splits()
        .into_iter()
        .map(|split| {
            let mut outcomes = Vec::new();
            for path in variant.shard_paths(&split)? {
                outcomes.extend(read_rows(&path)?.iter().map(|r| RefOutcome::of(r, options)));
            }
            Ok((split, outcomes))
        })
        .collect()
}

/// The report of an output folder.
pub fn compute(out: &Path, options: &ReportOptions) -> Result<Report, ReportError> {
    options.validate()?;
    let variants = find_variants(out)?
        .iter()
        .map(|variant| {
            let per_split = variant_outcomes(variant, options)?;
            let all: Vec<RefOutcome> = per_split
                .iter()
                .flat_map(|(_, o)| o.iter().copied())
                .collect();
            Ok(VariantStats {
                variant: variant.name.clone(),
                detector: variant.detector_name(),
                splits: per_split
                    .iter()
                    .map(|(split, o)| SplitStats::of(split, o, options))
                    .collect(),
                all: SplitStats::of("all", &all, options),
            })
        })
        .collect::<Result<Vec<_>, ReportError>>()?;
    Ok(Report {
        options: options.clone(),
        curve_thresholds: curve_thresholds(),
        variants,
    })
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

impl Report {
    fn recall_headers(&self) -> Vec<String> {
        self.options
            .recall_at
            .iter()
            .map(|t| format!("R@{t}"))
            .collect()
    }

    /// One line per variant × split (and the variant's `all` line), rounded for reading.
    pub fn table(&self) -> Table {
        let mut headers: Vec<String> = [
            "variant",
            "split",
            "refs",
            "images",
            "mean #boxes",
            "median #boxes",
            "mean best IoU",
        ]
        .map(String::from)
        .to_vec();
        headers.extend(self.recall_headers());
        headers.push("usable for training".to_string());
        let mut table = Table::new(headers);
        table.text_columns = 2;
        for variant in &self.variants {
            for stats in variant.splits.iter().chain([&variant.all]) {
                let mut row = vec![
                    variant.variant.clone(),
                    stats.split.clone(),
                    thousands(stats.refs),
                    thousands(stats.images),
                    format!("{:.2}", stats.mean_proposals),
                    format!("{}", stats.median_proposals),
                    format!("{:.3}", stats.mean_best_iou),
                ];
                row.extend(stats.recall.iter().map(|r| percent(r.recall)));
                row.push(format!(
                    "{} ({})",
                    percent(stats.usable_share),
                    thousands(stats.usable_refs)
                ));
                table.push(row);
            }
        }
        table
    }

    /// The variants side by side, one line per split, like Table 3 of the research:
    /// `split (refs) | <variant> best IoU | #boxes | …`. When the variants' ref counts of a split
    /// differ (failed images), the first column lists each.
    pub fn compare_table(&self) -> Table {
        let mut headers = vec!["split (refs)".to_string()];
        for variant in &self.variants {
            headers.push(format!("{} best IoU", variant.variant));
            headers.push("#boxes".to_string());
        }
        let mut table = Table::new(headers);
        let mut splits: Vec<String> = Vec::new();
        for variant in &self.variants {
            for stats in &variant.splits {
                if !splits.contains(&stats.split) {
                    splits.push(stats.split.clone());
                }
            }
        }
        splits.sort_by_key(|s| (split_rank(s), s.clone()));
        splits.push("all".to_string());
        for split in &splits {
            let stats: Vec<Option<&SplitStats>> = self
                .variants
                .iter()
                .map(|v| v.splits.iter().chain([&v.all]).find(|s| &s.split == split))
                .collect();
            let counts: BTreeSet<u64> = stats.iter().flatten().map(|s| s.refs).collect();
            let refs = if counts.len() == 1 {
                thousands(*counts.first().expect("one count"))
            } else {
                stats
                    .iter()
                    .map(|s| s.map_or("-".to_string(), |s| thousands(s.refs)))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            let mut row = vec![format!("{split} ({refs})")];
            for s in &stats {
                match s {
                    Some(s) => {
                        row.push(format!("{:.3}", s.mean_best_iou));
                        row.push(format!("{:.2}", s.mean_proposals));
                    }
                    None => row.extend(["-".to_string(), "-".to_string()]),
                }
            }
            table.push(row);
        }
        table
    }

    /// Every number at full precision (f64 shortest round-trip form), one line per variant ×
    /// split, `all` lines included.
    pub fn csv(&self) -> String {
        let mut header = vec![
            "variant",
            "detector",
            "split",
            "refs",
            "images",
            "mean_proposals",
            "median_proposals",
            "mean_best_iou",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        header.extend(
            self.options
                .recall_at
                .iter()
                .map(|t| format!("recall_at_{t}")),
        );
        header.extend(["usable_refs".to_string(), "usable_share".to_string()]);
        let mut out = header.join(",");
        out.push('\n');
        for variant in &self.variants {
            for s in variant.splits.iter().chain([&variant.all]) {
                let mut fields = vec![
                    csv_field(&variant.variant),
                    csv_field(&variant.detector),
                    csv_field(&s.split),
                    s.refs.to_string(),
                    s.images.to_string(),
                    s.mean_proposals.to_string(),
                    s.median_proposals.to_string(),
                    s.mean_best_iou.to_string(),
                ];
                fields.extend(s.recall.iter().map(|r| r.recall.to_string()));
                fields.extend([s.usable_refs.to_string(), s.usable_share.to_string()]);
                out.push_str(&fields.join(","));
                out.push('\n');
            }
        }
        out
    }

    /// The report as pretty JSON (every number, the histograms and the curves).
    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a report serialises");
        text.push('\n');
        text
    }

    /// The Markdown report: thresholds, the per-split table, the side-by-side table, the plots.
    pub fn markdown(&self, plots: &[PathBuf]) -> String {
        let o = &self.options;
        let mut md = String::from("# refaug report\n\n");
        md.push_str(&format!(
            "Recall at t: share of refs whose best proposal has IoU >= t with the ground truth. \
             Usable for training: the research's filter (proposals with confidence > {}, width \
             and height > {} px; at least {} left; best remaining IoU > {}).\n\n",
            o.train_conf, o.min_size, o.min_proposals, o.min_best_iou
        ));
        md.push_str("## Per split\n\n");
        md.push_str(&self.table().markdown());
        md.push_str("\n## Variants side by side (mean over refs)\n\n");
        md.push_str(&self.compare_table().markdown());
        if !plots.is_empty() {
            md.push_str("\n## Plots\n\n");
            for plot in plots {
                let name = plot
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                md.push_str(&format!("![{name}]({name})\n\n"));
            }
        }
        md
    }
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// The files `refaug report` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub csv: PathBuf,
    pub json: PathBuf,
    /// The recall-vs-IoU curve, PNG then SVG.
    pub recall_plot: [PathBuf; 2],
    /// The proposals-per-ref histogram, PNG then SVG.
    pub histogram_plot: [PathBuf; 2],
}

/// File names inside the report folder.
pub const MARKDOWN_FILE: &str = "report.md";
pub const CSV_FILE: &str = "report.csv";
pub const JSON_FILE: &str = "report.json";
pub const RECALL_PLOT: &str = "recall_vs_iou";
pub const HISTOGRAM_PLOT: &str = "proposals_per_ref";

fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    fs_err::write(path, text).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write the report's files into `dir` (created if needed).
pub fn write(report: &Report, dir: &Path) -> Result<ReportFiles, ReportError> {
    fs_err::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = ReportFiles {
        markdown: dir.join(MARKDOWN_FILE),
        csv: dir.join(CSV_FILE),
        json: dir.join(JSON_FILE),
        recall_plot: [
            dir.join(format!("{RECALL_PLOT}.png")),
            dir.join(format!("{RECALL_PLOT}.svg")),
        ],
        histogram_plot: [
            dir.join(format!("{HISTOGRAM_PLOT}.png")),
            dir.join(format!("{HISTOGRAM_PLOT}.svg")),
        ],
    };
    plot::recall_curve_png(report, &files.recall_plot[0])?;
    plot::recall_curve_svg(report, &files.recall_plot[1])?;
    plot::histogram_png(report, &files.histogram_plot[0])?;
    plot::histogram_svg(report, &files.histogram_plot[1])?;
    write_file(&files.csv, &report.csv())?;
    write_file(&files.json, &report.json())?;
    write_file(
        &files.markdown,
        &report.markdown(&[
            files.recall_plot[0].clone(),
            files.histogram_plot[0].clone(),
        ]),
    )?;
    Ok(files)
}
