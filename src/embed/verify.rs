//! Checks of a variant's `embeddings/` folder, for `refaug validate`: every proposal shard has
//! its embedding shard, made from exactly that file (sha256), with the same refs in the same
//! order, the schema of the recorded dimension, finite values, kept proposal indices that exist,
//! one embedding per kept proposal and per sentence.

use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Int32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::embed::run::{EMBEDDINGS_DIR, META_ENCODER, META_SOURCE, embedding_schema};
use crate::write::shard::{read_key_value_metadata, read_rows};

/// Problems of `<variant_dir>/embeddings/`, each naming the file (and ref); none when the
/// variant has no embeddings.
pub fn verify_embeddings(variant_dir: &Path) -> Vec<String> {
    let dir = variant_dir.join(EMBEDDINGS_DIR);
    if !dir.is_dir() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    let sources = crate::validate::parquet_files(variant_dir);
    for src in sources {
        let name = src
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let emb = dir.join(&name);
        if let Err(e) = verify_one(&src, &emb) {
            problems.push(format!("{}: {e}", emb.display()));
        }
    }
    problems
}

fn verify_one(src: &Path, emb: &Path) -> Result<(), String> {
    if !emb.is_file() {
        return Err("missing (run `refaug embed`)".into());
    }
    let kv = read_key_value_metadata(emb).map_err(|e| crate::error_chain(&e))?;
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
    Ok(())
}
