//! The `refaug embed` stage: for every committed proposal shard of a variant, one embedding shard
//! beside it, row for row.
//!
//! ```text
//! <out>/<variant>/<split>-i-of-n.parquet ─▶ rows grouped by image ─▶ decode once ─▶ crops
//!   (kept proposals, each ref's ground truth, the whole image; each distinct CropBox once)
//!   ─▶ ClipTransform ─▶ image encoder        sentences ─▶ clip.tokenize ─▶ text encoder
//!   ─▶ <out>/<variant>/embeddings/<split>-i-of-n.parquet   (same rows, same order)
//! ```
//!
//! A shard is written to a hidden temporary file and renamed into place once complete
//! (`write::shard::temp_path`), so a visible shard is whole; a shard whose output exists with
//! the same source sha256, encoder and filter is skipped (resume), unless forced. An image that
//! cannot be decoded, or a sentence over 77 tokens without truncation, fails its shard: the
//! error is recorded in `embeddings/errors.json` and the other shards go on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{
    ArrayRef, FixedSizeListBuilder, Float32Builder, Int32Builder, Int64Array, Int64Builder,
    ListBuilder, RecordBatch,
};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use crate::embed::encoder::Encoder;
use crate::embed::filter::ProposalFilter;
use crate::embed::text::ClipTokenizer;
use crate::preprocess::clip::{CropBox, crop};
use crate::write::atomic::temp_path;
use crate::write::row::Row;
use crate::write::schema::LIST_ELEMENT_NAME;
use crate::write::shard::{read_key_value_metadata, read_rows};

/// The embeddings folder inside a variant's folder.
pub const EMBEDDINGS_DIR: &str = "embeddings";
/// Metadata: the encoder (JSON: name, spec, model sha256s, dim, trained_on).
pub const META_ENCODER: &str = "refaug.encoder";
/// Metadata: the proposal filter and whether over-long sentences were truncated (JSON).
pub const META_FILTER: &str = "refaug.filter";
/// Metadata: the proposal shard these rows belong to (JSON: file, sha256).
pub const META_SOURCE: &str = "refaug.source_shard";

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
}

/// The Arrow schema of an embedding shard of dimension `dim`.
pub fn embedding_schema(dim: usize) -> Schema {
    let vector = DataType::FixedSizeList(
        Arc::new(Field::new(LIST_ELEMENT_NAME, DataType::Float32, false)),
        dim as i32,
    );
    let list = |t: DataType| DataType::List(Arc::new(Field::new(LIST_ELEMENT_NAME, t, false)));
    Schema::new(vec![
        Field::new("ref_id", DataType::Int64, false),
        Field::new("image_id", DataType::Int64, false),
        Field::new("gt_embedding", vector.clone(), false),
        Field::new("image_embedding", vector.clone(), false),
        Field::new("proposal_index", list(DataType::Int32), false),
        Field::new("proposal_embeddings", list(vector.clone()), false),
        Field::new("sent_ids", list(DataType::Int64), false),
        Field::new("sentence_embeddings", list(vector), false),
    ])
}

/// One output row.
struct EmbRow {
    ref_id: i64,
    image_id: i64,
    gt: usize,
    image: usize,
    kept: Vec<(i32, usize)>,
    sent_ids: Vec<i64>,
    sentences: Vec<Vec<f32>>,
}

/// Run the job over every `*.parquet` of the variant folder, in name order.
pub fn embed_variant(job: &EmbedJob, encoder: &mut Encoder) -> anyhow::Result<EmbedSummary> {
    let out_dir = job.variant_dir.join(EMBEDDINGS_DIR);
    fs_err::create_dir_all(&out_dir)?;
    let shards = crate::validate::parquet_files(&job.variant_dir);
    if shards.is_empty() {
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
    for src in &shards {
        let name = src
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let dest = out_dir.join(&name);
        let source_sha = crate::sha256_file(src)?;
        let source_meta = serde_json::json!({"file": name, "sha256": source_sha}).to_string();
        if !job.force && dest.is_file() {
            let kv = read_key_value_metadata(&dest)?;
            if kv.get(META_SOURCE) == Some(&source_meta)
                && kv.get(META_ENCODER) == Some(&encoder_meta)
                && kv.get(META_FILTER) == Some(&filter_meta)
            {
                summary.shards_skipped += 1;
                continue;
            }
        }
        let meta = BTreeMap::from([
            (META_SOURCE.to_string(), source_meta),
            (META_ENCODER.to_string(), encoder_meta.clone()),
            (META_FILTER.to_string(), filter_meta.clone()),
        ]);
        match embed_shard(job, encoder, src, &dest, &meta) {
            Ok((images, texts)) => {
                summary.shards_written += 1;
                summary.image_embeddings += images;
                summary.text_embeddings += texts;
            }
            Err(e) => summary.failures.push((
                name,
                crate::error_chain(e.as_ref() as &dyn std::error::Error),
            )),
        }
    }
    let errors: Vec<_> = summary
        .failures
        .iter()
        .map(|(s, e)| serde_json::json!({"shard": s, "error": e}))
        .collect();
    crate::pipeline::journal::write_atomic(
        &out_dir.join("errors.json"),
        (serde_json::to_string_pretty(&errors)? + "\n").as_bytes(),
    )?;
    Ok(summary)
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

/// One proposal shard → one embedding shard; returns (image, text) embeddings computed.
fn embed_shard(
    job: &EmbedJob,
    encoder: &mut Encoder,
    src: &Path,
    dest: &Path,
    meta: &BTreeMap<String, String>,
) -> anyhow::Result<(usize, usize)> {
    let rows = read_rows(src)?;
    let dim = encoder.spec().dim;
    let transform = encoder.spec().transform;
    let tokenizer = ClipTokenizer::shared();
    // Per image (first appearance order): its rows; each distinct crop embedded once.
    let mut order: Vec<i64> = Vec::new();
    let mut by_image: HashMap<i64, Vec<&Row>> = HashMap::new();
    for r in &rows {
        by_image
            .entry(r.image_id)
            .or_insert_with(|| {
                order.push(r.image_id);
                Vec::new()
            })
            .push(r);
    }
    let mut vectors: Vec<Vec<f32>> = Vec::new();
    let mut out: HashMap<i64, EmbRow> = HashMap::new();
    let mut n_text = 0;
    for image_id in order {
        let group = &by_image[&image_id];
        let first = group[0];
        let path = job.images_dir.join(&first.file_name);
        let img = crate::decode::decode_file(&path)
            .with_context(|| format!("image {image_id} ({})", first.file_name))?;
        let mut boxes: Vec<CropBox> = Vec::new();
        let mut index: HashMap<CropBox, usize> = HashMap::new();
        let mut slot = |b: CropBox| -> usize {
            *index.entry(b).or_insert_with(|| {
                boxes.push(b);
                boxes.len() - 1
            })
        };
        let mut pending = Vec::new();
        for r in group {
            let ctx = || format!("ref {} (image {image_id})", r.ref_id);
            let gt = slot(CropBox::from_xyxy(&r.gt_box).with_context(ctx)?);
            let whole = slot(CropBox::whole(&img));
            let mut kept = Vec::new();
            for (i, p) in r.proposals.iter().enumerate() {
                let b = p.bbox;
                if job.filter.keeps(f64::from(p.score), &b) {
                    let c = CropBox::from_xyxy(&b)
                        .with_context(|| format!("{}: proposal {i}", ctx()))?;
                    kept.push((i as i32, slot(c)));
                }
            }
            let mut tokens = Vec::new();
            for s in &r.sentences {
                let t = tokenizer
                    .tokenize(&s.sent, job.truncate)
                    .with_context(|| format!("{}: sentence {} {:?}", ctx(), s.sent_id, s.sent))?;
                tokens.push(t.ids);
            }
            let sentences = encoder.encode_texts(&tokens)?;
            n_text += sentences.len();
            pending.push(EmbRow {
                ref_id: r.ref_id,
                image_id,
                gt,
                image: whole,
                kept,
                sent_ids: r.sentences.iter().map(|s| s.sent_id).collect(),
                sentences,
            });
        }
        // Crops of one image are independent: pre-process them in parallel (collect keeps the
        // order, so the output does not depend on the thread count).
        let inputs: Vec<_> = boxes
            .par_iter()
            .map(|&b| transform.apply(&crop(&img, b)))
            .collect();
        let refs: Vec<_> = inputs.iter().collect();
        let base = vectors.len();
        vectors.extend(encoder.encode_images(&refs)?);
        for mut e in pending {
            e.gt += base;
            e.image += base;
            for k in &mut e.kept {
                k.1 += base;
            }
            out.insert(e.ref_id, e);
        }
    }
    let ordered: Vec<&EmbRow> = rows.iter().map(|r| &out[&r.ref_id]).collect();
    let batch = to_batch(&ordered, &vectors, dim)?;
    write_shard(dest, &batch, meta)?;
    Ok((vectors.len(), n_text))
}

fn to_batch(rows: &[&EmbRow], vectors: &[Vec<f32>], dim: usize) -> anyhow::Result<RecordBatch> {
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
    for r in rows {
        push(&mut gt, &vectors[r.gt]);
        push(&mut image, &vectors[r.image]);
        for &(i, v) in &r.kept {
            kept_idx.values().append_value(i);
            push(kept_emb.values(), &vectors[v]);
        }
        kept_idx.append(true);
        kept_emb.append(true);
        for (id, v) in r.sent_ids.iter().zip(&r.sentences) {
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

/// Write `batch` to a hidden temporary file beside `dest`, sync it, rename it into place.
fn write_shard(
    dest: &Path,
    batch: &RecordBatch,
    meta: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let tmp = temp_path(dest);
    let result = (|| -> anyhow::Result<()> {
        let file = fs_err::File::create(&tmp)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_key_value_metadata(Some(
                meta.iter()
                    .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.clone(), v.clone()))
                    .collect(),
            ))
            .build();
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
        w.write(batch)?;
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
