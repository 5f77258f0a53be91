//! Checks of a variant's `embeddings/` folder, for `refaug validate`: every proposal shard has
//! its embedding shard, made from exactly that file (sha256), with the same refs in the same
//! order, the schema of the recorded dimension, finite values, kept proposal indices that exist,
//! one embedding per kept proposal and per sentence; null image-side columns exactly for the
//! refs of the images the shard lists as unreadable (reported as notes, not problems).

use std::collections::BTreeSet;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Int32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::embed::run::EMBEDDINGS_DIR;
use crate::embed::schema::{
    self, META_ENCODER, META_FILTER, META_IMAGE_FAILURES, META_SOURCE, embedding_schema,
};
use crate::write::schema::{META_HUGGINGFACE, META_SCHEMA_VERSION};
use crate::write::shard::{read_key_value_metadata, read_rows};

/// What the check of a variant's `embeddings/` found.
#[derive(Debug, Default)]
pub struct EmbeddingsCheck {
    /// Each names the file (and ref).
    pub problems: Vec<String>,
    /// Refs without image embeddings because their image could not be read (as recorded).
    pub notes: Vec<String>,
}

/// Checks `<variant_dir>/embeddings/`; nothing when the variant has no embeddings.
pub fn verify_embeddings(variant_dir: &Path) -> EmbeddingsCheck {
    let dir = variant_dir.join(EMBEDDINGS_DIR);
    let mut check = EmbeddingsCheck::default();
    if !dir.is_dir() {
        return check;
    }
    let sources = crate::validate::parquet_files(variant_dir);
    // Every shard of a variant must come from one encoder and one filter: the first shard's.
    let mut first: Option<(String, Settings)> = None;
    for src in sources {
        let name = src
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let emb = dir.join(&name);
        match verify_one(&src, &emb) {
            Ok(shard) => {
                match &first {
                    None => first = Some((name, shard.settings)),
                    Some((other, want)) if *want != shard.settings => check.problems.push(format!(
                        "{}: made with another encoder or filter (`{META_ENCODER}`, \
                             `{META_FILTER}`) than {other}; run `refaug embed --force` to make \
                             every shard alike",
                        emb.display()
                    )),
                    Some(_) => {}
                }
                if !shard.failed.is_empty() {
                    check.notes.push(format!(
                        "{}: refs {:?} have no image embeddings: their image could not be read \
                         (`{META_IMAGE_FAILURES}`); run `refaug embed` again once it can",
                        emb.display(),
                        shard.failed
                    ));
                }
            }
            Err(e) => check.problems.push(format!("{}: {e}", emb.display())),
        }
    }
    check
}

/// What made a shard: its `refaug.encoder` and `refaug.filter` metadata.
type Settings = [Option<String>; 2];

/// A shard that passed its checks.
struct Verified {
    /// The refs recorded as having an unreadable image.
    failed: Vec<i64>,
    settings: Settings,
}

/// Checks one embedding shard against its proposal shard.
fn verify_one(src: &Path, emb: &Path) -> Result<Verified, String> {
    if !emb.is_file() {
        return Err("missing (run `refaug embed`)".into());
    }
    let kv = read_key_value_metadata(emb).map_err(|e| crate::error_chain(&e))?;
    if kv.get(META_SCHEMA_VERSION).map(String::as_str) != Some(schema::SCHEMA_VERSION) {
        return Err(format!(
            "metadata `{META_SCHEMA_VERSION}` is {}, expected {:?}: written under another \
             version of the embeddings contract (`refaug embed` rewrites it)",
            kv.get(META_SCHEMA_VERSION)
                .map_or("missing".to_string(), |v| format!("{v:?}")),
            schema::SCHEMA_VERSION
        ));
    }
    let failed: BTreeSet<i64> = kv
        .get(META_IMAGE_FAILURES)
        .and_then(|s| serde_json::from_str::<Vec<serde_json::Value>>(s).ok())
        .ok_or(format!(
            "no readable `{META_IMAGE_FAILURES}` in the metadata"
        ))?
        .iter()
        .flat_map(|f| f["ref_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|id| id.as_i64())
        .collect();
    let source: serde_json::Value = kv
        .get(META_SOURCE)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or("no source shard in the metadata")?;
    let actual = crate::sha256_file(src).map_err(|e| e.to_string())?;
    if source["sha256"].as_str() != Some(actual.as_str()) {
        return Err(format!(
            "made from a proposal shard with sha256 {}, but {} has {actual}",
            source["sha256"],
            src.display()
        ));
    }
    let dim = kv
        .get(META_ENCODER)
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v["dim"].as_u64())
        .ok_or("no encoder dimension in the metadata")? as usize;
    let hf = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
    if kv.get(META_HUGGINGFACE).and_then(|t| hf(t)) != hf(&schema::huggingface_metadata(dim)) {
        return Err(format!(
            "metadata `{META_HUGGINGFACE}` differs from the contract's features for dim {dim}"
        ));
    }
    let rows = read_rows(src).map_err(|e| crate::error_chain(&e))?;
    let file = fs_err::File::open(emb)
        .map_err(|e| e.to_string())?
        .into_parts()
        .0;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    let want = embedding_schema(dim);
    let mut i = 0;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        if batch.schema().fields() != want.fields() {
            return Err(format!("schema differs from the contract for dim {dim}"));
        }
        let col = |k: usize| batch.column(k);
        let ref_ids = col(0).as_primitive::<Int64Type>();
        let kept_idx = col(4).as_list::<i32>();
        let kept_emb = col(5).as_list::<i32>();
        let sent_ids = col(6).as_list::<i32>();
        let sent_emb = col(7).as_list::<i32>();
        for k in 0..batch.num_rows() {
            let Some(row) = rows.get(i) else {
                return Err(format!("more rows than {}", src.display()));
            };
            let at = |what: &str| format!("row {i} (ref {}): {what}", row.ref_id);
            if ref_ids.value(k) != row.ref_id {
                return Err(at(&format!("ref_id {} differs", ref_ids.value(k))));
            }
            let image_side = [col(2), col(3), col(4), col(5)];
            if failed.contains(&row.ref_id) {
                if !image_side.iter().all(|c| c.is_null(k)) {
                    return Err(at(
                        "its image is listed as unreadable but it has image embeddings",
                    ));
                }
            } else if image_side.iter().any(|c| c.is_null(k)) {
                return Err(at(
                    "null image embeddings, but its image is not listed as unreadable",
                ));
            }
            let idx = kept_idx.value(k);
            let idx = idx.as_primitive::<Int32Type>();
            let ok_idx = idx.values().windows(2).all(|w| w[0] < w[1])
                && idx
                    .values()
                    .iter()
                    .all(|&p| p >= 0 && (p as usize) < row.proposals.len());
            if !ok_idx || kept_emb.value(k).len() != idx.len() {
                return Err(at(
                    "proposal_index does not fit proposals / proposal_embeddings",
                ));
            }
            let sids = sent_ids.value(k);
            let sids: Vec<i64> = sids.as_primitive::<Int64Type>().values().to_vec();
            let want_sids: Vec<i64> = row.sentences.iter().map(|s| s.sent_id).collect();
            if sids != want_sids || sent_emb.value(k).len() != sids.len() {
                return Err(at("sentences differ from the proposal row's"));
            }
            i += 1;
        }
        for k in [2, 3, 5, 7] {
            let values = match col(k).data_type() {
                arrow::datatypes::DataType::List(_) => col(k)
                    .as_list::<i32>()
                    .values()
                    .as_fixed_size_list()
                    .values()
                    .clone(),
                _ => col(k).as_fixed_size_list().values().clone(),
            };
            if !values
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .all(|v| v.is_finite())
            {
                return Err(format!(
                    "column {} holds NaN or infinite values",
                    want.field(k).name()
                ));
            }
        }
    }
    if i != rows.len() {
        return Err(format!("{i} rows, {} has {}", src.display(), rows.len()));
    }
    if let Some(unknown) = failed
        .iter()
        .find(|r| !rows.iter().any(|row| row.ref_id == **r))
    {
        return Err(format!(
            "`{META_IMAGE_FAILURES}` lists ref {unknown}, which {} does not have",
            src.display()
        ));
    }
    Ok(Verified {
        failed: failed.into_iter().collect(),
        settings: [META_ENCODER, META_FILTER].map(|k| kv.get(k).cloned()),
    })
}
