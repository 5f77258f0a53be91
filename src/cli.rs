//! The command line: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use crate::report as refaug_report;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "refaug",
    version,
    about = "Box-augmented referring-expression datasets"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Proposal quality per variant and split: tables (terminal, Markdown, CSV, JSON) and charts.
    Report {
        /// The output folder of a run.
        out: PathBuf,
        /// Where to write the report files [default: <OUT>/report].
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Print the variants side by side (like the research's Table 3).
        #[arg(long)]
        compare: bool,
        #[command(flatten)]
        thresholds: ThresholdArgs,
    },
    /// Make a folder that can be pushed as is to the Hugging Face Hub.
    Publish {
        /// The output folder of a run.
        out: PathBuf,
        /// The folder to create (must be absent or empty).
        dir: PathBuf,
        /// The Hub repository it is meant for (`namespace/name`), for the card's examples.
        #[arg(long)]
        repo_id: Option<String>,
        #[command(flatten)]
        thresholds: ThresholdArgs,
    },
    /// Export the variants in another format.
    Export {
        /// The output folder of a run.
        out: PathBuf,
        #[arg(long, value_enum)]
        format: ExportFormatArg,
        /// Where to write the files [default: <OUT>/export].
        #[arg(long)]
        dest: Option<PathBuf>,
    },
}

/// The research's training filter and recall thresholds (defaults: the research's values).
#[derive(Args, Debug, Clone)]
pub struct ThresholdArgs {
    /// Training filter: keep proposals with confidence above this.
    #[arg(long, default_value_t = refaug_report::RESEARCH_TRAIN_CONF)]
    pub train_conf: f64,
    /// Training filter: keep proposals wider and taller than this (pixels).
    #[arg(long, default_value_t = refaug_report::RESEARCH_MIN_SIZE)]
    pub min_size: f64,
    /// Training filter: a ref needs at least this many proposals left.
    #[arg(long, default_value_t = refaug_report::RESEARCH_MIN_PROPOSALS)]
    pub min_proposals: usize,
    /// Training filter: a ref's best remaining IoU must exceed this.
    #[arg(long, default_value_t = refaug_report::RESEARCH_MIN_BEST_IOU)]
    pub min_best_iou: f64,
    /// IoU thresholds for recall (best IoU >= t), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = refaug_report::RESEARCH_RECALL_AT)]
    pub recall_at: Vec<f64>,
}

impl ThresholdArgs {
    fn options(&self) -> refaug_report::ReportOptions {
        refaug_report::ReportOptions {
            train_conf: self.train_conf,
            min_size: self.min_size,
            min_proposals: self.min_proposals,
            min_best_iou: self.min_best_iou,
            recall_at: self.recall_at.clone(),
        }
    }
}

/// `--format` values of `refaug export`.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ExportFormatArg {
    /// `bboxes[<variant>].csv` as the research notebook reads it.
    SeedCsv,
}

fn report(
    out: PathBuf,
    out_dir: Option<PathBuf>,
    compare: bool,
    t: &ThresholdArgs,
) -> anyhow::Result<ExitCode> {
    let report = refaug_report::compute(&out, &t.options())?;
    let table = if compare {
        report.compare_table()
    } else {
        report.table()
    };
    print!("{}", table.markdown());
    let dir = out_dir.unwrap_or_else(|| out.join(refaug_report::REPORT_DIR));
    let files = refaug_report::write(&report, &dir)?;
    eprintln!(
        "report written to {} ({})",
        dir.display(),
        files.markdown.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Report {
            out,
            out_dir,
            compare,
            thresholds,
        } => report(out, out_dir, compare, &thresholds),
        Command::Publish {
            out,
            dir,
            repo_id,
            thresholds,
        } => {
            let options = crate::publish::PublishOptions {
                report: thresholds.options(),
                repo_id,
            };
            let summary = crate::publish::publish(&out, &dir, &options)?;
            eprintln!(
                "published {} variant(s) to {}: {} file(s), {} shard(s) hard-linked, {} copied",
                summary.variants.len(),
                dir.display(),
                summary.files.len(),
                summary.linked,
                summary.copied
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { out, format, dest } => {
            let dest = dest.unwrap_or_else(|| out.join(crate::export::EXPORT_DIR));
            let format = match format {
                ExportFormatArg::SeedCsv => crate::export::ExportFormat::SeedCsv,
            };
            for s in crate::export::export(&out, &dest, format)? {
                eprintln!(
                    "{}: {} box(es) of {} image(s) -> {}",
                    s.variant,
                    s.boxes,
                    s.images,
                    s.path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
