//! The command line: parse, run, map the outcome to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report as refaug_report;

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
    /// Count images, refs, sentences and categories per split and check the dataset source
    /// (exit 0 healthy, 1 problems found, 2 error).
    Inspect {
        /// The manifest; only its `[dataset]` part is used.
        #[arg(long, default_value = "data-manifest.toml")]
        manifest: PathBuf,
        /// Print a JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Decode every image (as a run would) instead of checking the files' metadata: finds
        /// truncated and corrupt images and sizes that differ from instances.json.
        #[arg(long)]
        deep: bool,
        /// Image files larger than this many bytes are problems.
        #[arg(long, default_value_t = crate::decode::DEFAULT_MAX_FILE_BYTES)]
        max_image_bytes: u64,
    },
    /// Run the job of a data manifest: every image once through every variant's detector, one
    /// Parquet dataset per variant. Resumes an interrupted run. Exit 0 done, 1 some images failed
    /// (see errors.json; 0 with --allow-errors), 2 error, 3 this worker's part is done but other
    /// workers' is not.
    Run(RunArgs),
    /// Check an output: every shard against the schema, its sha256 and the row invariants, and
    /// the row counts against the source (exit 0 valid, 1 problems found, 2 error).
    Validate {
        /// The output folder.
        out: PathBuf,
    },
    /// Complete an output made by several `--shard i/N` workers: check every unit is committed,
    /// then write each variant's manifest.json and errors.json.
    Merge {
        /// The output folder.
        out: PathBuf,
    },
    /// Check the ONNX Runtime installation: library path, version, execution providers.
    Doctor {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compare refaug with the original libraries' reference outputs, stage by stage: decoded
    /// pixels, model inputs, box counts, boxes (exit 0 every rate >= --min-rate, 1 below, 2 error).
    Parity(ParityArgs),
    /// Add frozen CLIP embeddings beside variants already written by `run`: for every proposal
    /// shard, `<variant>/embeddings/<same name>` with the embeddings of the kept proposals, each
    /// ref's ground truth, the whole image and every sentence (the encoder and filter are the
    /// manifest's `[embed]`). Skips shards already embedded from the same source. Exit 0 done,
    /// 1 some shards or images failed (see embeddings/errors.json), 2 error.
    Embed(EmbedArgs),
    /// Compare refaug's CLIP stage with the reference's (`<reference>/<dataset>-clip/`): which
    /// proposals are kept, crop boxes, crops, model inputs (sha256), image embeddings, tokens,
    /// text embeddings (exit 0 all exact and embeddings within 1e-5, 1 otherwise, 2 error).
    ParityClip(ParityClipArgs),
    /// Detector specs (`detectors/*.toml`).
    Detectors {
        #[command(subcommand)]
        command: DetectorsCommand,
    },
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
        /// Add a gallery of N refs (`gallery/index.html`, see `refaug gallery`), linked from the
        /// card.
        #[arg(long, value_name = "N")]
        gallery: Option<usize>,
        #[command(flatten)]
        images: ImagesArgs,
        #[command(flatten)]
        thresholds: ThresholdArgs,
    },
    /// A static site to look at the proposals: per ref the image with the ground truth and each
    /// variant's boxes, the sentences and the numbers. Opens from file://, needs no server.
    Gallery(GalleryArgs),
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

/// `refaug run`'s flags: how this run behaves. What the job is lives in the data manifest.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The data manifest.
    #[arg(long, default_value = "data-manifest.toml")]
    pub manifest: PathBuf,
    /// Output folder (default: the manifest's `[output] dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only these splits (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub splits: Option<Vec<String>>,
    /// Only these variants (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub variants: Option<Vec<String>>,
    /// Only the first N images of each split (a quick run).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Do worker i of N (0-based): a deterministic share of the shards. Also read from
    /// SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or JOB_COMPLETION_INDEX/REFAUG_SHARD_COUNT.
    #[arg(long)]
    pub shard: Option<String>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Discard an existing output made with other settings.
    #[arg(long)]
    pub force: bool,
    /// Exit 0 even when some images could not be processed (they are still in errors.json).
    #[arg(long)]
    pub allow_errors: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Refuse image files larger than this many bytes before reading them.
    #[arg(long, default_value_t = crate::decode::DEFAULT_MAX_FILE_BYTES)]
    pub max_image_bytes: u64,
    /// Decoded pixels the decode pool may hold at once, in millions (an image larger than this
    /// is decoded alone).
    #[arg(long, default_value_t = crate::pipeline::run::DEFAULT_PIXEL_BUDGET >> 20)]
    pub pixel_budget_mpx: u64,
}

/// Where a gallery finds the output's source images.
#[derive(Args, Debug, Clone)]
pub struct ImagesArgs {
    /// The folder the rows' `file_name`s are relative to [default: the data manifest's
    /// `[dataset] images`].
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// The data manifest the output was made from (checked to be the output's dataset); used
    /// for its images folder when --images is not given.
    #[arg(long, default_value = "data-manifest.toml")]
    pub manifest: PathBuf,
}

impl ImagesArgs {
    fn images_from(&self) -> crate::gallery::thumbs::ImagesFrom {
        use crate::gallery::thumbs::ImagesFrom;
        match &self.images {
            Some(dir) => ImagesFrom::Dir(dir.clone()),
            None => ImagesFrom::Manifest(self.manifest.clone()),
        }
    }
}

/// `refaug gallery`'s flags: which refs, how many, in which order.
#[derive(clap::Args, Debug)]
pub struct GalleryArgs {
    /// The output folder of a run.
    pub out: PathBuf,
    /// The site's folder [default: <OUT>/gallery]; a previous gallery there is replaced.
    #[arg(long)]
    pub dest: Option<PathBuf>,
    /// How many refs to show.
    #[arg(long, default_value_t = crate::gallery::DEFAULT_N)]
    pub n: usize,
    /// Show exactly these refs (comma-separated ref_ids; --n is then ignored).
    #[arg(long, value_delimiter = ',')]
    pub refs: Option<Vec<i64>>,
    /// Which refs come first (and are kept by --n).
    #[arg(long, value_enum, default_value_t = crate::gallery::select::SortOrder::default())]
    pub sort: crate::gallery::select::SortOrder,
    /// Seed of `--sort random`.
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Only these splits (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub splits: Option<Vec<String>>,
    /// Only these variants, in this order (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub variants: Option<Vec<String>>,
    /// Longer side of the thumbnails, pixels.
    #[arg(long, default_value_t = crate::gallery::DEFAULT_THUMBNAIL_SIZE)]
    pub thumbnail_size: u32,
    #[command(flatten)]
    pub images: ImagesArgs,
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
}

/// `refaug parity`'s flags.
#[derive(clap::Args, Debug)]
pub struct ParityArgs {
    /// The reference folder: `<dataset>/images/` and `<dataset>-results/` (fingerprints.jsonl,
    /// `<detector>.csv`).
    #[arg(long, default_value = "../shared/reference")]
    pub reference: PathBuf,
    /// The dataset in the reference folder.
    #[arg(long, default_value = "public-24")]
    pub dataset: String,
    /// Load every model from this folder (by the spec's model file name) instead of the path
    /// the spec names.
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// The detector specs; each reference detector is the spec of the same `name`.
    #[arg(long, default_value = "detectors")]
    pub detectors: PathBuf,
    /// Where refaug's `<detector>.csv` and `fingerprints.jsonl` are written.
    #[arg(long, default_value = "target/parity")]
    pub out: PathBuf,
    /// Exit 1 when a stage's match rate is below this (0..1).
    #[arg(long, default_value_t = 1.0)]
    pub min_rate: f64,
    /// `cpu` or `cuda[:N]` (the reference ran on the CPU).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Intra-op threads of each session, 0 = all cores (the reference's onnxruntime default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Match boxes narrower or lower than this many px by their corners (within 0.01 px) instead
    /// of their IoU, as `compare_boxes.py --thin-px`: unrounded thin boxes (AutoShape's) jitter in
    /// the last float digits between CPUs. 0 = off.
    #[arg(long, default_value_t = 1.0)]
    pub thin_px: f64,
}

/// How a command runs its ONNX models (`run`, `embed`); each flag overrides the manifest's `[run]`.
#[derive(clap::Args, Debug)]
pub struct RuntimeArgs {
    /// `cpu`, `cuda` or `cuda:N` (default: the manifest's).
    #[arg(long)]
    pub device: Option<String>,
    /// Items per model call: images per detector call, crops or sentences per encoder call
    /// (default: the manifest's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Threads in all, 0 = all cores (default: the manifest's).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// [`RuntimeArgs`] with the manifest's defaults applied and checked.
struct Runtime {
    device: crate::detect::runtime::Device,
    batch_size: usize,
    /// As given: 0 = all cores.
    threads: usize,
}

impl RuntimeArgs {
    /// The flags over the manifest's `[run]`, refusing numbers that have no meaning at 0 or
    /// would only exhaust the machine.
    fn resolve(&self, defaults: &crate::manifest::RunDefaults) -> anyhow::Result<Runtime> {
        let device = match &self.device {
            Some(d) => d.parse()?,
            None => defaults.device,
        };
        let batch_size = self.batch_size.unwrap_or(defaults.batch_size);
        let threads = self.threads.unwrap_or(defaults.threads);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if batch_size == 0 {
            anyhow::bail!("--batch-size (or [run] batch_size) must be at least 1");
        }
        if threads > MAX_THREADS_PER_CORE * cores {
            anyhow::bail!(
                "--threads {threads} is more than {MAX_THREADS_PER_CORE} per core ({cores} cores): \
                 ONNX Runtime would start that many threads per session; use 0 for all cores"
            );
        }
        Ok(Runtime {
            device,
            batch_size,
            threads,
        })
    }
}

/// `refaug embed`'s flags (how this run behaves; what it makes is the manifest's `[embed]`).
#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    #[arg(long, default_value = "data-manifest.toml")]
    pub manifest: PathBuf,
    /// Only these variants (repeatable); default all of the manifest's.
    #[arg(long = "variant")]
    pub variants: Vec<String>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Rewrite embedding shards that are already there.
    #[arg(long)]
    pub force: bool,
    /// Only the first N proposal shards (name order) of each variant (a quick run).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Do worker i of N (0-based): of each variant's shards, those at positions ≡ i (mod N).
    /// Also read from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or
    /// JOB_COMPLETION_INDEX/REFAUG_SHARD_COUNT.
    #[arg(long)]
    pub shard: Option<String>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `refaug parity-clip`'s flags.
#[derive(clap::Args, Debug)]
pub struct ParityClipArgs {
    /// The reference folder: `<dataset>/`, `<dataset>-results/<detector>.csv`, `<dataset>-clip/`.
    #[arg(long, default_value = "../shared/reference")]
    pub reference: PathBuf,
    /// The dataset in the reference folder.
    #[arg(long, default_value = "public-24")]
    pub dataset: String,
    /// The detector whose proposals the reference cropped.
    #[arg(long, default_value = "yolov8n-cal")]
    pub detector: String,
    /// The encoder spec the reference's embeddings were made with.
    #[arg(long, default_value = "encoders/shared-clip-rn50-small.toml")]
    pub encoder: PathBuf,
    /// `cpu` or `cuda[:N]` (the reference ran on the CPU).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Intra-op threads, 0 = all cores.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Crops per image-encoder call.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
}

#[derive(Subcommand, Debug)]
pub enum DetectorsCommand {
    /// Load each spec, check the model's sha256, open a session, validate the model's inputs and
    /// outputs, run one synthetic image and print a summary.
    Check {
        /// Spec files.
        #[arg(required = true)]
        specs: Vec<std::path::PathBuf>,
        /// `cpu` or `cuda[:N]`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Intra-op threads of the session.
        #[arg(long, default_value_t = 1)]
        threads: usize,
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
    let gallery = out
        .join(crate::gallery::GALLERY_DIR)
        .join(crate::gallery::INDEX_FILE);
    if gallery.is_file() {
        refaug_report::link_gallery(&files.markdown, &gallery)?;
    }
    eprintln!(
        "report written to {} ({})",
        dir.display(),
        files.markdown.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `refaug gallery`: make the site, link it from the report when there is one.
fn gallery(args: &GalleryArgs) -> anyhow::Result<ExitCode> {
    use crate::gallery::{self, GalleryOptions};
    let dest = args
        .dest
        .clone()
        .unwrap_or_else(|| args.out.join(gallery::GALLERY_DIR));
    let options = GalleryOptions {
        n: args.n,
        refs: args.refs.clone(),
        sort: args.sort,
        seed: args.seed,
        splits: args.splits.clone(),
        variants: args.variants.clone(),
        images: args.images.images_from(),
        thumbnail_size: args.thumbnail_size,
        report: args.thresholds.options(),
    };
    let s = gallery::make(&args.out, &dest, &options)?;
    let index = dest.join(gallery::INDEX_FILE);
    eprintln!(
        "gallery: {} of {} refs, {} image(s), variants {}: {} ({:.1} MB: data {:.1} MB, thumbnails {:.1} MB)",
        s.refs,
        s.refs_in_output,
        s.images,
        s.variants.join(", "),
        index.display(),
        s.bytes as f64 / 1e6,
        s.data_bytes as f64 / 1e6,
        s.thumbnail_bytes as f64 / 1e6
    );
    let report_md = args
        .out
        .join(refaug_report::REPORT_DIR)
        .join(refaug_report::MARKDOWN_FILE);
    if report_md.is_file() {
        refaug_report::link_gallery(&report_md, &index)?;
        eprintln!("gallery: linked from {}", report_md.display());
    }
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
        Command::Inspect {
            manifest,
            json,
            deep,
            max_image_bytes,
        } => {
            let how = if deep {
                crate::dataset::ImageCheck::Decode
            } else {
                crate::dataset::ImageCheck::Metadata
            };
            let limits = crate::decode::Limits {
                max_file_bytes: max_image_bytes,
            };
            inspect(&manifest, json, how, &limits)
        }
        Command::Run(args) => run_job(args),
        Command::Validate { out } => validate(&out),
        Command::Merge { out } => merge(&out),
        Command::Doctor { json } => doctor(json),
        Command::Parity(args) => parity(&args),
        Command::ParityClip(args) => parity_clip(&args),
        Command::Embed(args) => embed(&args),
        Command::Detectors {
            command:
                DetectorsCommand::Check {
                    specs,
                    device,
                    threads,
                },
        } => detectors_check(&specs, &device, threads),
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
            gallery,
            images,
            thresholds,
        } => {
            let options = crate::publish::PublishOptions {
                report: thresholds.options(),
                repo_id,
                gallery: gallery.map(|n| crate::gallery::GalleryOptions {
                    n,
                    images: images.images_from(),
                    report: thresholds.options(),
                    ..crate::gallery::GalleryOptions::default()
                }),
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
        Command::Gallery(args) => gallery(&args),
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

fn inspect(
    manifest: &std::path::Path,
    json: bool,
    how: crate::dataset::ImageCheck,
    limits: &crate::decode::Limits,
) -> anyhow::Result<ExitCode> {
    let source = crate::manifest::Manifest::load_dataset_only(manifest)?;
    eprintln!(
        "reading {} and {}",
        source.instances_path().display(),
        source.refs_path().display()
    );
    let report = crate::dataset::InspectReport::run(&source, how, limits)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_job(args: RunArgs) -> anyhow::Result<ExitCode> {
    use crate::pipeline::plan::Worker;
    use crate::pipeline::run::{RunOptions, run};

    let mut manifest = crate::manifest::Manifest::load(&args.manifest)?;
    if let Some(out) = &args.out {
        manifest.output.dir = out.clone();
    }
    let worker = match &args.shard {
        Some(s) => Worker::parse(s).map_err(anyhow::Error::msg)?,
        None => Worker::from_env(|k| std::env::var(k).ok())
            .map_err(anyhow::Error::msg)?
            .unwrap_or_default(),
    };
    let runtime = args.runtime.resolve(&manifest.run)?;
    if args.limit == Some(0) {
        anyhow::bail!("--limit 0 selects no image; leave --limit out to take every image");
    }
    if args.pixel_budget_mpx == 0 {
        anyhow::bail!("--pixel-budget-mpx must be at least 1");
    }
    let opts = RunOptions {
        splits: args.splits.clone(),
        variants: args.variants.clone(),
        limit: args.limit,
        worker,
        device: runtime.device,
        batch_size: runtime.batch_size,
        threads: runtime.threads,
        images_per_shard: manifest.output.images_per_shard,
        force: args.force,
        image_limits: crate::decode::Limits {
            max_file_bytes: args.max_image_bytes,
        },
        pixel_budget: args.pixel_budget_mpx << 20,
    };
    let reporter = crate::progress::reporter(args.quiet);
    let summary = run(&manifest, &opts, reporter.as_ref())?;
    let out = manifest.output.dir.display();
    let rows: Vec<String> = summary
        .rows
        .iter()
        .map(|(v, n)| format!("{v} {n}"))
        .collect();
    let retried = if summary.units_retried > 0 {
        format!(
            ", {} redone to retry {} image(s) that had failed",
            summary.units_retried, summary.images_retried
        )
    } else {
        String::new()
    };
    eprintln!(
        "run: {} images in {} new shard(s) ({} already committed{retried}); rows written: {}",
        summary.images,
        summary.units_written,
        summary.units_resumed,
        if rows.is_empty() {
            "none".to_string()
        } else {
            rows.join(", ")
        }
    );
    let Some(done) = summary.complete else {
        eprintln!(
            "run: worker {}/{} is done; other workers' shards are still missing. When all are done, `refaug merge {out}` writes the manifests (a last worker's run does it by itself).",
            worker.index, worker.count
        );
        return Ok(ExitCode::from(3));
    };
    eprintln!(
        "run: complete: {out} ({} images, {} failed, {} refs without a row; see {out}/errors.json)",
        done.images, done.images_failed, done.refs_without_row
    );
    Ok(if done.images_failed > 0 && !args.allow_errors {
        eprintln!(
            "hint: {} image(s) failed; fix them and run again, or pass --allow-errors",
            done.images_failed
        );
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// More threads than this per core only add switching (and each session starts its own).
const MAX_THREADS_PER_CORE: usize = 8;

fn validate(out: &std::path::Path) -> anyhow::Result<ExitCode> {
    let report = crate::validate::validate_output(out)?;
    for n in &report.notes {
        println!("note: {n}");
    }
    for p in &report.problems {
        println!("{p}");
    }
    println!(
        "{}: {} shards, {} rows checked, {} problem(s)",
        if report.passed() { "valid" } else { "INVALID" },
        report.shards,
        report.rows,
        report.problems.len()
    );
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn merge(out: &std::path::Path) -> anyhow::Result<ExitCode> {
    let s = crate::pipeline::merge::merge(out)?;
    let rows: Vec<String> = s.rows.iter().map(|(v, n)| format!("{v} {n}")).collect();
    println!(
        "merged {}: {} images ({} failed), rows {}",
        out.display(),
        s.images,
        s.images_failed,
        rows.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `refaug parity`: run the stages, print the table, exit 1 below `--min-rate`.
fn parity(args: &ParityArgs) -> anyhow::Result<ExitCode> {
    use crate::detect::runtime::{Device, RuntimeOptions};
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let run_args = crate::parity::run::ParityArgs {
        reference: args.reference.clone(),
        dataset: args.dataset.clone(),
        detectors: args.detectors.clone(),
        models: args.models.clone(),
        out: args.out.clone(),
        runtime: RuntimeOptions {
            device: args.device.parse::<Device>()?,
            intra_threads: threads,
            ..RuntimeOptions::default()
        },
        criteria: crate::parity::compare::MatchCriteria {
            thin_px: args.thin_px,
            ..crate::parity::compare::MatchCriteria::default()
        },
    };
    let outcome = crate::parity::run::run(&run_args)?;
    print!("{outcome}");
    Ok(if outcome.passed(args.min_rate) {
        println!("parity: every stage at or above {}", args.min_rate);
        ExitCode::SUCCESS
    } else {
        println!(
            "parity: FAILED: a stage is below {} or could not run",
            args.min_rate
        );
        ExitCode::from(1)
    })
}

/// `refaug embed`: every selected variant's shards through the manifest's encoder.
fn embed(args: &EmbedArgs) -> anyhow::Result<ExitCode> {
    use crate::detect::runtime::RuntimeOptions;
    use crate::pipeline::plan::Worker;
    let manifest = crate::manifest::Manifest::load(&args.manifest)?;
    let runtime = args.runtime.resolve(&manifest.run)?;
    let Some(settings) = manifest.embed.clone() else {
        anyhow::bail!(
            "{}: no [embed] section; add `[embed] encoder = \"encoders/<name>.toml\"`",
            manifest.path.display()
        );
    };
    for v in &args.variants {
        if !manifest.variants.iter().any(|m| &m.name == v) {
            anyhow::bail!("{}: no variant `{v}`", manifest.path.display());
        }
    }
    if args.limit == Some(0) {
        anyhow::bail!("--limit 0 selects no shard; leave --limit out to take every shard");
    }
    let worker = match &args.shard {
        Some(s) => Worker::parse(s).map_err(anyhow::Error::msg)?,
        None => Worker::from_env(|k| std::env::var(k).ok())
            .map_err(anyhow::Error::msg)?
            .unwrap_or_default(),
    };
    let _lock = crate::pipeline::journal::lock_embed(
        &manifest.output.dir,
        &format!("{}-of-{}", worker.index, worker.count),
    )?;
    let cores = match runtime.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let opts = RuntimeOptions {
        device: runtime.device,
        intra_threads: cores,
        max_batch: runtime.batch_size,
        ..RuntimeOptions::default()
    };
    let spec = crate::embed::spec::EncoderSpec::from_file(&settings.encoder)?;
    let mut encoder = crate::embed::encoder::Encoder::new(spec, &opts)?;
    let reporter = crate::progress::reporter(args.quiet);
    let mut failed = false;
    for v in &manifest.variants {
        if !args.variants.is_empty() && !args.variants.contains(&v.name) {
            continue;
        }
        let job = crate::embed::run::EmbedJob {
            variant_dir: manifest.output.dir.join(&v.name),
            images_dir: manifest.dataset.images_dir.clone(),
            filter: settings.filter,
            truncate: settings.truncate,
            force: args.force,
            limit: args.limit,
            worker,
            threads: cores,
        };
        let s = crate::embed::run::embed_variant(&job, &mut encoder, &v.name, reporter.as_ref())?;
        eprintln!(
            "embed {}: {} shards written, {} already done, {} failed; {} image and {} text \
             embeddings; {} unreadable image(s)",
            v.name,
            s.shards_written,
            s.shards_skipped,
            s.failures.len(),
            s.image_embeddings,
            s.text_embeddings,
            s.image_failures.len(),
        );
        for (shard, e) in &s.failures {
            eprintln!("  {shard}: {e}");
        }
        failed |= !s.failures.is_empty() || !s.image_failures.is_empty();
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `refaug parity-clip`: run the CLIP stages, print the table, exit 1 unless all pass.
fn parity_clip(args: &ParityClipArgs) -> anyhow::Result<ExitCode> {
    use crate::detect::runtime::{Device, RuntimeOptions};
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let report = crate::parity::clip::run(&crate::parity::clip::ClipParityArgs {
        reference: args.reference.clone(),
        dataset: args.dataset.clone(),
        detector: args.detector.clone(),
        encoder: crate::embed::spec::EncoderSpec::from_file(&args.encoder)?,
        runtime: RuntimeOptions {
            device: args.device.parse::<Device>()?,
            intra_threads: threads,
            max_batch: args.batch_size.max(1),
            ..RuntimeOptions::default()
        },
    })?;
    print!("{report}");
    Ok(if report.passed() {
        println!("parity-clip: every exact stage at 100 %, embeddings within tolerance");
        ExitCode::SUCCESS
    } else {
        println!("parity-clip: FAILED");
        ExitCode::from(1)
    })
}

/// `refaug doctor`: load ONNX Runtime the way every run does and say what was loaded.
fn doctor(json: bool) -> anyhow::Result<ExitCode> {
    let rt = crate::detect::runtime::runtime()?;
    if json {
        let v = serde_json::json!({
            "library": rt.library_path(),
            "library_source": rt.library_source(),
            "version": rt.version(),
            "providers": rt.providers(),
            "ort_api_version": ort::MINOR_VERSION,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "ONNX Runtime library: {} (found via {})",
            rt.library_path().display(),
            rt.library_source()
        );
        println!("ONNX Runtime version: {}", rt.version());
        println!("execution providers: {}", rt.providers().join(", "));
        let cuda = rt
            .providers()
            .iter()
            .any(|p| p == crate::detect::runtime::CUDA_PROVIDER);
        println!(
            "--device cuda: {}",
            if cuda {
                "available (CUDA execution provider compiled in)"
            } else {
                "not available (CPU-only build)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn detectors_check(
    specs: &[std::path::PathBuf],
    device: &str,
    threads: usize,
) -> anyhow::Result<ExitCode> {
    use crate::detect::runtime::{Device, RuntimeOptions};
    let opts = RuntimeOptions {
        device: device.parse::<Device>()?,
        intra_threads: threads.max(1),
        ..RuntimeOptions::default()
    };
    let (mut ready, mut absent, mut failed) = (0, 0, 0);
    for path in specs {
        match check_one_spec(path, &opts) {
            Ok(()) => ready += 1,
            Err(e) => {
                let is_absent = matches!(
                    e.downcast_ref::<crate::detect::spec::SpecError>(),
                    Some(crate::detect::spec::SpecError::ModelMissing { .. })
                );
                if is_absent {
                    absent += 1;
                    println!("  {e}");
                } else {
                    failed += 1;
                    println!("  FAILED: {e:#}");
                }
            }
        }
    }
    println!("{ready} ready, {absent} model not present, {failed} failed");
    Ok(if absent + failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One spec of `detectors check`: prints what it checked, fails on the first problem.
fn check_one_spec(
    path: &std::path::Path,
    opts: &crate::detect::runtime::RuntimeOptions,
) -> anyhow::Result<()> {
    use crate::detect::detector::{BatchAxis, Detector};
    use crate::detect::spec::{DetectorSpec, ModelHash};

    println!("{}", path.display());
    let spec = DetectorSpec::from_file(path)?;
    println!(
        "  {} ({} family), model {}",
        spec.name,
        format!("{:?}", spec.family()).to_lowercase(),
        spec.model_path.display()
    );
    println!(
        "  trained on {}; has seen the evaluation images: {}",
        spec.trained_on,
        if spec.sees_eval_images { "yes" } else { "no" }
    );
    let actual = spec.verify_model_sha256()?;
    match &spec.model_sha256 {
        ModelHash::Pinned(_) => println!("  sha256 {actual} (matches the spec)"),
        ModelHash::Unknown => println!(
            "  sha256 {actual} (the spec says \"unknown\"; pin it: model_sha256 = \"{actual}\")"
        ),
    }
    let mut detector = Detector::new(spec, opts)?;
    println!(
        "  session on {} with {} intra-op thread(s); inputs and outputs fit the family; batch axis {}",
        opts.device,
        opts.intra_threads,
        match detector.batch_axis() {
            BatchAxis::Dynamic => "dynamic",
            BatchAxis::One => "1",
        }
    );
    let img = synthetic_check_image();
    let start = std::time::Instant::now();
    let dets = detector.detect(&[&img])?.remove(0);
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let spec = detector.spec();
    let best = dets.first().map_or_else(
        || "none".to_string(),
        |d| {
            format!(
                "{} {:.3} at [{:.1}, {:.1}, {:.1}, {:.1}]",
                spec.classes.name(d.class_id).unwrap_or("?"),
                d.score,
                d.bbox.xmin,
                d.bbox.ymin,
                d.bbox.xmax,
                d.bbox.ymax
            )
        },
    );
    println!(
        "  synthetic {}x{} image: {} box(es) above {} in {ms:.1} ms; best: {best}",
        img.width(),
        img.height(),
        dets.len(),
        spec.score_threshold
    );
    Ok(())
}

/// A 640×480 test scene (gradient background, a few flat rectangles): enough structure for a
/// detector to produce something, the same on every machine.
fn synthetic_check_image() -> image::RgbImage {
    image::RgbImage::from_fn(640, 480, |x, y| {
        let rects: [(u32, u32, u32, u32, [u8; 3]); 3] = [
            (60, 80, 260, 400, [200, 40, 40]),
            (320, 60, 600, 220, [30, 90, 200]),
            (360, 280, 520, 450, [240, 220, 60]),
        ];
        for (x0, y0, x1, y1, c) in rects {
            if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                return image::Rgb(c);
            }
        }
        image::Rgb([(x * 255 / 640) as u8, (y * 255 / 480) as u8, 128])
    })
}
