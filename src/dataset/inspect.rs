//! `refaug inspect`: counts per split and the health of a dataset source, as text or JSON.

use std::fmt::Write as _;

use super::error::{DatasetError, Problem, verdict};
use super::{DatasetSource, ImageCheck, SourceFiles, Summary, check_images, load};

/// What `refaug inspect` found: the counts when the source loaded, and every problem.
#[derive(Debug, Clone)]
pub struct InspectReport {
    pub source: DatasetSource,
    /// The annotation files, when they were read.
    pub sources: Option<SourceFiles>,
    /// Counts per selected split, when the source loaded (no structural problem).
    pub summary: Option<Summary>,
    /// Structural problems (then `summary` is `None`) or image-file problems.
    pub problems: Vec<Problem>,
}

impl InspectReport {
    /// Loads `source` and checks its image files. Structural problems become the report's problems
    /// (a report without counts); errors that stop reading altogether (I/O, malformed JSON or
    /// pickle, SHA-256 mismatch) are returned as errors.
    pub fn run(
        source: &DatasetSource,
        how: ImageCheck,
        limits: &crate::decode::Limits,
    ) -> Result<InspectReport, DatasetError> {
        match load(source) {
            Ok(dataset) => {
                let problems = check_images(&dataset, how, limits);
                let summary = Summary::of(&dataset, &source.selected_splits());
                Ok(InspectReport {
                    source: source.clone(),
                    sources: Some(dataset.sources),
                    summary: Some(summary),
                    problems,
                })
            }
            Err(DatasetError::Invalid { problems }) => Ok(InspectReport {
                source: source.clone(),
                sources: None,
                summary: None,
                problems,
            }),
            Err(e) => Err(e),
        }
    }

    /// No problem of any kind.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// The one-line verdict, e.g. `source OK: 0 problems`.
    pub fn verdict(&self) -> String {
        verdict(&self.problems)
    }

    /// The human-readable report: source, a Markdown table of counts, the verdict, each problem.
    pub fn to_text(&self) -> String {
        let s = &self.source;
        let mut out = String::new();
        let _ = writeln!(out, "dataset: {} split by {}", s.kind, s.split_by);
        let _ = writeln!(out, "annotations: {}", s.annotations_dir.display());
        if let Some(files) = &self.sources {
            for f in [&files.instances, &files.refs] {
                let name = f.path.file_name().unwrap_or_default().to_string_lossy();
                let _ = writeln!(out, "  {name}: {} bytes, sha256 {}", f.size, f.sha256);
            }
        }
        let _ = writeln!(out, "images: {}", s.images_dir.display());
        if let Some(summary) = &self.summary {
            out.push('\n');
            let header = ["split", "images", "refs", "sentences", "categories"];
            let rows: Vec<[String; 5]> = summary
                .splits
                .iter()
                .chain(std::iter::once(&summary.total))
                .map(|c| {
                    [
                        c.split.clone(),
                        c.images.to_string(),
                        c.refs.to_string(),
                        c.sentences.to_string(),
                        c.categories.to_string(),
                    ]
                })
                .collect();
            let widths: Vec<usize> = (0..5)
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].len())
                        .chain([header[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: &[String]| {
                let mut l = String::from("|");
                for (i, c) in cells.iter().enumerate() {
                    if i == 0 {
                        let _ = write!(l, " {c:<w$} |", w = widths[i]);
                    } else {
                        let _ = write!(l, " {c:>w$} |", w = widths[i]);
                    }
                }
                l
            };
            let _ = writeln!(out, "{}", line(&header.map(String::from)));
            let rule: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if i == 0 {
                        "-".repeat(*w)
                    } else {
                        format!("{}:", "-".repeat(w - 1))
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", line(&rule));
            for r in &rows {
                let _ = writeln!(out, "{}", line(r));
            }
        }
        out.push('\n');
        let _ = writeln!(out, "{}", self.verdict());
        for p in &self.problems {
            let _ = writeln!(out, "  - {p}");
        }
        out
    }

    /// The machine-readable report.
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.source;
        serde_json::json!({
            "dataset": {
                "kind": s.kind.as_str(),
                "split_by": s.split_by.as_str(),
                "annotations": s.annotations_dir,
                "images": s.images_dir,
                "splits": s.selected_splits(),
            },
            "sources": self.sources,
            "splits": self.summary.as_ref().map(|x| &x.splits),
            "total": self.summary.as_ref().map(|x| &x.total),
            "healthy": self.healthy(),
            "verdict": self.verdict(),
            "problems": self.problems.iter().map(|p| serde_json::json!({
                "kind": p.kind().as_str(),
                "fatal": p.is_fatal(),
                "message": p.to_string(),
            })).collect::<Vec<_>>(),
        })
    }
}
