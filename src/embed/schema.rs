//! The embeddings contract: every column of an embedding shard (`<variant>/embeddings/`), in one
//! table ([`COLUMNS`]). The Arrow schema ([`embedding_schema`]), the Hugging Face features
//! ([`huggingface_metadata`]), `schemas/refaug-embeddings.schema.json` and `schemas/embeddings.md`
//! are derived from it, by the same machinery as the proposals contract
//! ([`crate::write::schema`]; `tests/write.rs` fails when `schemas/` is stale).

use serde::Serialize;

use crate::write::schema::{
    self as proposals, ColumnSpec, ColumnType, LIST_ELEMENT_NAME, Tables, TablesJson, pretty_json,
};

/// Version of the embeddings contract (semver; same rules as the proposals contract's).
pub const SCHEMA_VERSION: &str = "1.0.0";

/// What changed in each version (newest first).
pub const CHANGES: &[(&str, &str)] = &[(
    "1.0.0",
    "First version: one row per ref aligned with the proposal shard, float32 vectors; the \
     image-side columns are null for the refs of an image that could not be read.",
)];

/// Name of the contract, used in the `schemas/` file name and the JSON description.
pub const CONTRACT_NAME: &str = "refaug-embeddings";
/// The human-readable contract's file in `schemas/`.
pub const README_FILE: &str = "embeddings.md";

/// Metadata: the encoder (JSON: name, spec, model sha256s, dim, input size, mean/std, trained_on).
pub const META_ENCODER: &str = "refaug.encoder";
/// Metadata: the proposal filter and whether over-long sentences were truncated (JSON).
pub const META_FILTER: &str = "refaug.filter";
/// Metadata: the proposal shard these rows belong to (JSON: file, sha256).
pub const META_SOURCE: &str = "refaug.source_shard";
/// Metadata: the images that could not be read (JSON list: image_id, file_name, ref_ids, reason).
pub const META_IMAGE_FAILURES: &str = "refaug.image_failures";

/// Every documented key of an embedding shard's key-value metadata.
pub const METADATA_KEYS: &[(&str, &str)] = &[
    (
        proposals::META_HUGGINGFACE,
        "`{\"info\": {\"features\": …}}`: the Hugging Face `datasets` features of the columns \
         (vectors as `Sequence` of `float32` with `length` D), so that `load_dataset` loads them \
         typed.",
    ),
    (
        proposals::META_SCHEMA_VERSION,
        "The version (semver) of this contract the shard follows.",
    ),
    (
        proposals::META_REFAUG_VERSION,
        "The refaug version that wrote the shard.",
    ),
    (
        META_ENCODER,
        "The encoder (JSON): name, spec file, sha256 of the image and text ONNX models, `dim` \
         (D), input size, mean/std, what it was trained on.",
    ),
    (
        META_FILTER,
        "The proposal filter (JSON: `score_above`, `width_above`, `height_above`, all strict) and \
         `truncate_sentences`.",
    ),
    (
        META_SOURCE,
        "The proposal shard the rows belong to (JSON: `file`, `sha256`); `refaug validate` \
         checks it against the file beside.",
    ),
    (
        META_IMAGE_FAILURES,
        "JSON list of the images that could not be read (`image_id`, `file_name`, `ref_ids`, \
         `reason`); their refs' image-side columns are null. Also in `embeddings/errors.json`.",
    ),
];

static INDEX: ColumnSpec = ColumnSpec {
    name: LIST_ELEMENT_NAME,
    ty: ColumnType::Int32,
    nullable: false,
    description: "An index into the proposal row's `proposals`.",
};
static SENT_ID: ColumnSpec = ColumnSpec {
    name: LIST_ELEMENT_NAME,
    ty: ColumnType::Int64,
    nullable: false,
    description: "A sentence id.",
};
static VECTOR: ColumnSpec = ColumnSpec {
    name: LIST_ELEMENT_NAME,
    ty: ColumnType::Vector,
    nullable: false,
    description: "One embedding.",
};

const fn column(
    name: &'static str,
    ty: ColumnType,
    nullable: bool,
    description: &'static str,
) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        nullable,
        description,
    }
}

/// The contract: the columns of every embedding shard, in file order.
pub static COLUMNS: [ColumnSpec; 8] = [
    column(
        "ref_id",
        ColumnType::Int64,
        false,
        "The ref; equal to `ref_id` of the proposal shard's row at the same position.",
    ),
    column(
        "image_id",
        ColumnType::Int64,
        false,
        "The COCO image id (as in the proposal row).",
    ),
    column(
        "gt_embedding",
        ColumnType::Vector,
        true,
        "Image embedding of the ref's ground-truth crop (`gt_box`). Null only when the image \
         could not be read (then so are `image_embedding`, `proposal_index` and \
         `proposal_embeddings`, and the ref is listed in `refaug.image_failures`).",
    ),
    column(
        "image_embedding",
        ColumnType::Vector,
        true,
        "Image embedding of the whole image (the evaluation's fallback when no proposal is \
         kept). Null only when the image could not be read.",
    ),
    column(
        "proposal_index",
        ColumnType::List(&INDEX),
        true,
        "Indices into the proposal row's `proposals` of the proposals the filter \
         (`refaug.filter`) keeps, ascending. Null only when the image could not be read.",
    ),
    column(
        "proposal_embeddings",
        ColumnType::List(&VECTOR),
        true,
        "Image embeddings of the kept proposals' crops, same order and length as \
         `proposal_index`. Null only when the image could not be read.",
    ),
    column(
        "sent_ids",
        ColumnType::List(&SENT_ID),
        false,
        "The ref's sentence ids, in the proposal row's `sentences` order.",
    ),
    column(
        "sentence_embeddings",
        ColumnType::List(&VECTOR),
        false,
        "Text embeddings of the sentences (`clip.tokenize` tokens), same order as `sent_ids`.",
    ),
];

/// The Arrow schema of an embedding shard whose vectors have `dim` coordinates.
pub fn embedding_schema(dim: usize) -> arrow::datatypes::Schema {
    proposals::arrow_schema_of(&COLUMNS, dim)
}

/// The `huggingface` key-value metadata of an embedding shard of dimension `dim`.
pub fn huggingface_metadata(dim: usize) -> String {
    proposals::huggingface_metadata_of(&COLUMNS, dim)
}

const ROWS: &str = "One row per ref, aligned one to one with the variant's proposal shard of \
    the same name: row i holds the embeddings of row i's ref (same `ref_id`, same order), so the \
    two files zip without a join. No row is ever dropped: the refs of an image that could not be \
    read keep their row, with null image-side columns and an entry in `refaug.image_failures` \
    and `embeddings/errors.json`.";

const CROPS: &str = "Crops as the research made them: the xyxy box to xywh, x, y, w and h each \
    rounded half to even; the crop is zero-filled outside the image (no clamping); /255; \
    torchvision 0.29's float bicubic antialiased resize of the shorter side to the encoder's \
    input size; centre crop; the encoder's mean/std. Each distinct crop of an image is embedded \
    once (two proposals rounding to the same crop share one embedding). Sentences are \
    `clip.tokenize`d (context 77); over 77 tokens is an error unless `truncate_sentences`.";

const FILE_LAYOUT: &str = "<variant>/embeddings/<split>-<index>-of-<count>.parquet, the name \
    of the proposal shard it belongs to. Parquet with zstd compression, row groups of at most \
    about 100 MB uncompressed, list elements named `element`. A shard is written to a hidden \
    temporary name and renamed into place once complete and synced, so a visible shard is \
    always whole. `embeddings/errors.json` lists the shards that failed as a whole and the \
    images that could not be read (file and refs).";

const ROW_LAYOUT: &str = "Why one row per ref (and not per image): per-ref rows zip with the \
    proposal shards and give a training step everything about a ref in one row, at the cost of \
    repeating an image's proposal and whole-image embeddings once per ref of that image. At \
    RefCOCOg scale (umd: 25,799 images, 49,822 refs, 95,010 sentences; D = 1024, 4 KiB a \
    vector; ~15 DETR proposals kept an image) that is ≈ 3.5 GB against ≈ 1.9 GB stored once \
    per image, plus 0.39 GB of sentences either way (zstd barely compresses float noise: on the \
    reference's public-24 crops 8.6 MB per ref against 4.2 MB per image). The training reads \
    the whole split into memory once per run, so the 1.6 GB difference costs disk, not epochs; \
    a per-image layout would be a new major version of this contract.";

const PRECISION: &str = "Vectors are float32; no float16 option. Measured with \
    `tools/float16_effect.py` on the sample: float16 vectors make the files 0.41 × the size with \
    ../shared's small CLIP RN50 (D = 1024) and 0.78 × with the fixture (D = 16), but rounding the \
    vectors to float16 changed 3 of the 32 train refs' zero-shot picks with the small RN50 (whose \
    random weights leave candidate similarities nearly tied), none with the fixture. The effect \
    depends on how close the candidates' similarities are, which only the real RN50's weights \
    say, and they were not available to measure; until that measurement exists, float32 keeps \
    the heads' inputs exactly what CLIP computed.";

/// The dimension the contract's JSON shows the features with (CLIP RN50's); a shard's own
/// metadata has its D.
const SHOWN_DIM: usize = 1024;

const TABLES: Tables = Tables {
    columns: &COLUMNS,
    metadata_keys: METADATA_KEYS,
    changes: CHANGES,
    dim: SHOWN_DIM,
};

#[derive(Serialize)]
struct ContractJson {
    name: &'static str,
    schema_version: &'static str,
    row_order: &'static str,
    crops: &'static str,
    file_layout: &'static str,
    row_layout: &'static str,
    precision: &'static str,
    /// D in `huggingface_features` below.
    huggingface_features_dim: usize,
    #[serde(flatten)]
    tables: TablesJson,
}

/// The machine-readable contract (`schemas/refaug-embeddings.schema.json`).
pub fn contract_json() -> String {
    pretty_json(&ContractJson {
        name: CONTRACT_NAME,
        schema_version: SCHEMA_VERSION,
        row_order: ROWS,
        crops: CROPS,
        file_layout: FILE_LAYOUT,
        row_layout: ROW_LAYOUT,
        precision: PRECISION,
        huggingface_features_dim: SHOWN_DIM,
        tables: TABLES.json(),
    })
}

/// The human-readable contract (`schemas/embeddings.md`).
pub fn readme_markdown() -> String {
    let (rows, metadata, changes) = TABLES.markdown();
    format!(
        "<!-- Generated by refaug::embed::schema::readme_markdown(); do not edit. \
         Regenerate with `REFAUG_BLESS=1 cargo test --test write`. -->\n\
         # The refaug embeddings contract, version {SCHEMA_VERSION}\n\
         \n\
         Machine-readable form: [`{CONTRACT_NAME}.schema.json`]({CONTRACT_NAME}.schema.json). \
         The proposal shards the rows belong to: [README.md](README.md).\n\
         \n\
         ## Rows\n\
         \n\
         {ROWS}\n\
         \n\
         ## Crops and sentences\n\
         \n\
         {CROPS}\n\
         \n\
         ## Files\n\
         \n\
         {FILE_LAYOUT}\n\
         \n\
         ## Columns\n\
         \n\
         D is the encoder's dimension (`refaug.encoder` `dim`; 1024 for CLIP RN50).\n\
         \n\
         | column | type | nullable | meaning |\n\
         |---|---|---|---|\n\
         {}\n\
         \n\
         ## Invariants (checked by `refaug validate`)\n\
         \n\
         - the proposal shard of the same name exists and its sha256 is `refaug.source_shard`'s;\n\
         - the same refs in the same order as the proposal shard; `sent_ids` are its sentences';\n\
         - the schema is this contract's for the recorded D; every value is finite;\n\
         - `proposal_index` is strictly ascending, within the row's proposals, as long as \
         `proposal_embeddings`; one sentence embedding per sentence;\n\
         - the image-side columns are null exactly for the refs `refaug.image_failures` lists.\n\
         \n\
         ## Row layout\n\
         \n\
         {ROW_LAYOUT}\n\
         \n\
         ## Precision\n\
         \n\
         {PRECISION}\n\
         \n\
         ## Key-value metadata\n\
         \n\
         | key | value |\n\
         |---|---|\n\
         {}\n\
         \n\
         No timestamps: the same inputs give a byte-identical file, whatever the batch size or \
         thread count.\n\
         \n\
         ## Changes\n\
         \n\
         {}\n",
        rows, metadata, changes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_fixed_size_float32_lists_of_the_given_dimension() {
        let schema = embedding_schema(7);
        let field = schema.field_with_name("gt_embedding").unwrap();
        let arrow::datatypes::DataType::FixedSizeList(element, 7) = field.data_type() else {
            panic!("{field:?}");
        };
        assert_eq!(element.name(), LIST_ELEMENT_NAME);
        assert_eq!(element.data_type(), &arrow::datatypes::DataType::Float32);
        assert!(!element.is_nullable());
        let nullable: Vec<&str> = COLUMNS
            .iter()
            .filter(|c| c.nullable)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            nullable,
            [
                "gt_embedding",
                "image_embedding",
                "proposal_index",
                "proposal_embeddings"
            ]
        );
    }
}
