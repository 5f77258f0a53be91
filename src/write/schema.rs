//! The output contract: every column of a refaug Parquet shard, its type, nullability and
//! meaning, in one table ([`COLUMNS`]). The Arrow schema, the Hugging Face `datasets` features,
//! `schemas/refaug-proposals.schema.json` and `schemas/README.md` are all derived from it.
//!
//! `schemas/` is generated, never edited by hand: `tests/write.rs` fails when the committed files
//! differ from [`contract_json`] / [`readme_markdown`]; `REFAUG_BLESS=1 cargo test --test write`
//! rewrites them.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};

/// Version of the contract below. Bump the major version when a column is removed, renamed or
/// changes type or meaning; the minor version when a column is added.
pub const SCHEMA_VERSION: &str = "2.0.0";

/// What changed in each contract version (newest first), for `schemas/README.md`.
pub const CHANGES: &[(&str, &str)] = &[
    (
        "2.0.0",
        "Proposals may extend past the image: boxes are clipped to the image only when the \
         detector's `clip_boxes` (in the `refaug.detector` metadata) is true, by default as the \
         original library does (the YOLO libraries and torchvision clip; Hugging Face DETR's \
         `post_process_object_detection` does not, so DETR variants keep its boxes as they are, \
         and crops of them zero-pad what lies outside the image, as the research's did). \
         `proposal_iou` and `best_iou` are computed on the boxes as stored. `refaug validate` \
         checks the inside-the-image invariant only for clipped variants.",
    ),
    (
        "1.0.0",
        "First version: every proposal clipped to the image.",
    ),
];

/// Name of the contract, used in `schemas/` file names and the JSON description.
pub const CONTRACT_NAME: &str = "refaug-proposals";

/// Parquet key-value metadata key holding `{"info": {"features": …}}` for Hugging Face `datasets`.
pub const META_HUGGINGFACE: &str = "huggingface";
/// Parquet key-value metadata key holding [`SCHEMA_VERSION`].
pub const META_SCHEMA_VERSION: &str = "refaug.schema_version";
/// Parquet key-value metadata key holding the refaug version that wrote the shard.
pub const META_REFAUG_VERSION: &str = "refaug.version";
/// Parquet key-value metadata key holding the detector spec (JSON) the proposals come from.
pub const META_DETECTOR: &str = "refaug.detector";
/// Parquet key-value metadata key holding the sha256 of every input file (JSON object: path → hex).
pub const META_SOURCES: &str = "refaug.sources";
/// Parquet key-value metadata key holding the dataset description (JSON: kind, split_by, split).
pub const META_DATASET: &str = "refaug.dataset";

/// Every documented key of a shard's key-value metadata and what it holds. The shard writer
/// sets the first two itself; the others come from the caller.
pub const METADATA_KEYS: &[(&str, &str)] = &[
    (
        META_HUGGINGFACE,
        "`{\"info\": {\"features\": …}}`: the Hugging Face `datasets` features of the columns, so \
         that `load_dataset(\"parquet\", …)` loads them typed. Set by the shard writer.",
    ),
    (
        META_SCHEMA_VERSION,
        "The contract version (semver) the shard follows. Set by the shard writer.",
    ),
    (
        META_REFAUG_VERSION,
        "The refaug version that wrote the shard.",
    ),
    (
        META_DETECTOR,
        "The detector spec (JSON): family, model file and its sha256, calling convention, input \
         size, thresholds, class names, and `clip_boxes`: `true` when every proposal is clipped \
         to the image, `false` when proposals are the library's boxes as they are and may extend \
         past it (DETR by default).",
    ),
    (
        META_SOURCES,
        "JSON object: each input file (annotations, refs pickle, model) → its sha256 (hex).",
    ),
    (
        META_DATASET,
        "JSON object: dataset kind (`refcocog`, `refcoco`, `refcoco+`), `split_by`, split.",
    ),
];

/// The type of one column or nested field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnType {
    Int32,
    Int64,
    Float32,
    /// UTF-8 string (Arrow `Utf8`, Parquet `BYTE_ARRAY` + `STRING`).
    String,
    /// A variable-length list; the element field is named `element` as the Parquet spec's
    /// LIST logical type says (arrow-rs would name it `item` unless told).
    List(&'static ColumnSpec),
    /// A struct of named fields, in this order.
    Struct(&'static [ColumnSpec]),
    /// A float32 vector of the contract's dimension D (Arrow `fixed_size_list<float32, D>`);
    /// D is the shard's, recorded in its metadata (the embeddings contract: the encoder's dim).
    Vector,
}

/// One column (or nested field) of the contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
    pub description: &'static str,
}

/// The name of every list's element field (Parquet spec LIST naming).
pub const LIST_ELEMENT_NAME: &str = "element";

const fn required(name: &'static str, ty: ColumnType, description: &'static str) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        nullable: false,
        description,
    }
}

const fn element(ty: ColumnType, description: &'static str) -> ColumnSpec {
    required(LIST_ELEMENT_NAME, ty, description)
}

static GT_BOX_FIELDS: [ColumnSpec; 4] = [
    required("xmin", ColumnType::Float32, "Left edge, pixels."),
    required("ymin", ColumnType::Float32, "Top edge, pixels."),
    required("xmax", ColumnType::Float32, "Right edge, pixels."),
    required("ymax", ColumnType::Float32, "Bottom edge, pixels."),
];

static TOKEN: ColumnSpec = element(ColumnType::String, "One token.");

static SENTENCE_FIELDS: [ColumnSpec; 4] = [
    required(
        "sent_id",
        ColumnType::Int64,
        "The sentence's id in the refs pickle (unique within the dataset).",
    ),
    required(
        "sent",
        ColumnType::String,
        "The normalised sentence (lower case, as the refs pickle gives it).",
    ),
    required(
        "raw",
        ColumnType::String,
        "The sentence as the annotator wrote it.",
    ),
    required(
        "tokens",
        ColumnType::List(&TOKEN),
        "The tokens of `sent`, as the refs pickle gives them.",
    ),
];

static SENTENCE: ColumnSpec = element(
    ColumnType::Struct(&SENTENCE_FIELDS),
    "One referring expression.",
);

static PROPOSAL_FIELDS: [ColumnSpec; 7] = [
    required(
        "xmin",
        ColumnType::Float32,
        "Left edge, pixels; in [0, image_width] when the variant clips (`clip_boxes`), may be \
         negative otherwise.",
    ),
    required(
        "ymin",
        ColumnType::Float32,
        "Top edge, pixels; in [0, image_height] when the variant clips, may be negative \
         otherwise.",
    ),
    required(
        "xmax",
        ColumnType::Float32,
        "Right edge, pixels, at least `xmin`; at most image_width when the variant clips, may \
         exceed it otherwise.",
    ),
    required(
        "ymax",
        ColumnType::Float32,
        "Bottom edge, pixels, at least `ymin`; at most image_height when the variant clips, may \
         exceed it otherwise.",
    ),
    required(
        "score",
        ColumnType::Float32,
        "Detector confidence in [0, 1] (YOLOv5: objectness × class probability; others: the \
         best class score).",
    ),
    required(
        "class_id",
        ColumnType::Int32,
        "The detector's class index: 0..79 (COCO-80 order) for the YOLO families, the COCO \
         category id (1..90) for DETR and torchvision models.",
    ),
    required(
        "label",
        ColumnType::String,
        "The detector's name for `class_id` (COCO names for COCO-trained detectors, so it \
         compares with `category_name`).",
    ),
];

static PROPOSAL: ColumnSpec = element(
    ColumnType::Struct(&PROPOSAL_FIELDS),
    "One box the detector kept.",
);

static PROPOSAL_IOU: ColumnSpec = element(
    ColumnType::Float32,
    "IoU of the proposal at the same index with `gt_box`.",
);

/// The contract: the columns of every shard, in file order.
pub static COLUMNS: [ColumnSpec; 15] = [
    required(
        "ref_id",
        ColumnType::Int64,
        "The ref's id in `refs(<split_by>).p`; unique within a variant. Rows are sorted by it.",
    ),
    required(
        "ann_id",
        ColumnType::Int64,
        "The COCO annotation id of the referred object (`instances.json` `annotations[].id`).",
    ),
    required(
        "image_id",
        ColumnType::Int64,
        "The COCO image id (`instances.json` `images[].id`).",
    ),
    required(
        "file_name",
        ColumnType::String,
        "The image file relative to the dataset's `images/` folder, as `instances.json` \
         `images[].file_name` names it (not the ref's `_<ann>`-suffixed name).",
    ),
    required(
        "split",
        ColumnType::String,
        "The ref's split in its `split_by` partition (umd: train/val/test; google: train/val; \
         unc: train/val/testA/testB).",
    ),
    required(
        "category_id",
        ColumnType::Int32,
        "COCO category id (1..90) of the referred object.",
    ),
    required(
        "category_name",
        ColumnType::String,
        "COCO category name of `category_id` (`instances.json` `categories[].name`). Kept \
         because the YOLO families number classes 0..79 and DETR/torchvision by COCO id: the name \
         is the one key that compares the ground truth with any detector's `proposals[].label`.",
    ),
    required(
        "image_width",
        ColumnType::Int32,
        "Image width in pixels (`instances.json`; the stored pixel grid, no EXIF rotation).",
    ),
    required(
        "image_height",
        ColumnType::Int32,
        "Image height in pixels (`instances.json`; the stored pixel grid, no EXIF rotation).",
    ),
    required(
        "sentences",
        ColumnType::List(&SENTENCE),
        "The ref's referring expressions, in the refs pickle's order (at least one).",
    ),
    required(
        "gt_box",
        ColumnType::Struct(&GT_BOX_FIELDS),
        "The ground-truth box: the annotation's `bbox` [x, y, w, h] as xyxy pixels (x + w and \
         y + h computed in f64, stored as float32). Not clipped: it is the annotation as given.",
    ),
    required(
        "proposals",
        ColumnType::List(&PROPOSAL),
        "Every box the detector kept for the image (after its own thresholds and NMS), \
         score-descending (ties keep the detector's order). Empty when it kept none.",
    ),
    required(
        "proposal_iou",
        ColumnType::List(&PROPOSAL_IOU),
        "IoU of each proposal with `gt_box`, same order and length as `proposals`; computed \
         in f64 on the float32 corners as stored (unclipped boxes as they are), stored as \
         float32.",
    ),
    ColumnSpec {
        name: "best_index",
        ty: ColumnType::Int32,
        nullable: true,
        description: "Index into `proposals` of the highest `proposal_iou` (the first on ties); \
                      null exactly when there is no proposal.",
    },
    required(
        "best_iou",
        ColumnType::Float32,
        "`proposal_iou[best_index]`, 0 when there is no proposal.",
    ),
];

/// The element of every [`ColumnType::Vector`].
pub static VECTOR_ELEMENT: ColumnSpec = element(ColumnType::Float32, "One coordinate.");

impl ColumnType {
    /// The Arrow type of this column, its vectors of dimension `dim` (unused by contracts
    /// without vectors).
    pub fn arrow_type(&self, dim: usize) -> DataType {
        match self {
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::String => DataType::Utf8,
            ColumnType::List(element) => DataType::List(Arc::new(element.arrow_field(dim))),
            ColumnType::Struct(fields) => DataType::Struct(struct_fields(fields, dim)),
            ColumnType::Vector => DataType::FixedSizeList(
                Arc::new(VECTOR_ELEMENT.arrow_field(dim)),
                i32::try_from(dim).expect("a vector dimension fits in i32"),
            ),
        }
    }

    /// The type's name in `schemas/` (Arrow logical type names).
    pub fn name(&self) -> &'static str {
        match self {
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float32 => "float32",
            ColumnType::String => "string",
            ColumnType::List(_) => "list",
            ColumnType::Struct(_) => "struct",
            ColumnType::Vector => "fixed_size_list",
        }
    }

    /// The type written the short Arrow way, e.g. `list<struct<xmin: float32, …>>`.
    pub fn display(&self) -> String {
        match self {
            ColumnType::List(element) => format!("list<{}>", element.ty.display()),
            ColumnType::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, f.ty.display()))
                    .collect();
                format!("struct<{}>", inner.join(", "))
            }
            ColumnType::Vector => "fixed_size_list<float32, D>".to_string(),
            other => other.name().to_string(),
        }
    }
}

fn struct_fields(fields: &[ColumnSpec], dim: usize) -> Fields {
    fields
        .iter()
        .map(|f| Arc::new(f.arrow_field(dim)))
        .collect::<Vec<FieldRef>>()
        .into()
}

impl ColumnSpec {
    /// The Arrow field of this column, its vectors of dimension `dim` (no field metadata:
    /// descriptions live in `schemas/`).
    pub fn arrow_field(&self, dim: usize) -> Field {
        Field::new(self.name, self.ty.arrow_type(dim), self.nullable)
    }
}

/// The Arrow schema of `columns` (fields only), vectors of dimension `dim`.
pub fn arrow_schema_of(columns: &[ColumnSpec], dim: usize) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|c| c.arrow_field(dim))
            .collect::<Vec<_>>(),
    )
}

/// The Arrow schema of a proposal shard (fields only; the key-value metadata is the shard
/// writer's).
pub fn arrow_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| Arc::new(arrow_schema_of(&COLUMNS, 0)))
        .clone()
}

/// The Hugging Face `datasets` feature of one column, serialised in column order.
///
/// Mirrors `datasets.features.Features.to_dict` / `generate_from_dict` (datasets 5.2): a scalar is
/// `{"dtype": …, "_type": "Value"}`, a struct is a plain dict of its fields. A list is written
/// as a one-element JSON array `[feature]`: `generate_from_dict` turns it into `List(feature)`
/// in datasets ≥ 4, and datasets 2.x/3.x read it as a list too, whereas `{"_type": "List"}`
/// does not exist before datasets 4 and makes their `load_dataset` fail. A `Sequence` of a dict
/// is avoided: it means a struct of lists. A vector is `{"feature": float32, "length": D,
/// "_type": "Sequence"}`, which every datasets version reads as a fixed-length list of floats
/// (`List(Value("float32"), length=D)` from datasets 4 on).
struct HfFeature<'a>(&'a ColumnSpec, usize);

impl Serialize for HfFeature<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let dim = self.1;
        let dtype = match self.0.ty {
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float32 => "float32",
            ColumnType::String => "string",
            ColumnType::List(element) => {
                let mut seq = serializer.serialize_seq(Some(1))?;
                seq.serialize_element(&HfFeature(element, dim))?;
                return seq.end();
            }
            ColumnType::Struct(fields) => return HfFeatures(fields, dim).serialize(serializer),
            ColumnType::Vector => {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("feature", &HfFeature(&VECTOR_ELEMENT, dim))?;
                map.serialize_entry("length", &dim)?;
                map.serialize_entry("_type", "Sequence")?;
                return map.end();
            }
        };
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("dtype", dtype)?;
        map.serialize_entry("_type", "Value")?;
        map.end()
    }
}

/// The features of a set of columns, as an ordered JSON object (datasets keeps column order),
/// vectors of dimension `.1`.
pub(crate) struct HfFeatures<'a>(pub(crate) &'a [ColumnSpec], pub(crate) usize);

impl Serialize for HfFeatures<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for column in self.0 {
            map.serialize_entry(column.name, &HfFeature(column, self.1))?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct HfInfo<'a> {
    features: HfFeatures<'a>,
}

#[derive(Serialize)]
struct HfMetadata<'a> {
    info: HfInfo<'a>,
}

/// The value of the `huggingface` key-value metadata of a proposal shard:
/// `{"info": {"features": {…}}}`, columns in file order.
pub fn huggingface_metadata() -> String {
    huggingface_metadata_of(&COLUMNS, 0)
}

/// The `huggingface` key-value metadata of a shard of `columns`, vectors of dimension `dim`.
pub fn huggingface_metadata_of(columns: &[ColumnSpec], dim: usize) -> String {
    serde_json::to_string(&HfMetadata {
        info: HfInfo {
            features: HfFeatures(columns, dim),
        },
    })
    .expect("serialising static features cannot fail")
}

/// One column in a `schemas/*.schema.json`.
#[derive(Serialize)]
struct ColumnJson {
    name: &'static str,
    #[serde(rename = "type")]
    ty: &'static str,
    nullable: bool,
    description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    element: Option<Box<ColumnJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<ColumnJson>>,
    /// A vector's length: `"D"`, the dimension its shard's metadata records.
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<&'static str>,
}

impl ColumnJson {
    fn of(spec: &'static ColumnSpec) -> Self {
        let (element, fields) = match spec.ty {
            ColumnType::List(element) => (Some(Box::new(ColumnJson::of(element))), None),
            ColumnType::Vector => (Some(Box::new(ColumnJson::of(&VECTOR_ELEMENT))), None),
            ColumnType::Struct(fields) => (None, Some(fields.iter().map(ColumnJson::of).collect())),
            _ => (None, None),
        };
        ColumnJson {
            name: spec.name,
            ty: spec.ty.name(),
            nullable: spec.nullable,
            description: spec.description,
            element,
            fields,
            length: matches!(spec.ty, ColumnType::Vector).then_some("D"),
        }
    }
}

#[derive(Serialize)]
struct MetadataKeyJson {
    key: &'static str,
    description: &'static str,
}

#[derive(Serialize)]
struct ContractJson {
    name: &'static str,
    schema_version: &'static str,
    box_convention: &'static str,
    row_order: &'static str,
    file_layout: &'static str,
    #[serde(flatten)]
    tables: TablesJson,
}

#[derive(Serialize)]
struct ChangeJson {
    version: &'static str,
    changes: &'static str,
}

/// The tables every contract in `schemas/` has (the proposals' and the embeddings'): columns,
/// metadata keys, changes; and the vector dimension its Hugging Face features are shown with.
pub(crate) struct Tables {
    pub(crate) columns: &'static [ColumnSpec],
    pub(crate) metadata_keys: &'static [(&'static str, &'static str)],
    pub(crate) changes: &'static [(&'static str, &'static str)],
    pub(crate) dim: usize,
}

/// The tables in a contract's JSON, after its own fields.
#[derive(Serialize)]
pub(crate) struct TablesJson {
    columns: Vec<ColumnJson>,
    metadata_keys: Vec<MetadataKeyJson>,
    huggingface_features: HfFeatures<'static>,
    changes: Vec<ChangeJson>,
}

impl Tables {
    pub(crate) fn json(&self) -> TablesJson {
        TablesJson {
            columns: self.columns.iter().map(ColumnJson::of).collect(),
            metadata_keys: self
                .metadata_keys
                .iter()
                .map(|&(key, description)| MetadataKeyJson { key, description })
                .collect(),
            huggingface_features: HfFeatures(self.columns, self.dim),
            changes: self
                .changes
                .iter()
                .map(|&(version, changes)| ChangeJson { version, changes })
                .collect(),
        }
    }

    /// The Markdown of the tables: (column rows, metadata rows, change items), each
    /// newline-joined.
    pub(crate) fn markdown(&self) -> (String, String, String) {
        let mut rows = Vec::new();
        for column in self.columns {
            readme_rows(&mut rows, "", column);
        }
        let metadata: Vec<String> = self
            .metadata_keys
            .iter()
            .map(|(key, description)| format!("| `{key}` | {description} |"))
            .collect();
        let changes: Vec<String> = self
            .changes
            .iter()
            .map(|(version, what)| format!("- {version}: {what}"))
            .collect();
        (rows.join("\n"), metadata.join("\n"), changes.join("\n"))
    }
}

/// A contract's JSON, pretty-printed with a trailing newline.
pub(crate) fn pretty_json(contract: &impl Serialize) -> String {
    let mut text =
        serde_json::to_string_pretty(contract).expect("serialising the contract cannot fail");
    text.push('\n');
    text
}

const TABLES: Tables = Tables {
    columns: &COLUMNS,
    metadata_keys: METADATA_KEYS,
    changes: CHANGES,
    dim: 0,
};

const BOX_CONVENTION: &str = "Every box is xyxy in float32 pixels of the original image \
    (the stored pixel grid that instances.json width/height describe; EXIF orientation is not \
    applied): (xmin, ymin) is the top-left corner, (xmax, ymax) the bottom-right, x to the right, \
    y down, xmin ≤ xmax and ymin ≤ ymax. Proposals are clipped to the image (0 ≤ xmin ≤ xmax ≤ \
    image_width, 0 ≤ ymin ≤ ymax ≤ image_height) when the variant's detector has `clip_boxes` \
    true (shard metadata `refaug.detector`, manifest.json, the dataset card); with `clip_boxes` \
    false (Hugging Face DETR by default, whose post-processing does not clip) they are the \
    library's boxes as they are and may extend past the image.";

const ROW_ORDER: &str = "One row per ref (referred object) per variant. A split's shards \
    cover consecutive blocks of its images in instances.json order (shard 00000 the first block); \
    within a shard, rows are in strictly ascending ref_id order. The blocks depend only on the \
    dataset and the output settings, never on batch size, threads or how a run was split across \
    workers.";

const FILE_LAYOUT: &str = "One folder per variant (one detector): \
    <variant>/<split>-<index>-of-<count>.parquet, index and count zero-padded to 5 digits, index \
    from 00000 (the Hugging Face Hub convention). Parquet with zstd compression, column \
    statistics, row groups bounded (at most 10,000 rows and about 100 MB uncompressed), list \
    elements named `element`.";

/// The machine-readable contract (`schemas/refaug-proposals.schema.json`), pretty-printed with a
/// trailing newline.
pub fn contract_json() -> String {
    let contract = ContractJson {
        name: CONTRACT_NAME,
        schema_version: SCHEMA_VERSION,
        box_convention: BOX_CONVENTION,
        row_order: ROW_ORDER,
        file_layout: FILE_LAYOUT,
        tables: TABLES.json(),
    };
    pretty_json(&contract)
}

/// The `schemas/` README table rows of `spec` and its nested fields.
fn readme_rows(out: &mut Vec<String>, prefix: &str, spec: &ColumnSpec) {
    let path = format!("{prefix}{}", spec.name);
    let nullable = if spec.nullable { "yes" } else { "no" };
    out.push(format!(
        "| `{path}` | `{}` | {nullable} | {} |",
        spec.ty.display(),
        spec.description
    ));
    match spec.ty {
        ColumnType::List(element) => {
            if let ColumnType::Struct(fields) = element.ty {
                for field in fields {
                    readme_rows(out, &format!("{path}[]."), field);
                }
            }
        }
        ColumnType::Struct(fields) => {
            for field in fields {
                readme_rows(out, &format!("{path}."), field);
            }
        }
        _ => {}
    }
}

/// The human-readable contract (`schemas/README.md`).
pub fn readme_markdown() -> String {
    let (rows, metadata, changes) = TABLES.markdown();
    format!(
        "<!-- Generated by refaug::write::schema::readme_markdown(); do not edit. \
         Regenerate with `REFAUG_BLESS=1 cargo test --test write`. -->\n\
         # The refaug proposals contract, version {SCHEMA_VERSION}\n\
         \n\
         Machine-readable form: [`{CONTRACT_NAME}.schema.json`]({CONTRACT_NAME}.schema.json).\n\
         \n\
         The CLIP embeddings `refaug embed` adds beside a variant have their own contract: \
         [`{}`]({}).\n\
         \n\
         ## Rows\n\
         \n\
         {ROW_ORDER}\n\
         \n\
         ## Boxes\n\
         \n\
         {BOX_CONVENTION}\n\
         \n\
         ## Files\n\
         \n\
         {FILE_LAYOUT} A shard is written to a hidden temporary name in the same folder and \
         renamed into place once complete and synced, so a visible shard is always whole.\n\
         \n\
         ## Columns\n\
         \n\
         Nested fields are written `column.field` (struct) and `column[].field` (list of \
         structs). Every column is non-nullable except `best_index`.\n\
         \n\
         | column | type | nullable | meaning |\n\
         |---|---|---|---|\n\
         {}\n\
         \n\
         ## Invariants (checked by `refaug validate`)\n\
         \n\
         - proposals are finite with xmin ≤ xmax and ymin ≤ ymax; when the detector's \
         `clip_boxes` is true they lie inside the image: 0 ≤ xmin ≤ xmax ≤ image_width, \
         0 ≤ ymin ≤ ymax ≤ image_height; scores are in [0, 1] and non-increasing;\n\
         - `proposal_iou` has the length of `proposals`;\n\
         - `proposal_iou[i]` is the f64 IoU of `proposals[i]` (as stored) with `gt_box`, rounded \
         to float32;\n\
         - `best_index` is the first index of the largest `proposal_iou`, null iff there is no \
         proposal; `best_iou` = `proposal_iou[best_index]`, or 0;\n\
         - `ref_id` is strictly increasing within a shard; every ref has at least one sentence;\n\
         - the metadata `refaug.detector` states `clip_boxes` (true or false).\n\
         \n\
         ## Key-value metadata\n\
         \n\
         | key | value |\n\
         |---|---|\n\
         {}\n\
         \n\
         No timestamps: the same rows and metadata give a byte-identical file.\n\
         \n\
         ## Reading\n\
         \n\
         - pyarrow / Polars / DuckDB: read the files directly; `proposals` is \
         `list<struct<…>>` with the Parquet spec's `element` naming.\n\
         - Hugging Face `datasets`: `load_dataset(\"parquet\", data_files=…)` loads typed \
         features from the `huggingface` metadata (lists are written as `[feature]`, which \
         datasets 2.x–5.x all read as a list of structs).\n\
         \n\
         ## Changes\n\
         \n\
         {}\n",
        crate::embed::schema::README_FILE,
        crate::embed::schema::README_FILE,
        rows,
        metadata,
        changes,
    )
}

/// The files of `schemas/`: (file name, content): the proposals contract and the embeddings
/// contract ([`crate::embed::schema`]).
pub fn schema_files() -> [(String, String); 4] {
    use crate::embed::schema as emb;
    [
        (format!("{CONTRACT_NAME}.schema.json"), contract_json()),
        ("README.md".to_string(), readme_markdown()),
        (
            format!("{}.schema.json", emb::CONTRACT_NAME),
            emb::contract_json(),
        ),
        (emb::README_FILE.to_string(), emb::readme_markdown()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_name_their_element_as_the_parquet_spec_does() {
        fn check(field: &Field) {
            match field.data_type() {
                DataType::List(element) => {
                    assert_eq!(element.name(), LIST_ELEMENT_NAME, "{}", field.name());
                    assert!(!element.is_nullable(), "{}", field.name());
                    check(element);
                }
                DataType::Struct(fields) => fields.iter().for_each(|f| check(f)),
                _ => {}
            }
        }
        for field in arrow_schema().fields() {
            check(field);
        }
    }

    #[test]
    fn only_best_index_is_nullable() {
        let nullable: Vec<&str> = COLUMNS
            .iter()
            .filter(|c| c.nullable)
            .map(|c| c.name)
            .collect();
        assert_eq!(nullable, ["best_index"]);
    }
}
