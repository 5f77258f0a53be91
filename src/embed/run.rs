//! The `refaug embed` stage: for every committed proposal shard of a variant, one embedding shard
//! beside it, row for row.
//!
//! ```text
//! <out>/<variant>/<split>-i-of-n.parquet ─▶ rows grouped by image (first appearance order)
//!   ─▶ preparer thread: decode each image once, its distinct CropBoxes (kept proposals, each
//!      ref's ground truth, the whole image), ClipTransform on a rayon pool
//!   ─▶ [bounded: a few images] ─▶ this thread (owns the encoder): crops of consecutive images
//!      batched up to --batch-size per image-encoder call; sentences ─▶ clip.tokenize ─▶ text
//!      encoder, --batch-size per call
//!   ─▶ <out>/<variant>/embeddings/<split>-i-of-n.parquet   (same rows, same order)
//! ```
//!
//! Pre-processing of the next images overlaps the encoder's calls; the queue bounds memory. The
//! output depends on neither the batch size nor the thread count (the order is kept and ONNX
//! Runtime's CPU kernels give a row the same embedding in any batch).
//!
//! A shard is written to a hidden temporary file and renamed into place once complete
//! (`write::atomic::temp_path`), so a visible shard is whole; a shard whose output exists with
//! the same source sha256, encoder and filter, contract version, and no image failure, is skipped
//! (resume), unless
//! forced. An image that cannot be read gives its refs rows with null image-side columns and an
//! entry (file, refs, reason) in the shard's `refaug.image_failures` and in `errors.json`; the
//! rest of the shard is written. A sentence over 77 tokens without truncation, or an encoder
//! failure, fails the whole shard (recorded in `errors.json`); the other shards go on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{
    ArrayRef, FixedSizeListBuilder, Float32Builder, Int32Builder, Int64Array, Int64Builder,
    ListBuilder, RecordBatch,
};
use arrow::datatypes::{DataType, Field};
use crossbeam_channel::bounded;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::embed::encoder::Encoder;
use crate::embed::filter::ProposalFilter;
use crate::embed::schema::{
    self, META_ENCODER, META_FILTER, META_IMAGE_FAILURES, META_SOURCE, embedding_schema,
};
use crate::embed::text::ClipTokenizer;
use crate::pipeline::plan::Worker;
use crate::preprocess::Chw;
use crate::preprocess::clip::{ClipTransform, CropBox, crop};
use crate::progress::Reporter;
use crate::write::atomic::temp_path;
use crate::write::row::Row;
use crate::write::schema::{LIST_ELEMENT_NAME, META_REFAUG_VERSION};
use crate::write::shard::{read_key_value_metadata, read_rows};

/// The embeddings folder inside a variant's folder.
pub const EMBEDDINGS_DIR: &str = "embeddings";

/// Row groups of an embedding shard stay below about this many uncompressed bytes (the
/// proposals contract's bound; the Hub's viewer reads a row group at a time).
const MAX_ROW_GROUP_BYTES: usize = 100 << 20;

/// What one embed job does.
#[derive(Debug, Clone)]
pub struct EmbedJob {
    /// The variant's folder (`<out>/<variant>`).
    pub variant_dir: PathBuf,
    /// The dataset's images folder.
    pub images_dir: PathBuf,
    pub filter: ProposalFilter,
    pub truncate: bool,
    /// Rewrite shards that are already there.
    pub force: bool,
    /// `--limit N`: only the first N proposal shards (name order) of the variant.
    pub limit: Option<usize>,
    /// `--shard i/N`: of those, the ones at positions ≡ i (mod N).
    pub worker: Worker,
    /// Threads preparing crops, besides the encoder's own (0 = all cores).
    pub threads: usize,
}

/// What a job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedSummary {
    pub shards_written: usize,
    pub shards_skipped: usize,
    pub image_embeddings: usize,
    pub text_embeddings: usize,
    /// `(shard, error)` for every failed shard (also in errors.json).
    pub failures: Vec<(String, String)>,
    /// Images that could not be read (their refs' rows have null image-side columns).
    pub image_failures: Vec<ImageFailure>,
}

/// An image that could not be read while embedding a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFailure {
    pub shard: String,
    pub image_id: i64,
    pub file_name: String,
    pub ref_ids: Vec<i64>,
    pub reason: String,
}

/// `embeddings/errors.json` of worker `worker` (`errors.json` for a single worker, else
/// `errors-<i>-of-<N>.json`, so that workers do not overwrite each other's).
pub fn errors_file(worker: Worker) -> String {
    if worker.count == 1 {
        "errors.json".to_string()
    } else {
        format!("errors-{}-of-{}.json", worker.index, worker.count)
    }
}

/// The proposal shards of a variant this job covers, in name order.
fn selected_shards(job: &EmbedJob) -> Vec<PathBuf> {
    let mut shards = crate::validate::parquet_files(&job.variant_dir);
    if let Some(n) = job.limit {
        shards.truncate(n);
    }
    shards
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % job.worker.count == job.worker.index)
        .map(|(_, p)| p)
        .collect()
}

/// One proposal shard to embed, with the metadata its output gets.
struct Pending {
    src: PathBuf,
    name: String,
    meta: BTreeMap<String, String>,
    images: u64,
}

/// Run the job over the variant's selected shards, reporting images embedded to `reporter`
/// under the name `label`.
pub fn embed_variant(
    job: &EmbedJob,
    encoder: &mut Encoder,
    label: &str,
    reporter: &dyn Reporter,
) -> anyhow::Result<EmbedSummary> {
    let out_dir = job.variant_dir.join(EMBEDDINGS_DIR);
    fs_err::create_dir_all(&out_dir)?;
    crate::write::atomic::remove_stale_temps(&out_dir)?;
    let shards = selected_shards(job);
    if shards.is_empty() && crate::validate::parquet_files(&job.variant_dir).is_empty() {
        anyhow::bail!(
            "{}: no proposal shards to embed (run `refaug run` first)",
            job.variant_dir.display()
        );
    }
    let encoder_meta = encoder_metadata(encoder);
    // What decides the rows besides the source and the encoder: the filter and truncation.
    let mut filter_meta = serde_json::to_value(job.filter)?;
    filter_meta["truncate_sentences"] = job.truncate.into();
    let filter_meta = filter_meta.to_string();
    let mut summary = EmbedSummary::default();
    let mut pending = Vec::new();
    let mut resumed = 0;
    for src in shards {
        let name = src
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let dest = out_dir.join(&name);
        let source_sha = crate::sha256_file(&src)?;
        let source_meta = serde_json::json!({"file": name, "sha256": source_sha}).to_string();
        let images = distinct_images(&src)?;
        if !job.force && dest.is_file() {
            let kv = read_key_value_metadata(&dest)?;
            if kv.get(META_SOURCE) == Some(&source_meta)
                && kv.get(META_ENCODER) == Some(&encoder_meta)
                && kv.get(META_FILTER) == Some(&filter_meta)
                && kv.get(META_IMAGE_FAILURES).map(String::as_str) == Some("[]")
                // A shard of another contract version (an older refaug) is rewritten.
                && kv.get(crate::write::schema::META_SCHEMA_VERSION).map(String::as_str)
                    == Some(schema::SCHEMA_VERSION)
            {
                summary.shards_skipped += 1;
                resumed += images;
                continue;
            }
        }
        let meta = BTreeMap::from([
            (META_SOURCE.to_string(), source_meta),
            (META_ENCODER.to_string(), encoder_meta.clone()),
            (META_FILTER.to_string(), filter_meta.clone()),
            (
                META_REFAUG_VERSION.to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ]);
        pending.push(Pending {
            src,
            name,
            meta,
            images,
        });
    }
    let labels = [label.to_string()];
    reporter.start(pending.iter().map(|p| p.images).sum(), &labels, resumed);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .thread_name(|i| format!("refaug-crop-{i}"))
        .build()
        .context("cannot start the crop threads")?;
    for p in pending {
        let dest = out_dir.join(&p.name);
        let progress = Progress { reporter, label };
        match embed_shard(job, encoder, &pool, &p, &dest, &progress) {
            Ok(done) => {
                summary.shards_written += 1;
                summary.image_embeddings += done.images;
                summary.text_embeddings += done.texts;
                for f in &done.failures {
                    reporter.note(&format!(
                        "embed {label}: {}: image {} ({}) unreadable, refs {:?} without image \
                         embeddings: {}",
                        f.shard, f.image_id, f.file_name, f.ref_ids, f.reason
                    ));
                }
                summary.image_failures.extend(done.failures);
            }
            Err(e) => {
                let mut e = crate::error_chain(e.as_ref() as &dyn std::error::Error);
                // A shard left from an earlier run was made from another source, encoder, filter
                // or contract version (else it would have been skipped): keeping it would mix
                // two encoders' vectors in one variant. It goes; validate then says it is missing.
                if dest.is_file() {
                    match std::fs::remove_file(&dest) {
                        Ok(()) => e.push_str(" (the shard an earlier run left was removed)"),
                        Err(r) => e.push_str(&format!(
                            " (the shard an earlier run left could not be removed: {r})"
                        )),
                    }
                }
                reporter.note(&format!("embed {label}: {} failed: {e}", p.name));
                summary.failures.push((p.name, e));
            }
        }
    }
    reporter.finish();
    let errors = serde_json::json!({
        "shards": summary
            .failures
            .iter()
            .map(|(s, e)| serde_json::json!({"shard": s, "error": e}))
            .collect::<Vec<_>>(),
        "images": summary.image_failures,
    });
    crate::pipeline::journal::write_atomic(
        &out_dir.join(errors_file(job.worker)),
        (serde_json::to_string_pretty(&errors)? + "\n").as_bytes(),
    )?;
    Ok(summary)
}

/// Where images embedded are counted.
struct Progress<'a> {
    reporter: &'a dyn Reporter,
    label: &'a str,
}

fn distinct_images(src: &Path) -> anyhow::Result<u64> {
    let rows = read_rows(src)?;
    let mut ids: Vec<i64> = rows.iter().map(|r| r.image_id).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.len() as u64)
}

fn encoder_metadata(encoder: &Encoder) -> String {
    let s = encoder.spec();
    let (image_sha, text_sha) = encoder.model_sha256();
    serde_json::json!({
        "name": s.name,
        "spec": s.spec_path.file_name().map(|n| n.to_string_lossy()),
        "image_model_sha256": image_sha,
        "text_model_sha256": text_sha,
        "dim": s.dim,
        "input_size": s.transform.size,
        "mean": s.transform.mean,
        "std": s.transform.std,
        "trained_on": s.trained_on,
    })
    .to_string()
}

/// One image's work: its rows, and the distinct crops they need.
struct ImagePlan<'r> {
    rows: Vec<&'r Row>,
    boxes: Vec<CropBox>,
    /// Per row: (ground-truth crop, whole-image crop, kept proposals (index, crop)), crops as
    /// indices into `boxes`.
    slots: Vec<RowSlots>,
}

struct RowSlots {
    gt: usize,
    whole: usize,
    kept: Vec<(i32, usize)>,
}

/// The rows of one shard grouped by image (first appearance order), each with its distinct
/// crops. The whole image's crop needs the image's size: the row's `image_width/height`, which
/// the decoder checks against the file.
fn plan_images<'r>(rows: &'r [Row], filter: &ProposalFilter) -> anyhow::Result<Vec<ImagePlan<'r>>> {
    let mut order: Vec<ImagePlan<'r>> = Vec::new();
    let mut at: HashMap<i64, usize> = HashMap::new();
    for r in rows {
        let k = *at.entry(r.image_id).or_insert_with(|| {
            order.push(ImagePlan {
                rows: Vec::new(),
                boxes: Vec::new(),
                slots: Vec::new(),
            });
            order.len() - 1
        });
        order[k].rows.push(r);
    }
    for plan in &mut order {
        let mut index: HashMap<CropBox, usize> = HashMap::new();
        let boxes = &mut plan.boxes;
        let mut slot = |b: CropBox| -> usize {
            *index.entry(b).or_insert_with(|| {
                boxes.push(b);
                boxes.len() - 1
            })
        };
        for r in &plan.rows {
            let ctx = || format!("ref {} (image {})", r.ref_id, r.image_id);
            let gt = slot(CropBox::from_xyxy(&r.gt_box).with_context(ctx)?);
            let whole = slot(CropBox {
                x: 0,
                y: 0,
                w: r.image_width,
                h: r.image_height,
            });
            let mut kept = Vec::new();
            for (i, p) in r.proposals.iter().enumerate() {
                if filter.keeps(f64::from(p.score), &p.bbox) {
                    let c = CropBox::from_xyxy(&p.bbox)
                        .with_context(|| format!("{}: proposal {i}", ctx()))?;
                    kept.push((i as i32, slot(c)));
                }
            }
            plan.slots.push(RowSlots { gt, whole, kept });
        }
    }
    Ok(order)
}

/// What the preparer sends per image, in order: its model inputs, or why it has none.
type Prepared = Result<Vec<Chw>, String>;

/// Decodes `plan`'s images in order and prepares their crops on `pool`, a few images per step,
/// into `tx` (bounded, so the encoder sets the pace).
fn prepare(
    plans: &[ImagePlan<'_>],
    images_dir: &Path,
    transform: ClipTransform,
    pool: &rayon::ThreadPool,
    tx: &crossbeam_channel::Sender<Prepared>,
) {
    let step = pool.current_num_threads().max(1);
    for chunk in plans.chunks(step) {
        let prepared: Vec<Prepared> = pool.install(|| {
            chunk
                .par_iter()
                .map(|plan| {
                    let first = plan.rows[0];
                    let path = images_dir.join(&first.file_name);
                    let size = (first.image_width as u32, first.image_height as u32);
                    let img = crate::decode::decode_file_expecting(
                        &path,
                        size,
                        &crate::decode::Limits::default(),
                    )
                    .map_err(|e| crate::error_chain(&e))?;
                    Ok(plan
                        .boxes
                        .par_iter()
                        .map(|&b| transform.apply(&crop(&img, b)))
                        .collect())
                })
                .collect()
        });
        for p in prepared {
            if tx.send(p).is_err() {
                return; // the encoder side stopped (an error): nothing more to do
            }
        }
    }
}

/// What one shard gave.
struct ShardDone {
    images: usize,
    texts: usize,
    failures: Vec<ImageFailure>,
}

/// One proposal shard → one embedding shard.
fn embed_shard(
    job: &EmbedJob,
    encoder: &mut Encoder,
    pool: &rayon::ThreadPool,
    p: &Pending,
    dest: &Path,
    progress: &Progress<'_>,
) -> anyhow::Result<ShardDone> {
    let rows = read_rows(&p.src)?;
    let dim = encoder.spec().dim;
    let transform = encoder.spec().transform;
    let plans = plan_images(&rows, &job.filter)?;

    // Sentences first: a sentence that cannot be tokenized fails the shard before any image work.
    let tokenizer = ClipTokenizer::shared();
    let mut tokens = Vec::new();
    for r in &rows {
        for s in &r.sentences {
            let t = tokenizer.tokenize(&s.sent, job.truncate).with_context(|| {
                format!(
                    "ref {} (image {}): sentence {} {:?}",
                    r.ref_id, r.image_id, s.sent_id, s.sent
                )
            })?;
            tokens.push(t.ids);
        }
    }
    let texts = encoder.encode_texts(&tokens)?;

    // Image crops, batched across consecutive images.
    let batch = encoder.image_batch_limit();
    let depth = 2 * pool.current_num_threads().max(1);
    let (tx, rx) = bounded::<Prepared>(depth);
    let mut vectors: Vec<Vec<f32>> = Vec::new();
    // Per image: the index of its first crop in `vectors`, or None when it could not be read.
    let mut bases: Vec<Option<usize>> = Vec::with_capacity(plans.len());
    let mut failures = Vec::new();
    let result = std::thread::scope(|scope| -> anyhow::Result<()> {
        // Owned here: dropped when this closure returns (also on an error), so that a preparer
        // blocked on the full queue stops instead of waiting forever.
        let rx = rx;
        let plans = &plans;
        scope.spawn(move || prepare(plans, &job.images_dir, transform, pool, &tx));
        let mut queue: Vec<Chw> = Vec::new();
        let mut queued_images = 0u64;
        let mut flush = |queue: &mut Vec<Chw>, all: bool| -> anyhow::Result<u64> {
            let full = if all {
                queue.len()
            } else {
                queue.len() / batch * batch
            };
            if full == 0 {
                return Ok(0);
            }
            let inputs: Vec<&Chw> = queue[..full].iter().collect();
            vectors.extend(encoder.encode_images(&inputs)?);
            queue.drain(..full);
            Ok(full as u64)
        };
        let mut crops_pending: std::collections::VecDeque<u64> = Default::default();
        let mut next_base = 0;
        for (plan, prepared) in plans.iter().zip(rx.iter()) {
            match prepared {
                Ok(inputs) => {
                    bases.push(Some(next_base));
                    next_base += inputs.len();
                    crops_pending.push_back(inputs.len() as u64);
                    queue.extend(inputs);
                    queued_images += 1;
                }
                Err(reason) => {
                    bases.push(None);
                    let first = plan.rows[0];
                    failures.push(ImageFailure {
                        shard: p.name.clone(),
                        image_id: first.image_id,
                        file_name: first.file_name.clone(),
                        ref_ids: plan.rows.iter().map(|r| r.ref_id).collect(),
                        reason,
                    });
                    progress.reporter.decoded(1);
                    progress.reporter.detected(progress.label, 1);
                }
            }
            let mut done = flush(&mut queue, false)?;
            // Count the images whose every crop is now embedded.
            while let Some(&n) = crops_pending.front()
                && n <= done
            {
                done -= n;
                crops_pending.pop_front();
                queued_images -= 1;
                progress.reporter.decoded(1);
                progress.reporter.detected(progress.label, 1);
            }
            if let Some(front) = crops_pending.front_mut() {
                *front -= done;
            }
        }
        flush(&mut queue, true)?;
        progress.reporter.decoded(queued_images);
        progress.reporter.detected(progress.label, queued_images);
        Ok(())
    });
    result?;
    if bases.len() != plans.len() {
        anyhow::bail!("the crop preparer stopped early");
    }

    // Rows in the proposal shard's order.
    let mut by_ref: HashMap<i64, EmbRow> = HashMap::new();
    let mut text_at = 0;
    let mut text_of: HashMap<i64, std::ops::Range<usize>> = HashMap::new();
    for r in &rows {
        text_of.insert(r.ref_id, text_at..text_at + r.sentences.len());
        text_at += r.sentences.len();
    }
    for (plan, base) in plans.iter().zip(&bases) {
        for (r, s) in plan.rows.iter().zip(&plan.slots) {
            let image = base.map(|b| ImageSide {
                gt: b + s.gt,
                whole: b + s.whole,
                kept: s.kept.iter().map(|&(i, c)| (i, b + c)).collect(),
            });
            by_ref.insert(
                r.ref_id,
                EmbRow {
                    ref_id: r.ref_id,
                    image_id: r.image_id,
                    image,
                    sent_ids: r.sentences.iter().map(|s| s.sent_id).collect(),
                    sentences: text_of[&r.ref_id].clone(),
                },
            );
        }
    }
    let ordered: Vec<&EmbRow> = rows.iter().map(|r| &by_ref[&r.ref_id]).collect();
    let batch = to_batch(&ordered, &vectors, &texts, dim)?;
    let mut meta = p.meta.clone();
    let listed: Vec<serde_json::Value> = failures
        .iter()
        .map(|f: &ImageFailure| {
            serde_json::json!({"image_id": f.image_id, "file_name": f.file_name,
                "ref_ids": f.ref_ids, "reason": f.reason})
        })
        .collect();
    meta.insert(
        META_IMAGE_FAILURES.to_string(),
        serde_json::to_string(&listed)?,
    );
    write_shard(dest, &batch, &meta, dim)?;
    Ok(ShardDone {
        images: vectors.len(),
        texts: texts.len(),
        failures,
    })
}

/// The image side of a row: indices into the shard's image vectors.
struct ImageSide {
    gt: usize,
    whole: usize,
    kept: Vec<(i32, usize)>,
}

/// One output row.
struct EmbRow {
    ref_id: i64,
    image_id: i64,
    /// None when the image could not be read.
    image: Option<ImageSide>,
    sent_ids: Vec<i64>,
    /// Indices into the shard's text vectors.
    sentences: std::ops::Range<usize>,
}

fn to_batch(
    rows: &[&EmbRow],
    vectors: &[Vec<f32>],
    texts: &[Vec<f32>],
    dim: usize,
) -> anyhow::Result<RecordBatch> {
    let schema = Arc::new(embedding_schema(dim));
    let vec_field = Arc::new(Field::new(LIST_ELEMENT_NAME, DataType::Float32, false));
    let fsl = || {
        FixedSizeListBuilder::new(Float32Builder::new(), dim as i32).with_field(vec_field.clone())
    };
    let list_field = |t: DataType| Arc::new(Field::new(LIST_ELEMENT_NAME, t, false));
    let vec_type = DataType::FixedSizeList(vec_field.clone(), dim as i32);
    let mut gt = fsl();
    let mut image = fsl();
    let mut kept_idx =
        ListBuilder::new(Int32Builder::new()).with_field(list_field(DataType::Int32));
    let mut kept_emb = ListBuilder::new(fsl()).with_field(list_field(vec_type.clone()));
    let mut sent_ids =
        ListBuilder::new(Int64Builder::new()).with_field(list_field(DataType::Int64));
    let mut sent_emb = ListBuilder::new(fsl()).with_field(list_field(vec_type));
    let push = |b: &mut FixedSizeListBuilder<Float32Builder>, v: &[f32]| {
        b.values().append_slice(v);
        b.append(true);
    };
    let null = |b: &mut FixedSizeListBuilder<Float32Builder>| {
        b.values().append_nulls(dim);
        b.append(false);
    };
    for r in rows {
        match &r.image {
            Some(side) => {
                push(&mut gt, &vectors[side.gt]);
                push(&mut image, &vectors[side.whole]);
                for &(i, v) in &side.kept {
                    kept_idx.values().append_value(i);
                    push(kept_emb.values(), &vectors[v]);
                }
                kept_idx.append(true);
                kept_emb.append(true);
            }
            None => {
                null(&mut gt);
                null(&mut image);
                kept_idx.append(false);
                kept_emb.append(false);
            }
        }
        for (id, v) in r.sent_ids.iter().zip(&texts[r.sentences.clone()]) {
            sent_ids.values().append_value(*id);
            push(sent_emb.values(), v);
        }
        sent_ids.append(true);
        sent_emb.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.ref_id))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.image_id),
        )),
        Arc::new(gt.finish()),
        Arc::new(image.finish()),
        Arc::new(kept_idx.finish()),
        Arc::new(kept_emb.finish()),
        Arc::new(sent_ids.finish()),
        Arc::new(sent_emb.finish()),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Write `batch` to a hidden temporary file beside `dest`, sync it, rename it into place. The
/// metadata, with the contract's `huggingface` features and version, goes both into the footer's
/// key-value list and the embedded Arrow schema (which pyarrow, and so `datasets`, reads).
fn write_shard(
    dest: &Path,
    batch: &RecordBatch,
    meta: &BTreeMap<String, String>,
    dim: usize,
) -> anyhow::Result<()> {
    let mut kv = meta.clone();
    kv.insert(
        crate::write::schema::META_HUGGINGFACE.to_string(),
        schema::huggingface_metadata(dim),
    );
    kv.insert(
        crate::write::schema::META_SCHEMA_VERSION.to_string(),
        schema::SCHEMA_VERSION.to_string(),
    );
    let batch = batch.clone().with_schema(Arc::new(
        embedding_schema(dim).with_metadata(
            kv.clone()
                .into_iter()
                .collect::<std::collections::HashMap<String, String>>(),
        ),
    ))?;
    let rows = batch.num_rows().max(1);
    let per_group = (MAX_ROW_GROUP_BYTES / (batch.get_array_memory_size() / rows).max(1)).max(1);
    let tmp = temp_path(dest);
    let result = (|| -> anyhow::Result<()> {
        let file = fs_err::File::create(&tmp)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(per_group))
            .set_key_value_metadata(Some(
                kv.iter()
                    .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.clone(), v.clone()))
                    .collect(),
            ))
            .build();
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
        w.write(&batch)?;
        let file = w.into_inner()?;
        file.sync_all()?;
        fs_err::rename(&tmp, dest)?;
        if let Some(dir) = dest.parent() {
            fs_err::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", dest.display()))
}
