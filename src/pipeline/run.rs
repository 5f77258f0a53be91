//! `refaug run`: one pass over the images, every variant's detector fed from the same decoded image.
//!
//! ```text
//!            ┌─▶ [bounded] ─▶ detector thread (variant A, owns its session) ─┐
//! decoder ───┼─▶ [bounded] ─▶ detector thread (variant B)                    ├─▶ [bounded] ─▶ collector
//! (rayon)    └─▶ [bounded] ─▶ detector thread (variant C)                    ┘   (writes shards,
//!                                                                                commits units)
//! ```
//! The decoder walks the pending units in order; on a rayon pool it decodes a few images at a time
//! (once for all variants) and makes each variant's model input from them (the family's
//! pre-processing), then hands every variant its input. A full queue blocks the
//! decoder, so the slowest detector sets the pace and memory stays bounded whatever the dataset size.
//! Each detector thread batches images within a unit and sends one result per image; the collector
//! buffers results until every variant has finished a unit, then writes the unit's shard in every
//! variant and commits the unit (see [`journal`](super::journal)). Errors about one image travel down
//! the same queues as values and end up in `errors.json`; a fatal error (an unwritable output) stops the
//! collector, and every stage stops when the queue it sends to is gone.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender, bounded};
use image::RgbImage;
use rayon::prelude::*;

use crate::dataset::{Dataset, DatasetError};
use crate::detect::detector::{DetectError, Detector, Prepared, prepare};
use crate::detect::runtime::{Device, RuntimeOptions, SHARED_POOL, split_threads};
use crate::detect::spec::{DetectorSpec, SpecError};
use crate::detect::{Detection, runtime};
use crate::manifest::Manifest;
use crate::pipeline::journal::{ImageFailure, JournalError, OutputDir, ShardRecord, UnitRecord};
use crate::pipeline::plan::{self, Selection, Unit, Worker};
use crate::progress::Reporter;
use crate::write::row::{Row, RowError};
use crate::write::schema;
use crate::write::shard::{ShardError, ShardOptions, ShardWriter};

/// How this run behaves (flags). What the job *is* comes from the data manifest.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Splits to write (default: the manifest's).
    pub splits: Option<Vec<String>>,
    /// Variants to write (default: all of the manifest's).
    pub variants: Option<Vec<String>>,
    /// The first N images of each split.
    pub limit: Option<usize>,
    pub worker: Worker,
    pub device: Device,
    /// Images per detector call (models with a dynamic batch axis).
    pub batch_size: usize,
    /// Threads in all (decode pool and detector sessions); 0 = all cores, the sessions sharing
    /// them (ONNX Runtime's shared pool); n > 0 = n cores, split among the sessions' own pools.
    pub threads: usize,
    /// Images per output shard.
    pub images_per_shard: usize,
    /// Discard an existing output made with other settings.
    pub force: bool,
    /// What one image file may cost before it is decoded.
    pub image_limits: crate::decode::Limits,
    /// Pixels the decode pool may hold at once (decoded images not yet turned into model
    /// inputs); an image larger than the budget is decoded alone.
    pub pixel_budget: u64,
}

/// The default [`RunOptions::pixel_budget`]: 64 M pixels, ≈ 192 MB of RGB (200 COCO images, or one
/// 8000×8000 photo).
pub const DEFAULT_PIXEL_BUDGET: u64 = 64 << 20;

/// Errors that stop a run. Errors about one image do not: they are recorded in `errors.json`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error("variant {variant}: {source}")]
    Row {
        variant: String,
        #[source]
        source: RowError,
    },
    #[error("{0}")]
    Usage(String),
    #[error("a pipeline thread panicked: {0}")]
    Panic(String),
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSummary {
    /// Units (shards per variant) this worker owns, and how many were already committed.
    pub units_owned: usize,
    pub units_resumed: usize,
    pub units_written: usize,
    /// Committed units redone because some of their images had failed, and those images.
    pub units_retried: usize,
    pub images_retried: u64,
    /// Images processed in this run, and how many of them failed (in any variant).
    pub images: u64,
    pub images_failed: u64,
    /// Rows written in this run, per variant.
    pub rows: BTreeMap<String, u64>,
    /// The final manifests were written (every unit of every worker is committed).
    pub complete: Option<super::merge::MergeSummary>,
}

/// One variant to produce.
struct VariantJob {
    name: String,
    spec: DetectorSpec,
    model_sha256: String,
}

/// A decoded and prepared image (or why it could not be), on its way to one detector.
enum ToDetector {
    Image {
        unit: usize,
        pos: usize,
        input: Result<Prepared, String>,
    },
    EndOfUnit {
        unit: usize,
    },
}

/// One detector's answer for one image.
enum FromDetector {
    Image {
        variant: usize,
        unit: usize,
        pos: usize,
        result: Result<Vec<Detection>, Failure>,
    },
    EndOfUnit {
        unit: usize,
    },
}

/// A detector's boxes for one image, or why there are none.
type Answer = Result<Vec<Detection>, Failure>;

#[derive(Debug, Clone)]
enum Failure {
    /// The image could not be read or decoded (same for every variant).
    Image(String),
    /// The image was read but this variant's detector failed on it.
    Detector(String),
}

/// The settings an output is made from: anything that changes the bytes of a shard. Batch size,
/// threads, device and the worker partition do not, so they are not here.
fn settings(dataset: &Dataset, selection: &Selection, jobs: &[VariantJob]) -> serde_json::Value {
    serde_json::json!({
        "refaug_version": env!("CARGO_PKG_VERSION"),
        "schema_version": schema::SCHEMA_VERSION,
        "dataset": {
            "kind": dataset.kind,
            "split_by": dataset.split_by,
            "instances_sha256": dataset.sources.instances.sha256,
            "refs_sha256": dataset.sources.refs.sha256,
        },
        "splits": selection.splits,
        "limit": selection.limit,
        "images_per_shard": selection.images_per_shard,
        "variants": jobs.iter().map(|j| serde_json::json!({
            "name": j.name,
            "detector": j.spec.describe(&j.model_sha256),
        })).collect::<Vec<_>>(),
    })
}

/// Runs (or resumes) the job of `manifest` with `opts`.
pub fn run(
    manifest: &Manifest,
    opts: &RunOptions,
    reporter: &dyn Reporter,
) -> Result<RunSummary, RunError> {
    let mut source = manifest.dataset.clone();
    if let Some(splits) = &opts.splits {
        source.splits = splits.clone();
    }
    let dataset = crate::dataset::load(&source)?;
    let selection = Selection {
        splits: source.selected_splits(),
        limit: opts.limit,
        images_per_shard: opts.images_per_shard.max(1),
    };

    let mut jobs = Vec::new();
    for v in &manifest.variants {
        if opts
            .variants
            .as_ref()
            .is_some_and(|names| !names.contains(&v.name))
        {
            continue;
        }
        let spec = DetectorSpec::from_file(&v.detector)?;
        let model_sha256 = spec.verify_model_sha256()?;
        jobs.push(VariantJob {
            name: v.name.clone(),
            spec,
            model_sha256,
        });
    }
    if let Some(names) = &opts.variants {
        for n in names {
            if !manifest.variants.iter().any(|v| &v.name == n) {
                let known: Vec<&str> = manifest.variants.iter().map(|v| v.name.as_str()).collect();
                return Err(RunError::Usage(format!(
                    "--variants: no variant {n:?} in {} (it has {})",
                    manifest.path.display(),
                    known.join(", ")
                )));
            }
        }
    }
    if jobs.is_empty() {
        return Err(RunError::Usage("no variant to write".into()));
    }

    let units = plan::plan(&dataset, &selection);
    let settings = settings(&dataset, &selection, &jobs);
    let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    let root = &manifest.output.dir;
    let worker_id = format!("{}-of-{}", opts.worker.index, opts.worker.count);
    let out = OutputDir::open(root, &worker_id, &settings, opts.force, &names)?;
    super::merge::write_plan(root, &units)?;
    for name in &names {
        fs_err::create_dir_all(root.join(name)).map_err(JournalError::Io)?;
    }

    let owned: Vec<&Unit> = units.iter().filter(|u| opts.worker.owns(u)).collect();
    let mut pending = Vec::new();
    let mut resumed_images = 0u64;
    let mut summary = RunSummary {
        units_owned: owned.len(),
        ..RunSummary::default()
    };
    for u in &owned {
        match out.committed(&u.split, u.shard)? {
            // A committed unit with failed images is redone: the user may have fixed them, and the
            // unit's shards are rewritten whole (the images that worked give the same rows again).
            Some(record) if !record.failures.is_empty() => {
                summary.units_retried += 1;
                summary.images_retried += record
                    .failures
                    .iter()
                    .map(|f| f.image_id)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len() as u64;
                pending.push(*u);
            }
            Some(_) => {
                summary.units_resumed += 1;
                resumed_images += u.images.len() as u64;
            }
            None => pending.push(*u),
        }
    }
    if summary.units_retried > 0 {
        reporter.note(&format!(
            "retrying {} image(s) that failed before: their {} committed shard(s) are redone and rewritten",
            summary.images_retried, summary.units_retried
        ));
    }
    for job in &jobs {
        if matches!(
            job.spec.model_sha256,
            crate::detect::spec::ModelHash::Unknown
        ) {
            reporter.note(&format!(
                "warning: variant {}: {} has no pinned model_sha256 (\"unknown\"); the output records {} but cannot prove it is the model the spec meant. Pin it in the spec.",
                job.name,
                job.spec.model_path.display(),
                job.model_sha256
            ));
        }
    }

    if !pending.is_empty() {
        let (cores, threads) = if opts.threads == 0 {
            (
                runtime::shared_pool_threads(),
                vec![SHARED_POOL; jobs.len()],
            )
        } else {
            (opts.threads, split_threads(opts.threads, jobs.len()))
        };
        let sessions: Vec<RuntimeOptions> = threads
            .into_iter()
            .map(|intra| RuntimeOptions {
                device: opts.device,
                intra_threads: intra,
                spinning: false,
                max_batch: opts.batch_size.max(1),
            })
            .collect();
        let rt = runtime::runtime().map_err(|e| RunError::Usage(e.to_string()))?;
        let provenance = Provenance {
            onnxruntime: rt.version().to_string(),
            provider: match opts.device {
                Device::Cpu => "CPUExecutionProvider".to_string(),
                Device::Cuda(n) => format!("CUDAExecutionProvider (device {n})"),
            },
        };
        let total: u64 = pending.iter().map(|u| u.images.len() as u64).sum();
        reporter.start(total, &names, resumed_images);
        let ctx = Context {
            limits: DecodeLimits {
                image: opts.image_limits,
                pixel_budget: opts.pixel_budget,
            },
            dataset: &dataset,
            jobs: &jobs,
            out: &out,
            provenance,
            reporter,
        };
        execute(&ctx, &pending, &sessions, cores, &mut summary)?;
        reporter.finish();
    }

    summary.complete = super::merge::merge_if_complete(root)?;
    Ok(summary)
}

struct Provenance {
    onnxruntime: String,
    provider: String,
}

/// What the decoder may spend: per file, and in pixels at once.
#[derive(Debug, Clone, Copy)]
struct DecodeLimits {
    image: crate::decode::Limits,
    pixel_budget: u64,
}

struct Context<'a> {
    limits: DecodeLimits,
    dataset: &'a Dataset,
    jobs: &'a [VariantJob],
    out: &'a OutputDir,
    provenance: Provenance,
    reporter: &'a dyn Reporter,
}

/// How many decoded images wait in each detector's queue at most (`batch`: the run's batch size).
fn queue_depth(batch: usize) -> usize {
    2 * batch.max(1) + 4
}

/// Runs the stages. Each detector thread opens its own session (`sessions[v]` for variant `v`),
/// so the fast detectors start working while a slow one's session is still being built (DETR's
/// takes seconds); a session that cannot be opened stops the run with its error, before any unit
/// is committed (a unit needs every variant).
fn execute(
    ctx: &Context<'_>,
    pending: &[&Unit],
    sessions: &[RuntimeOptions],
    cores: usize,
    summary: &mut RunSummary,
) -> Result<(), RunError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .thread_name(|i| format!("refaug-decode-{i}"))
        .build()
        .map_err(|e| RunError::Usage(format!("cannot start the decode threads: {e}")))?;
    let (to_collector, from_detectors) = bounded::<FromDetector>(256);

    std::thread::scope(|scope| {
        let mut queues = Vec::new();
        let mut detectors = Vec::new();
        for (variant, (job, ropts)) in ctx.jobs.iter().zip(sessions).enumerate() {
            let (tx, rx) = bounded::<ToDetector>(queue_depth(ropts.max_batch));
            queues.push(tx);
            let out = to_collector.clone();
            let handle = std::thread::Builder::new()
                .name(format!("refaug-detect-{variant}"))
                .spawn_scoped(scope, move || {
                    let mut detector = Detector::new(job.spec.clone(), ropts)?;
                    detect_loop(variant, &mut detector, rx, out);
                    Ok::<(), DetectError>(())
                })
                .expect("spawn detector thread");
            detectors.push(handle);
        }
        drop(to_collector);
        let dataset = ctx.dataset;
        let reporter = ctx.reporter;
        let specs: Vec<&DetectorSpec> = ctx.jobs.iter().map(|j| &j.spec).collect();
        let limits = ctx.limits;
        std::thread::Builder::new()
            .name("refaug-decode".into())
            .spawn_scoped(scope, move || {
                decode_loop(dataset, &specs, pending, &pool, queues, reporter, &limits)
            })
            .expect("spawn decoder thread");
        let collected = collect(ctx, pending, from_detectors, summary);
        // A session that could not be opened is the cause of a stopped pipeline: report it.
        for handle in detectors {
            if let Ok(Err(e)) = handle.join() {
                return Err(RunError::Detect(e));
            }
        }
        collected
    })
}

/// Decodes the pending units' images in order, prepares each variant's model input on the rayon
/// pool (decoding once for all variants), and hands the inputs to the detector queues.
fn decode_loop(
    dataset: &Dataset,
    specs: &[&DetectorSpec],
    pending: &[&Unit],
    pool: &rayon::ThreadPool,
    queues: Vec<Sender<ToDetector>>,
    reporter: &dyn Reporter,
    limits: &DecodeLimits,
) {
    // A few images per parallel step: enough to keep the pool busy, few enough to stay bounded,
    // and never more pixels than the budget.
    let step = pool.current_num_threads().max(1) * 2;
    for (u, unit) in pending.iter().enumerate() {
        let pixels: Vec<u64> = unit
            .images
            .iter()
            .map(|&i| u64::from(dataset.images[i].width) * u64::from(dataset.images[i].height))
            .collect();
        for range in decode_steps(&pixels, step, limits.pixel_budget) {
            let chunk = &unit.images[range.clone()];
            let prepared: Vec<Result<Vec<Prepared>, String>> = pool.install(|| {
                chunk
                    .par_iter()
                    .map(|&i| {
                        let img = decode_checked(dataset, &limits.image, i)?;
                        Ok(specs.par_iter().map(|spec| prepare(spec, &img)).collect())
                    })
                    .collect()
            });
            reporter.decoded(prepared.len() as u64);
            for (k, inputs) in prepared.into_iter().enumerate() {
                let pos = range.start + k;
                let per_variant: Vec<Result<Prepared, String>> = match inputs {
                    Ok(v) => v.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e); queues.len()],
                };
                for (q, input) in queues.iter().zip(per_variant) {
                    if q.send(ToDetector::Image {
                        unit: u,
                        pos,
                        input,
                    })
                    .is_err()
                    {
                        return; // the pipeline is stopping
                    }
                }
            }
        }
        for q in &queues {
            if q.send(ToDetector::EndOfUnit { unit: u }).is_err() {
                return;
            }
        }
    }
}

/// Decodes image `i`, refusing a file whose header disagrees with instances.json's size before
/// its pixels are allocated.
fn decode_checked(
    dataset: &Dataset,
    limits: &crate::decode::Limits,
    i: usize,
) -> Result<RgbImage, String> {
    let record = &dataset.images[i];
    let path = dataset.images_dir.join(&record.file_name);
    crate::decode::decode_file_expecting(&path, (record.width, record.height), limits)
        .map_err(|e| format!("{e} (image_id {})", record.image_id))
}

/// Splits a unit's images (given by their pixel counts, from instances.json, which the decoder
/// enforces) into the steps the decode pool works on: at most `max_images` images and at most
/// `budget` pixels each, and at least one image, so that an image over the budget is decoded alone.
fn decode_steps(pixels: &[u64], max_images: usize, budget: u64) -> Vec<std::ops::Range<usize>> {
    let mut steps = Vec::new();
    let mut start = 0;
    let mut held = 0u64;
    for (k, &p) in pixels.iter().enumerate() {
        if k > start && (k - start >= max_images || held + p > budget) {
            steps.push(start..k);
            start = k;
            held = 0;
        }
        held += p;
    }
    if start < pixels.len() {
        steps.push(start..pixels.len());
    }
    steps
}

/// One variant's detector: batches images within a unit, answers one result per image.
fn detect_loop(
    variant: usize,
    detector: &mut Detector,
    rx: Receiver<ToDetector>,
    out: Sender<FromDetector>,
) {
    let limit = detector.batch_limit();
    let mut batch: Vec<(usize, usize, Prepared)> = Vec::with_capacity(limit);
    for msg in rx {
        let ok = match msg {
            ToDetector::Image {
                unit,
                pos,
                input: Ok(input),
            } => {
                batch.push((unit, pos, input));
                batch.len() < limit || flush(variant, detector, &mut batch, &out)
            }
            ToDetector::Image {
                unit,
                pos,
                input: Err(reason),
            } => out
                .send(FromDetector::Image {
                    variant,
                    unit,
                    pos,
                    result: Err(Failure::Image(reason)),
                })
                .is_ok(),
            ToDetector::EndOfUnit { unit } => {
                flush(variant, detector, &mut batch, &out)
                    && out.send(FromDetector::EndOfUnit { unit }).is_ok()
            }
        };
        if !ok {
            return; // the collector is gone
        }
    }
}

/// Runs the batch; if the batch fails, runs its images one by one so that one bad image only
/// fails itself. Returns false when the collector is gone.
fn flush(
    variant: usize,
    detector: &mut Detector,
    batch: &mut Vec<(usize, usize, Prepared)>,
    out: &Sender<FromDetector>,
) -> bool {
    if batch.is_empty() {
        return true;
    }
    let inputs: Vec<&Prepared> = batch.iter().map(|(_, _, p)| p).collect();
    let results: Vec<Result<Vec<Detection>, Failure>> = match detector.detect_prepared(&inputs) {
        Ok(all) => all.into_iter().map(Ok).collect(),
        Err(_) if inputs.len() > 1 => inputs
            .iter()
            .map(|input| {
                detector
                    .detect_prepared(&[input])
                    .map(|mut v| v.pop().unwrap_or_default())
                    .map_err(|e| Failure::Detector(crate::error_chain(&e)))
            })
            .collect(),
        Err(e) => vec![Err(Failure::Detector(crate::error_chain(&e)))],
    };
    for ((unit, pos, _), result) in batch.drain(..).zip(results) {
        if out
            .send(FromDetector::Image {
                variant,
                unit,
                pos,
                result,
            })
            .is_err()
        {
            return false;
        }
    }
    true
}

/// A unit whose results are still coming in.
struct Pending {
    /// results[variant][pos]
    results: Vec<Vec<Option<Answer>>>,
    ended: usize,
}

/// Gathers detector results; writes and commits each unit once every variant has finished it.
fn collect(
    ctx: &Context<'_>,
    pending: &[&Unit],
    rx: Receiver<FromDetector>,
    summary: &mut RunSummary,
) -> Result<(), RunError> {
    let n = ctx.jobs.len();
    let mut open: HashMap<usize, Pending> = HashMap::new();
    let slot = |unit: usize| -> Pending {
        Pending {
            results: vec![vec![None; pending[unit].images.len()]; n],
            ended: 0,
        }
    };
    let mut committed = 0;
    for msg in rx {
        match msg {
            FromDetector::Image {
                variant,
                unit,
                pos,
                result,
            } => {
                ctx.reporter.detected(&ctx.jobs[variant].name, 1);
                open.entry(unit).or_insert_with(|| slot(unit)).results[variant][pos] = Some(result);
            }
            FromDetector::EndOfUnit { unit } => {
                let p = open.entry(unit).or_insert_with(|| slot(unit));
                p.ended += 1;
                if p.ended == n {
                    let p = open.remove(&unit).expect("present");
                    write_unit(ctx, pending[unit], p, summary)?;
                    committed += 1;
                }
            }
        }
    }
    if committed != pending.len() {
        return Err(RunError::Panic(format!(
            "the pipeline stopped after {committed} of {} units (a detector or decoder thread died)",
            pending.len()
        )));
    }
    Ok(())
}

/// Writes one unit's shard in every variant, then commits the unit.
fn write_unit(
    ctx: &Context<'_>,
    unit: &Unit,
    p: Pending,
    summary: &mut RunSummary,
) -> Result<(), RunError> {
    let dataset = ctx.dataset;
    let mut failures = Vec::new();
    let mut failed_images = std::collections::BTreeSet::new();
    let mut shards = BTreeMap::new();
    for (v, job) in ctx.jobs.iter().enumerate() {
        let mut rows = Vec::new();
        for (pos, &image_index) in unit.images.iter().enumerate() {
            let image = &dataset.images[image_index];
            let ref_ids = || {
                unit.refs[pos]
                    .iter()
                    .map(|&r| dataset.refs[r].ref_id)
                    .collect::<Vec<_>>()
            };
            let path = dataset
                .images_dir
                .join(&image.file_name)
                .display()
                .to_string();
            match p.results[v][pos].as_ref().expect("every image answered") {
                Ok(dets) => {
                    for &r in &unit.refs[pos] {
                        let rec = &dataset.refs[r];
                        let category = dataset
                            .categories
                            .get(&rec.category_id)
                            .map_or("", String::as_str);
                        let row = Row::build(rec, image, category, dets, |c| job.spec.label(c))
                            .map_err(|source| RunError::Row {
                                variant: job.name.clone(),
                                source,
                            })?;
                        rows.push(row);
                    }
                }
                Err(Failure::Image(reason)) => {
                    // Same for every variant: record it once.
                    if v == 0 {
                        failures.push(ImageFailure {
                            image_id: image.image_id,
                            path,
                            variant: None,
                            reason: reason.clone(),
                            ref_ids: ref_ids(),
                        });
                        ctx.reporter.note(&format!("error: {reason}"));
                    }
                    failed_images.insert(image_index);
                }
                Err(Failure::Detector(reason)) => {
                    failures.push(ImageFailure {
                        image_id: image.image_id,
                        path,
                        variant: Some(job.name.clone()),
                        reason: reason.clone(),
                        ref_ids: ref_ids(),
                    });
                    ctx.reporter.note(&format!(
                        "error: variant {}: image_id {}: {reason}",
                        job.name, image.image_id
                    ));
                    failed_images.insert(image_index);
                }
            }
        }
        rows.sort_by_key(|r| r.ref_id);
        let file = unit.file_name();
        let path: PathBuf = ctx.out.root().join(&job.name).join(&file);
        let mut writer = ShardWriter::create(
            &path,
            &shard_metadata(ctx, job, &unit.split),
            &ShardOptions::default(),
        )?;
        let n = rows.len() as u64;
        writer.write_all(rows)?;
        let done = writer.close()?;
        *summary.rows.entry(job.name.clone()).or_default() += n;
        shards.insert(
            job.name.clone(),
            ShardRecord {
                file,
                rows: done.rows,
                bytes: done.bytes,
                sha256: done.sha256,
            },
        );
    }
    ctx.out.commit(&UnitRecord {
        split: unit.split.clone(),
        shard: unit.shard,
        shard_count: unit.shard_count,
        images: unit.images.len(),
        refs: unit.ref_count() as u64,
        shards,
        failures,
        onnxruntime: ctx.provenance.onnxruntime.clone(),
        execution_provider: ctx.provenance.provider.clone(),
    })?;
    summary.units_written += 1;
    summary.images += unit.images.len() as u64;
    summary.images_failed += failed_images.len() as u64;
    Ok(())
}

/// The key-value metadata of a shard: deterministic (no times, no run ids, no git revision).
fn shard_metadata(ctx: &Context<'_>, job: &VariantJob, split: &str) -> BTreeMap<String, String> {
    let d = ctx.dataset;
    let sources = serde_json::json!({
        "instances.json": d.sources.instances.sha256,
        format!("refs({}).p", d.split_by): d.sources.refs.sha256,
    });
    let dataset = serde_json::json!({"kind": d.kind, "split_by": d.split_by, "split": split});
    BTreeMap::from([
        (
            schema::META_REFAUG_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            schema::META_DETECTOR.to_string(),
            job.spec.describe(&job.model_sha256).to_string(),
        ),
        (schema::META_SOURCES.to_string(), sources.to_string()),
        (schema::META_DATASET.to_string(), dataset.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::decode_steps;

    #[test]
    fn decode_steps_respect_the_count_and_the_pixel_budget() {
        // Four COCO-sized images per step at most.
        let coco = [307_200u64; 10];
        assert_eq!(decode_steps(&coco, 4, 64 << 20), vec![0..4, 4..8, 8..10]);
        // A budget of two images' pixels.
        assert_eq!(
            decode_steps(&coco, 4, 614_400),
            vec![0..2, 2..4, 4..6, 6..8, 8..10]
        );
        // A 16000×16000 image is over any sensible budget: it is decoded alone, and its
        // neighbours are not held beside it.
        let big = [307_200, 256_000_000, 307_200, 307_200];
        assert_eq!(decode_steps(&big, 4, 64 << 20), vec![0..1, 1..2, 2..4]);
        assert_eq!(
            decode_steps(&[], 4, 1),
            Vec::<std::ops::Range<usize>>::new()
        );
    }
}
