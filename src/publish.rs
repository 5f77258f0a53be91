//! `refaug publish <out> <dir>`: a folder that can be pushed as is to the Hugging Face Hub.
//!
//! ```text
//! <dir>/data/<variant>/<split>-NNNNN-of-NNNNN.parquet   the run's shards (hard links, else copies)
//! <dir>/README.md                                        dataset card (YAML front matter + body)
//! <dir>/LICENSE.md                                       what each part's license is, by source
//! <dir>/recall_vs_iou.png, proposals_per_ref.png         the report's charts
//! <dir>/croissant.json                                   MLCommons Croissant 1.0 metadata
//! <dir>/SHA256SUMS                                       sha256sum format, every other file
//! ```
//!
//! The card's `dataset_info` features are generated from [`crate::write::schema::COLUMNS`], in
//! the YAML form `datasets` writes (`Features._to_yaml_list`, datasets 5.2); split sizes come
//! from the Parquet footers (`num_examples`: rows; `num_bytes`: the row groups' uncompressed
//! size, `total_byte_size`), `download_size` is the files' size.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{Value, json};

use crate::gallery::{self, GalleryError, GalleryOptions, GallerySummary};
use crate::report::{self, OutputVariant, Report, ReportError, ReportOptions, find_variants};
use crate::write::schema::{self, ColumnSpec, ColumnType};

/// Options of `refaug publish`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PublishOptions {
    /// Thresholds of the report shown in the card.
    pub report: ReportOptions,
    /// The Hub repository the folder is meant for (`namespace/name`), used in the card's
    /// loading examples and the Croissant `url`; a placeholder when absent.
    pub repo_id: Option<String>,
    /// Add a gallery (`gallery/`, see [`crate::gallery`]) linked from the card; its training
    /// filter is `report`'s.
    pub gallery: Option<GalleryOptions>,
}

/// Errors of publishing; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("{path}: I/O error")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: Parquet error")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: the destination exists and is not empty")]
    NotEmpty { path: PathBuf },
    #[error(
        "{dest} and the output {out} overlap: the published folder must lie outside the output \
         (and not contain it), or each would pick up the other's files"
    )]
    Overlaps { out: PathBuf, dest: PathBuf },
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    #[error(
        "{dir}: the embeddings do not match the variant's shards (run `refaug embed`, or move \
         the folder away to publish without them): {problems}"
    )]
    Embeddings { dir: PathBuf, problems: String },
}

/// `path` made absolute with its links resolved as far as it exists (the destination usually
/// does not exist yet: its nearest existing ancestor is resolved and the rest appended).
fn absolute(path: &Path) -> Result<PathBuf, PublishError> {
    let path = std::path::absolute(path).map_err(io_error(path))?;
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = fs_err::canonicalize(existing).map_err(io_error(existing))?;
    resolved.extend(rest.iter().rev());
    Ok(resolved)
}

/// What one published split is.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedSplit {
    pub name: String,
    /// Files relative to the published folder, in shard order.
    pub files: Vec<String>,
    pub num_examples: u64,
    /// Uncompressed size of the row groups (Parquet `total_byte_size`).
    pub num_bytes: u64,
    /// Size of the files.
    pub download_size: u64,
}

/// What one published variant (Hub config) is.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedVariant {
    pub variant: OutputVariant,
    pub splits: Vec<PublishedSplit>,
    /// The variant's CLIP embeddings, when `refaug embed` made them: a config of their own.
    pub embeddings: Option<PublishedEmbeddings>,
}

/// A variant's embeddings as a config (`<variant>-embeddings`, files in
/// `data/<variant>-embeddings/`), shards one to one with the variant's.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEmbeddings {
    pub config: String,
    /// The shards' `refaug.encoder` metadata (name, model sha256s, dim, …).
    pub encoder: Value,
    pub dim: usize,
    pub splits: Vec<PublishedSplit>,
}

/// The config name of a variant's embeddings.
pub fn embeddings_config(variant: &str) -> String {
    format!("{variant}-embeddings")
}

/// What `publish` made.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishSummary {
    pub dir: PathBuf,
    pub variants: Vec<PublishedVariant>,
    /// Shards hard-linked / copied.
    pub linked: usize,
    pub copied: usize,
    /// Every file written, relative to `dir`, sorted (SHA256SUMS included).
    pub files: Vec<String>,
}

/// File names of the published folder.
pub const CARD_FILE: &str = "README.md";
pub const LICENSE_FILE: &str = "LICENSE.md";
pub const CROISSANT_FILE: &str = "croissant.json";
pub const SUMS_FILE: &str = "SHA256SUMS";
/// Folder of the shards inside the published folder.
pub const DATA_DIR: &str = "data";

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Hard-link `from` to `to`, or copy it where links are refused (another file system, …).
/// Returns whether it linked.
fn link_or_copy(from: &Path, to: &Path) -> Result<bool, PublishError> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(true);
    }
    fs_err::copy(from, to).map_err(io_error(to))?;
    Ok(false)
}

/// Rows and uncompressed bytes of a Parquet file, from its footer.
fn parquet_sizes(path: &Path) -> Result<(u64, u64), PublishError> {
    let file = fs_err::File::open(path).map_err(io_error(path))?;
    let reader =
        SerializedFileReader::new(file.into_file()).map_err(|source| PublishError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
    let metadata = reader.metadata();
    let rows = metadata.file_metadata().num_rows();
    let bytes: i64 = metadata
        .row_groups()
        .iter()
        .map(|rg| rg.total_byte_size())
        .sum();
    Ok((
        u64::try_from(rows).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    ))
}

/// Make the publishable folder `dest` from the output folder `out`. `dest` must not exist or
/// be empty.
pub fn publish(
    out: &Path,
    dest: &Path,
    options: &PublishOptions,
) -> Result<PublishSummary, PublishError> {
    let variants = find_variants(out)?;
    let (out_abs, dest_abs) = (absolute(out)?, absolute(dest)?);
    if dest_abs.starts_with(&out_abs) || out_abs.starts_with(&dest_abs) {
        return Err(PublishError::Overlaps {
            out: out.to_path_buf(),
            dest: dest.to_path_buf(),
        });
    }
    for v in &variants {
        v.verify_shards()?;
    }
    let report = report::compute(out, &options.report)?;
    if dest.exists() {
        let mut entries = fs_err::read_dir(dest).map_err(io_error(dest))?;
        if entries.next().is_some() {
            return Err(PublishError::NotEmpty {
                path: dest.to_path_buf(),
            });
        }
    }
    fs_err::create_dir_all(dest).map_err(io_error(dest))?;

    let mut copies = Copies::default();
    let mut published = Vec::new();
    for variant in variants {
        let (splits, embeddings) = {
            let shards = |split: &str| variant.shard_paths(split);
            let splits = copies.config(dest, &variant.name, &variant.splits(), shards)?;
            let embeddings = match embeddings_of(&variant)? {
                Some((encoder, dim)) => {
                    let config = embeddings_config(&variant.name);
                    let dir = variant.dir.join(crate::embed::run::EMBEDDINGS_DIR);
                    let shards = |split: &str| -> Result<Vec<PathBuf>, PublishError> {
                        Ok(variant
                            .shard_paths(split)?
                            .iter()
                            .map(|p| dir.join(p.file_name().expect("a shard file")))
                            .collect())
                    };
                    let splits = copies.config(dest, &config, &variant.splits(), shards)?;
                    Some(PublishedEmbeddings {
                        config,
                        encoder,
                        dim,
                        splits,
                    })
                }
                None => None,
            };
            (splits, embeddings)
        };
        published.push(PublishedVariant {
            variant,
            splits,
            embeddings,
        });
    }
    let Copies { linked, copied } = copies;

    report::plot::recall_curve_png(&report, &dest.join(RECALL_PNG))?;
    report::plot::histogram_png(&report, &dest.join(HISTOGRAM_PNG))?;
    let write = |name: &str, text: &str| -> Result<(), PublishError> {
        let path = dest.join(name);
        fs_err::write(&path, text).map_err(io_error(&path))
    };
    let gallery = match &options.gallery {
        Some(g) => Some(gallery::make(
            out,
            &dest.join(gallery::GALLERY_DIR),
            &GalleryOptions {
                report: options.report.clone(),
                ..g.clone()
            },
        )?),
        None => None,
    };
    write(
        CARD_FILE,
        &dataset_card(&published, &report, options, gallery.as_ref()),
    )?;
    write(LICENSE_FILE, &license_text(&published))?;
    let mut croissant_text = serde_json::to_string_pretty(&croissant(&published, options))
        .expect("JSON values serialise");
    croissant_text.push('\n');
    write(CROISSANT_FILE, &croissant_text)?;

    let mut files = list_files(dest)?;
    files.retain(|f| f != SUMS_FILE);
    files.sort();
    let mut sums = String::new();
    for file in &files {
        let path = dest.join(file);
        let hash = crate::sha256_file(&path).map_err(io_error(&path))?;
        // Two spaces: sha256sum's text mode, which `sha256sum -c` reads.
        let _ = writeln!(sums, "{hash}  {file}");
    }
    write(SUMS_FILE, &sums)?;
    files.push(SUMS_FILE.to_string());
    files.sort();
    Ok(PublishSummary {
        dir: dest.to_path_buf(),
        variants: published,
        linked,
        copied,
        files,
    })
}

/// Shards hard-linked / copied so far.
#[derive(Default)]
struct Copies {
    linked: usize,
    copied: usize,
}

impl Copies {
    /// Links (or copies) the shards of one config into `data/<config>/`, split by split; `shards`
    /// gives a split's files in order.
    fn config<E>(
        &mut self,
        dest: &Path,
        config: &str,
        splits: &[String],
        shards: impl Fn(&str) -> Result<Vec<PathBuf>, E>,
    ) -> Result<Vec<PublishedSplit>, PublishError>
    where
        PublishError: From<E>,
    {
        let data_dir = dest.join(DATA_DIR).join(config);
        fs_err::create_dir_all(&data_dir).map_err(io_error(&data_dir))?;
        let mut out = Vec::new();
        for split in splits {
            let mut s = PublishedSplit {
                name: split.clone(),
                files: Vec::new(),
                num_examples: 0,
                num_bytes: 0,
                download_size: 0,
            };
            for from in shards(split)? {
                let name = from
                    .file_name()
                    .expect("shard paths end in a file name")
                    .to_string_lossy()
                    .into_owned();
                let to = data_dir.join(&name);
                if link_or_copy(&from, &to)? {
                    self.linked += 1;
                } else {
                    self.copied += 1;
                }
                let (rows, bytes) = parquet_sizes(&to)?;
                s.num_examples += rows;
                s.num_bytes += bytes;
                s.download_size += fs_err::metadata(&to).map_err(io_error(&to))?.len();
                s.files.push(format!("{DATA_DIR}/{config}/{name}"));
            }
            out.push(s);
        }
        Ok(out)
    }
}

/// The encoder metadata and dimension of a variant's embeddings when it has an `embeddings/`
/// folder; an error when that folder does not match the variant's shards (`refaug validate`'s
/// check).
fn embeddings_of(variant: &OutputVariant) -> Result<Option<(Value, usize)>, PublishError> {
    let dir = variant.dir.join(crate::embed::run::EMBEDDINGS_DIR);
    if !dir.is_dir() {
        return Ok(None);
    }
    let problems = crate::embed::verify::verify_embeddings(&variant.dir).problems;
    if !problems.is_empty() {
        return Err(PublishError::Embeddings {
            dir,
            problems: problems.join("; "),
        });
    }
    let first = variant
        .splits()
        .iter()
        .find_map(|s| variant.shard_paths(s).ok()?.into_iter().next());
    let Some(first) = first else {
        return Ok(None);
    };
    let path = dir.join(first.file_name().expect("a shard file"));
    let kv = crate::write::shard::read_key_value_metadata(&path).map_err(|e| {
        PublishError::Embeddings {
            dir: dir.clone(),
            problems: crate::error_chain(&e),
        }
    })?;
    let encoder: Value = kv
        .get(crate::embed::schema::META_ENCODER)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let dim = encoder["dim"].as_u64().unwrap_or(0) as usize;
    Ok(Some((encoder, dim)))
}

/// The report charts copied into the published folder.
pub const RECALL_PNG: &str = "recall_vs_iou.png";
pub const HISTOGRAM_PNG: &str = "proposals_per_ref.png";

/// Every file under `dir`, as `/`-separated paths relative to it.
fn list_files(dir: &Path) -> Result<Vec<String>, PublishError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        for entry in fs_err::read_dir(&path).map_err(io_error(&path))? {
            let entry = entry.map_err(io_error(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.path().is_dir() {
                stack.push((entry.path(), rel));
            } else {
                out.push(rel);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// YAML: a small block-style emitter, enough for the card's front matter. Strings are written as
// JSON strings, which are valid YAML double-quoted scalars.

/// A YAML value whose maps keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Str(String),
    Int(u64),
    Bool(bool),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

fn s(value: impl Into<String>) -> Yaml {
    Yaml::Str(value.into())
}

fn map(entries: Vec<(&str, Yaml)>) -> Yaml {
    Yaml::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

impl Yaml {
    fn scalar(&self) -> Option<String> {
        match self {
            Yaml::Str(v) => Some(serde_json::to_string(v).expect("strings serialise")),
            Yaml::Int(v) => Some(v.to_string()),
            Yaml::Bool(v) => Some(v.to_string()),
            Yaml::Seq(v) if v.is_empty() => Some("[]".to_string()),
            Yaml::Map(v) if v.is_empty() => Some("{}".to_string()),
            _ => None,
        }
    }

    /// Block-style YAML of a mapping or sequence at `indent` spaces.
    pub fn render(&self, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match self {
            Yaml::Map(entries) => {
                for (key, value) in entries {
                    match value.scalar() {
                        Some(text) => {
                            let _ = writeln!(out, "{pad}{key}: {text}");
                        }
                        None => {
                            let _ = writeln!(out, "{pad}{key}:");
                            // Sequences under a key sit at the key's indentation (as
                            // `datasets` and the Hub write them); maps go two deeper.
                            let child = if matches!(value, Yaml::Seq(_)) {
                                indent
                            } else {
                                indent + 2
                            };
                            value.render(child, out);
                        }
                    }
                }
            }
            Yaml::Seq(items) => {
                for item in items {
                    match item.scalar() {
                        Some(text) => {
                            let _ = writeln!(out, "{pad}- {text}");
                        }
                        None => {
                            // The item's first line goes after the dash; the rest align with it.
                            let mut inner = String::new();
                            item.render(indent + 2, &mut inner);
                            let inner = inner
                                .strip_prefix(&" ".repeat(indent + 2))
                                .unwrap_or(inner.as_str());
                            let _ = write!(out, "{pad}- {inner}");
                        }
                    }
                }
            }
            scalar => {
                let _ = writeln!(out, "{pad}{}", scalar.scalar().unwrap_or_default());
            }
        }
    }
}

fn hf_dtype(ty: &ColumnType) -> Option<&'static str> {
    match ty {
        ColumnType::Int32 => Some("int32"),
        ColumnType::Int64 => Some("int64"),
        ColumnType::Float32 => Some("float32"),
        ColumnType::String => Some("string"),
        ColumnType::List(_) | ColumnType::Struct(_) | ColumnType::Vector => None,
    }
}

/// The YAML body of one feature (without its name), as `Features._to_yaml_list` writes it:
/// `dtype: int64`; `struct: [{name, …}]`; `list: float32` for a list of scalars; `list: [{name,
/// …}]` for a list of structs; `list: float32, length: D` for a vector of dimension `dim`.
fn feature_yaml(ty: &ColumnType, dim: usize) -> Vec<(String, Yaml)> {
    let named =
        |fields: &[ColumnSpec]| Yaml::Seq(fields.iter().map(|f| named_feature(f, dim)).collect());
    match ty {
        ColumnType::List(element) => {
            let inner = match &element.ty {
                ColumnType::Struct(fields) => named(fields),
                other => match hf_dtype(other) {
                    Some(d) => s(d),
                    None => Yaml::Map(feature_yaml(other, dim)),
                },
            };
            vec![("list".to_string(), inner)]
        }
        ColumnType::Struct(fields) => vec![("struct".to_string(), named(fields))],
        ColumnType::Vector => vec![
            ("list".to_string(), s("float32")),
            ("length".to_string(), Yaml::Int(dim as u64)),
        ],
        scalar => vec![(
            "dtype".to_string(),
            s(hf_dtype(scalar).expect("scalar types have a dtype")),
        )],
    }
}

fn named_feature(spec: &ColumnSpec, dim: usize) -> Yaml {
    let mut entries = vec![("name".to_string(), s(spec.name))];
    entries.extend(feature_yaml(&spec.ty, dim));
    Yaml::Map(entries)
}

/// The card's `dataset_info.features` of a config: every column of its contract (`columns`), in
/// file order, vectors of dimension `dim`.
pub fn features_yaml(columns: &[ColumnSpec], dim: usize) -> Yaml {
    Yaml::Seq(columns.iter().map(|c| named_feature(c, dim)).collect())
}

fn size_category(rows: u64) -> &'static str {
    match rows {
        0..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        1_000_000..10_000_000 => "1M<n<10M",
        _ => "10M<n<100M",
    }
}

/// One Hub config of the published folder: a variant's proposals or its embeddings.
struct Config<'a> {
    name: &'a str,
    splits: &'a [PublishedSplit],
    features: Yaml,
}

/// Every config, variants first (in order), then their embeddings.
fn configs(variants: &[PublishedVariant]) -> Vec<Config<'_>> {
    let proposals = variants.iter().map(|v| Config {
        name: &v.variant.name,
        splits: &v.splits,
        features: features_yaml(&schema::COLUMNS, 0),
    });
    let embeddings = variants.iter().filter_map(|v| {
        let e = v.embeddings.as_ref()?;
        Some(Config {
            name: &e.config,
            splits: &e.splits,
            features: features_yaml(&crate::embed::schema::COLUMNS, e.dim),
        })
    });
    proposals.chain(embeddings).collect()
}

/// The card's YAML front matter (without the `---` lines).
pub fn front_matter(variants: &[PublishedVariant]) -> String {
    let all = configs(variants);
    let configs: Vec<Yaml> = all
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut entries = vec![("config_name", s(c.name))];
            if i == 0 {
                entries.push(("default", Yaml::Bool(true)));
            }
            entries.push((
                "data_files",
                Yaml::Seq(
                    c.splits
                        .iter()
                        .map(|sp| {
                            map(vec![
                                ("split", s(&sp.name)),
                                (
                                    "path",
                                    s(format!("{DATA_DIR}/{}/{}-*.parquet", c.name, sp.name)),
                                ),
                            ])
                        })
                        .collect(),
                ),
            ));
            map(entries)
        })
        .collect();
    let infos: Vec<Yaml> = all
        .into_iter()
        .map(|c| {
            map(vec![
                ("config_name", s(c.name)),
                ("features", c.features),
                (
                    "splits",
                    Yaml::Seq(
                        c.splits
                            .iter()
                            .map(|sp| {
                                map(vec![
                                    ("name", s(&sp.name)),
                                    ("num_bytes", Yaml::Int(sp.num_bytes)),
                                    ("num_examples", Yaml::Int(sp.num_examples)),
                                ])
                            })
                            .collect(),
                    ),
                ),
                (
                    "download_size",
                    Yaml::Int(c.splits.iter().map(|sp| sp.download_size).sum()),
                ),
                (
                    "dataset_size",
                    Yaml::Int(c.splits.iter().map(|sp| sp.num_bytes).sum()),
                ),
            ])
        })
        .collect();
    let most_rows = variants
        .iter()
        .map(|v| v.splits.iter().map(|sp| sp.num_examples).sum::<u64>())
        .max()
        .unwrap_or(0);
    let front = map(vec![
        ("pretty_name", s(pretty_name(variants))),
        ("language", Yaml::Seq(vec![s("en")])),
        ("license", s("other")),
        ("license_name", s("refcocog-coco-derived")),
        ("license_link", s(LICENSE_FILE)),
        (
            "task_categories",
            Yaml::Seq(vec![s("object-detection"), s("zero-shot-object-detection")]),
        ),
        (
            "tags",
            Yaml::Seq(
                [
                    "referring-expression-comprehension",
                    "visual-grounding",
                    "region-proposals",
                    "refcoco",
                    "coco",
                    "refaug",
                ]
                .into_iter()
                .map(s)
                .collect(),
            ),
        ),
        (
            "size_categories",
            Yaml::Seq(vec![s(size_category(most_rows))]),
        ),
        ("configs", Yaml::Seq(configs)),
        ("dataset_info", Yaml::Seq(infos)),
    ]);
    let mut out = String::new();
    front.render(0, &mut out);
    out
}

fn dataset_label(kind: &str) -> &str {
    match kind {
        "refcocog" => "RefCOCOg",
        "refcoco" => "RefCOCO",
        "refcoco+" => "RefCOCO+",
        other => other,
    }
}

fn pretty_name(variants: &[PublishedVariant]) -> String {
    match variants.first() {
        Some(v) => format!(
            "{} ({} split) with detector proposals",
            dataset_label(&v.variant.manifest.dataset_kind),
            v.variant.manifest.split_by
        ),
        None => "refaug proposals".to_string(),
    }
}

fn detector_str<'a>(variant: &'a OutputVariant, key: &str) -> Option<&'a str> {
    variant.manifest.detector.get(key).and_then(Value::as_str)
}

/// The model's sha256: the spec's `model_sha256` when it is a string, else the first `.onnx`
/// source file's.
fn model_sha256(variant: &OutputVariant) -> String {
    if let Some(hash) = detector_str(variant, "model_sha256") {
        return hash.to_string();
    }
    if let Some(Value::Object(o)) = variant.manifest.detector.get("model_sha256")
        && let Some(hash) = o.values().find_map(Value::as_str)
    {
        return hash.to_string();
    }
    "unknown".to_string()
}

fn family(variant: &OutputVariant) -> String {
    detector_str(variant, "family")
        .unwrap_or("unknown")
        .to_string()
}

const BIB_REFCOCOG: &str = "@inproceedings{mao2016generation,
  title     = {Generation and Comprehension of Unambiguous Object Descriptions},
  author    = {Mao, Junhua and Huang, Jonathan and Toshev, Alexander and Camburu, Oana and Yuille, Alan L. and Murphy, Kevin},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {11--20},
  year      = {2016}
}";
const BIB_UMD: &str = "@inproceedings{nagaraja2016modeling,
  title     = {Modeling Context Between Objects for Referring Expression Understanding},
  author    = {Nagaraja, Varun K. and Morariu, Vlad I. and Davis, Larry S.},
  booktitle = {European Conference on Computer Vision (ECCV)},
  pages     = {792--807},
  year      = {2016}
}";
const BIB_REFCOCO: &str = "@inproceedings{yu2016modeling,
  title     = {Modeling Context in Referring Expressions},
  author    = {Yu, Licheng and Poirson, Patrick and Yang, Shan and Berg, Alexander C. and Berg, Tamara L.},
  booktitle = {European Conference on Computer Vision (ECCV)},
  pages     = {69--85},
  year      = {2016}
}";
const BIB_COCO: &str = "@inproceedings{lin2014microsoft,
  title     = {Microsoft {COCO}: Common Objects in Context},
  author    = {Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James and Perona, Pietro and Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  booktitle = {European Conference on Computer Vision (ECCV)},
  pages     = {740--755},
  year      = {2014}
}";
const BIB_YOLOV5: &str = "@software{jocher2020yolov5,
  title   = {Ultralytics {YOLOv5}},
  author  = {Jocher, Glenn},
  year    = {2020},
  doi     = {10.5281/zenodo.3908559},
  url     = {https://github.com/ultralytics/yolov5},
  license = {AGPL-3.0}
}";
const BIB_YOLOV8: &str = "@software{jocher2023yolov8,
  title   = {Ultralytics {YOLOv8}},
  author  = {Jocher, Glenn and Chaurasia, Ayush and Qiu, Jing},
  version = {8.0.0},
  year    = {2023},
  url     = {https://github.com/ultralytics/ultralytics},
  license = {AGPL-3.0}
}";
const BIB_DETR: &str = "@inproceedings{carion2020end,
  title     = {End-to-End Object Detection with Transformers},
  author    = {Carion, Nicolas and Massa, Francisco and Synnaeve, Gabriel and Usunier, Nicolas and Kirillov, Alexander and Zagoruyko, Sergey},
  booktitle = {European Conference on Computer Vision (ECCV)},
  pages     = {213--229},
  year      = {2020}
}";
const BIB_FASTER_RCNN: &str = "@inproceedings{ren2015faster,
  title     = {Faster {R-CNN}: Towards Real-Time Object Detection with Region Proposal Networks},
  author    = {Ren, Shaoqing and He, Kaiming and Girshick, Ross and Sun, Jian},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  volume    = {28},
  year      = {2015}
}";

/// The citation of a detector family's method or software.
fn family_citation(family: &str) -> Option<(&'static str, &'static str)> {
    match family {
        "yolov5" => Some(("YOLOv5 (Jocher 2020, software)", BIB_YOLOV5)),
        "ultralytics" => Some((
            "YOLOv8 / Ultralytics (Jocher et al. 2023, software)",
            BIB_YOLOV8,
        )),
        "detr" => Some(("DETR (Carion et al. 2020)", BIB_DETR)),
        "torchvision" => Some((
            "Faster R-CNN (Ren et al. 2015; cite the torchvision model you used if it is another)",
            BIB_FASTER_RCNN,
        )),
        _ => None,
    }
}

/// The dataset citations of the manifest's dataset kind and split.
fn dataset_citations(variant: &OutputVariant) -> Vec<(&'static str, &'static str)> {
    let m = &variant.manifest;
    let mut out = Vec::new();
    match m.dataset_kind.as_str() {
        "refcocog" => {
            out.push(("RefCOCOg (Mao et al. 2016)", BIB_REFCOCOG));
            if m.split_by == "umd" {
                out.push(("the umd split of RefCOCOg (Nagaraja et al. 2016)", BIB_UMD));
            }
        }
        "refcoco" | "refcoco+" => out.push(("RefCOCO / RefCOCO+ (Yu et al. 2016)", BIB_REFCOCO)),
        _ => {}
    }
    out.push(("COCO (Lin et al. 2014)", BIB_COCO));
    out
}

/// The card's section on the embeddings configs: which encoder made them, from which filter.
fn embeddings_section(md: &mut String, variants: &[PublishedVariant]) {
    let with: Vec<(&PublishedVariant, &PublishedEmbeddings)> = variants
        .iter()
        .filter_map(|v| Some((v, v.embeddings.as_ref()?)))
        .collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## CLIP embeddings\n\n\
         Frozen CLIP embeddings of every kept proposal's crop, each ref's ground-truth crop, the \
         whole image and every sentence, one row per ref aligned with the variant's rows \
         (`refaug embed`; the refaug embeddings contract, version {}). Vectors are \
         `fixed_size_list<float32, D>`.\n\n\
         | config | of variant | encoder | D | trained on | image model sha256 | text model sha256 |\n\
         |---|---|---|---|---|---|---|",
        crate::embed::schema::SCHEMA_VERSION
    );
    for (v, e) in with {
        let field = |k: &str| e.encoder[k].as_str().unwrap_or("not stated").to_string();
        let _ = writeln!(
            md,
            "| `{}` | `{}` | {} | {} | {} | `{}` | `{}` |",
            e.config,
            v.variant.name,
            field("name"),
            e.dim,
            field("trained_on"),
            field("image_model_sha256"),
            field("text_model_sha256"),
        );
    }
    md.push('\n');
}

fn repo_id(options: &PublishOptions) -> String {
    options
        .repo_id
        .clone()
        .unwrap_or_else(|| "<namespace>/<dataset>".to_string())
}

/// The dataset card: front matter and body.
pub fn dataset_card(
    variants: &[PublishedVariant],
    report: &Report,
    options: &PublishOptions,
    gallery: Option<&GallerySummary>,
) -> String {
    let mut md = String::new();
    md.push_str("---\n");
    md.push_str(&front_matter(variants));
    md.push_str("---\n\n");
    let title = pretty_name(variants);
    let _ = writeln!(md, "# {title}\n");
    let first = variants.first();
    let (kind, split_by) = first.map_or(("?", "?"), |v| {
        (
            dataset_label(&v.variant.manifest.dataset_kind),
            v.variant.manifest.split_by.as_str(),
        )
    });
    let _ = writeln!(
        md,
        "Every referred object (ref) of {kind} (`{split_by}` split) with the boxes that an object \
         detector proposes for its image, the IoU of each box with the ground truth, and the \
         best match. One configuration per detector. Made with \
         [refaug](https://crates.io/crates/refaug): each image was decoded once and run through \
         every detector on ONNX Runtime.\n\n\
         The images are not included: `file_name` names the COCO train2014 image \
         (`instances.json` `images[].file_name`). Boxes are xyxy float32 pixels of the original \
         image; the columns are documented in the refaug proposals contract, version {}.\n",
        schema::SCHEMA_VERSION
    );

    md.push_str("## Configurations\n\n");
    md.push_str(
        "| config | detector family | trained on | score threshold | boxes | refs | model sha256 |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|\n");
    for v in variants {
        let d = &v.variant.manifest.detector;
        let threshold = d
            .get("score_threshold")
            .map_or_else(|| "?".to_string(), Value::to_string);
        // Contract 2.0: `clip_boxes` false = the library's boxes as they are (DETR's default).
        let boxes = match d.get("clip_boxes").and_then(Value::as_bool) {
            Some(true) => "clipped to the image",
            Some(false) => "may extend past the image (not clipped, as the library returns them)",
            None => "not stated",
        };
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | `{}` |",
            v.variant.name,
            family(&v.variant),
            detector_str(&v.variant, "trained_on").unwrap_or("not stated"),
            threshold,
            boxes,
            v.splits.iter().map(|s| s.num_examples).sum::<u64>(),
            model_sha256(&v.variant)
        );
    }
    md.push('\n');

    for v in variants {
        let d = &v.variant.manifest.detector;
        if d.get("sees_eval_images").and_then(Value::as_bool) == Some(true) {
            let _ = writeln!(
                md,
                "> **Warning — `{}`:** this detector was trained on {}, which contains the \
                 images of every split here (RefCOCO* images are COCO train2014 images, and COCO \
                 train2017 ⊃ train2014). Its boxes on val/test images are better than on unseen \
                 images; do not read its numbers as a held-out evaluation.\n",
                v.variant.name,
                detector_str(&v.variant, "trained_on").unwrap_or("data")
            );
        }
    }

    embeddings_section(&mut md, variants);

    md.push_str("## How the variants were made\n\n");
    for v in variants {
        let m = &v.variant.manifest;
        let _ = writeln!(
            md,
            "### `{}`\n\n\
             - detector: {} (family `{}`), model sha256 `{}`\n\
             - refaug {} (git {}), contract {}\n\
             - ONNX Runtime {} ({})\n\
             - sources:",
            v.variant.name,
            v.variant.detector_name(),
            family(&v.variant),
            model_sha256(&v.variant),
            m.refaug_version,
            m.git_revision,
            m.schema_version,
            m.runtime.onnxruntime_versions.join(", "),
            m.runtime.execution_providers.join(", ")
        );
        for (file, sha256) in &m.sources {
            let _ = writeln!(md, "  - `{file}` (sha256 `{sha256}`)");
        }
        let spec = serde_json::to_string_pretty(&m.detector).expect("JSON values serialise");
        let _ = writeln!(
            md,
            "\n<details><summary>Detector spec and thresholds (manifest.json)</summary>\n\n```json\n{spec}\n```\n\n</details>\n"
        );
    }

    md.push_str("## Proposal quality\n\n");
    let o = &report.options;
    let _ = writeln!(
        md,
        "Best IoU: the highest IoU of any proposal with the ground truth, 0 when there is none \
         (the research's oracle measure); #boxes: proposals per ref; R@t: share of refs whose \
         best IoU is ≥ t; usable for training: the research's filter (proposals with \
         confidence > {}, width and height > {} px; at least {} left; best remaining IoU > {}).\n",
        o.train_conf, o.min_size, o.min_proposals, o.min_best_iou
    );
    md.push_str(&report.compare_table().markdown());
    md.push('\n');
    md.push_str(&report.table().markdown());
    let _ = writeln!(
        md,
        "\n![Recall vs IoU threshold]({RECALL_PNG})\n\n![Proposals per ref]({HISTOGRAM_PNG})\n"
    );
    if let Some(g) = gallery {
        let _ = writeln!(
            md,
            "## Gallery\n\n\
             [`{dir}/{index}`]({dir}/{index}) shows {refs} of the {total} refs (chosen with \
             `refaug gallery --sort {sort}`) with every configuration's boxes over the image, the \
             sentences and the numbers above. It is a static page: open it from a local copy of \
             this folder (the Hub lists it as a file, it does not serve it). `{dir}/{thumbs}/` \
             holds downsized copies of the {images} images it shows; unlike the annotations they \
             stay under their own Flickr licenses (COCO `instances.json` `licenses`).\n",
            dir = gallery::GALLERY_DIR,
            index = gallery::INDEX_FILE,
            thumbs = gallery::THUMBNAIL_DIR,
            refs = g.refs,
            total = g.refs_in_output,
            sort = g.sort,
            images = g.images,
        );
    }

    let repo = repo_id(options);
    let config = first.map_or("<config>", |v| v.variant.name.as_str());
    let split = first
        .and_then(|v| v.splits.first())
        .map_or("train", |s| s.name.as_str());
    let _ = writeln!(
        md,
        "## Loading\n\n\
         ```python\n\
         from datasets import load_dataset\n\n\
         ds = load_dataset(\"{repo}\", \"{config}\")            # from the Hub\n\
         ds = load_dataset(\"path/to/this/folder\", \"{config}\")  # from a local copy\n\
         row = ds[\"{split}\"][0]\n\
         row[\"proposals\"][row[\"best_index\"]] if row[\"best_index\"] is not None else None\n\
         ```\n\n\
         ```python\n\
         import pyarrow.dataset as pds\n\n\
         table = pds.dataset(\"data/{config}\", format=\"parquet\").to_table()\n\
         ```\n\n\
         ```sql\n\
         -- DuckDB\n\
         SELECT split, count(*) AS refs, avg(best_iou) AS mean_best_iou, avg(len(proposals)) AS boxes\n\
         FROM read_parquet('data/{config}/*.parquet') GROUP BY split;\n\
         ```\n\n\
         The research's training filter, in DuckDB:\n\n\
         ```sql\n\
         SELECT ref_id, list_filter(proposals, lambda p: p.score > {tc} AND p.xmax - p.xmin > {ms} AND p.ymax - p.ymin > {ms}) AS kept\n\
         FROM read_parquet('data/{config}/{split}-*.parquet');\n\
         ```\n\n\
         `croissant.json` describes the same files in MLCommons Croissant 1.0; `SHA256SUMS` \
         checks them (`sha256sum -c SHA256SUMS`).\n",
        tc = o.train_conf,
        ms = o.min_size,
    );

    md.push_str("## License\n\n");
    md.push_str(LICENSE_SUMMARY);
    let _ = writeln!(md, "\nSee [{LICENSE_FILE}]({LICENSE_FILE}).\n");

    md.push_str("## Citation\n\nIf you use these data, cite the datasets and the detectors:\n\n");
    let mut cited: Vec<&str> = Vec::new();
    let mut cite = |md: &mut String, label: &str, bib: &'static str| {
        if !cited.contains(&bib) {
            cited.push(bib);
            let _ = writeln!(md, "{label}:\n\n```bibtex\n{bib}\n```\n");
        }
    };
    if let Some(v) = first {
        for (label, bib) in dataset_citations(&v.variant) {
            cite(&mut md, label, bib);
        }
    }
    for v in variants {
        if let Some((label, bib)) = family_citation(&family(&v.variant)) {
            cite(&mut md, label, bib);
        }
    }
    md
}

const LICENSE_SUMMARY: &str = "This dataset mixes material under different terms; refaug \
states them and does not add its own:\n\n\
- referring expressions (`sentences`): from RefCOCOg, the Google Refexp data released by Google \
under [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/) (Mao et al. 2016); the `umd` \
partition is Nagaraja et al.'s (2016);\n\
- ground-truth boxes, categories and image metadata (`gt_box`, `category_*`, `image_*`, \
`file_name`): COCO annotations, [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/) (COCO \
Consortium);\n\
- images: not included; COCO images come from Flickr and are subject to the \
[Flickr terms of use](https://www.flickr.com/help/terms) and each image's own license (listed in \
COCO's `instances.json` `licenses`);\n\
- proposals: computed by the detectors named in each configuration, from those images; the \
detectors' weights carry their own licenses (e.g. Ultralytics YOLOv5/YOLOv8: AGPL-3.0; \
facebook/detr-resnet-50: Apache-2.0; torchvision weights: BSD-3-Clause) — check them for \
your use.\n";

/// `LICENSE.md`: the sources' terms (what `license: other` refers to).
pub fn license_text(variants: &[PublishedVariant]) -> String {
    let mut text = String::from("# License of this dataset's contents\n\n");
    text.push_str(LICENSE_SUMMARY);
    text.push_str("\nDetectors of this folder:\n\n");
    for v in variants {
        let _ = writeln!(
            text,
            "- `{}`: family `{}`, trained on {}",
            v.variant.name,
            family(&v.variant),
            detector_str(&v.variant, "trained_on").unwrap_or("(not stated)")
        );
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Croissant 1.0

fn croissant_type(ty: &ColumnType) -> &'static str {
    match ty {
        ColumnType::Int32 => "cr:Int32",
        ColumnType::Int64 => "cr:Int64",
        ColumnType::Float32 => "cr:Float32",
        ColumnType::String | ColumnType::List(_) | ColumnType::Struct(_) | ColumnType::Vector => {
            "sc:Text"
        }
    }
}

/// The Croissant field of one column (or nested field). `column` is the top-level column the
/// values are read from; `path` the JSON path inside it (struct fields, list elements).
fn croissant_field(
    record_set: &str,
    file_set: &str,
    spec: &ColumnSpec,
    column: &str,
    path: &[&str],
    repeated: bool,
) -> Value {
    let id_path: Vec<&str> = path.iter().copied().chain([spec.name]).collect();
    let id = if path.is_empty() {
        format!("{record_set}/{}", spec.name)
    } else {
        format!("{record_set}/{column}/{}", id_path[1..].join("/"))
    };
    let mut source = json!({
        "fileSet": {"@id": file_set},
        "extract": {"column": column},
    });
    if !path.is_empty() {
        source["transform"] = json!({"jsonPath": id_path[1..].join(".")});
    }
    let mut field = json!({
        "@type": "cr:Field",
        "@id": id,
        "name": id,
        "description": spec.description,
    });
    let (element, is_list) = match &spec.ty {
        ColumnType::List(element) => (*element, true),
        _ => (spec, false),
    };
    match &element.ty {
        ColumnType::Struct(fields) => {
            let sub_path: Vec<&str> = if path.is_empty() {
                vec![spec.name]
            } else {
                id_path.clone()
            };
            field["subField"] = Value::Array(
                fields
                    .iter()
                    .map(|f| {
                        croissant_field(
                            record_set,
                            file_set,
                            f,
                            column,
                            &sub_path,
                            repeated || is_list,
                        )
                    })
                    .collect(),
            );
        }
        ColumnType::Vector => {
            // A fixed-length float32 vector: its coordinates, repeated (Croissant 1.0 has no
            // fixed-length array type; the length is the encoder's `dim`, in the description).
            field["dataType"] = json!(croissant_type(&ColumnType::Float32));
            field["source"] = source;
            field["repeated"] = json!(true);
        }
        ty => {
            field["dataType"] = json!(croissant_type(ty));
            field["source"] = source;
        }
    }
    if repeated || is_list {
        field["repeated"] = json!(true);
    }
    if matches!(spec.name, "gt_box" | "proposals") {
        field["description"] = json!(format!(
            "{} Box format: XYXY (Keras bounding-box format names), absolute pixels of the \
             original image.",
            spec.description
        ));
    }
    field
}

/// The Croissant file set and record set of one config (`data/<config>/*.parquet`, one field per
/// column of `columns`, plus the split from the file name).
fn croissant_config(
    config: &str,
    files_description: &str,
    description: &str,
    columns: &[ColumnSpec],
) -> (Value, Value) {
    let file_set = format!("parquet-files-{config}");
    let files = json!({
        "@type": "cr:FileSet",
        "@id": file_set,
        "name": file_set,
        "description": files_description,
        "encodingFormat": "application/x-parquet",
        "includes": format!("{DATA_DIR}/{config}/*.parquet"),
    });
    let mut fields = vec![json!({
        "@type": "cr:Field",
        "@id": format!("{config}/split_of_file"),
        "name": format!("{config}/split_of_file"),
        "description": "The split, from the shard's file name.",
        "dataType": "sc:Text",
        "references": {"field": {"@id": "splits/name"}},
        "source": {
            "fileSet": {"@id": file_set},
            "extract": {"fileProperty": "filename"},
            "transform": {"regex": "^(.+)-\\d{5}-of-\\d{5}\\.parquet$"},
        },
    })];
    fields.extend(
        columns
            .iter()
            .map(|c| croissant_field(config, &file_set, c, c.name, &[], false)),
    );
    let record_set = json!({
        "@type": "cr:RecordSet",
        "@id": config,
        "name": config,
        "description": description,
        "key": {"@id": format!("{config}/ref_id")},
        "field": fields,
    });
    (files, record_set)
}

/// The `croissant.json` of the published folder.
pub fn croissant(variants: &[PublishedVariant], options: &PublishOptions) -> Value {
    let mut distribution = Vec::new();
    let mut record_sets = Vec::new();
    let mut split_names: Vec<String> = Vec::new();
    for v in variants {
        for s in &v.splits {
            if !split_names.contains(&s.name) {
                split_names.push(s.name.clone());
            }
        }
    }
    let split_data: Vec<Value> = split_names
        .iter()
        .map(|n| {
            let url = match n.as_str() {
                "train" => "cr:TrainingSplit",
                "val" | "validation" => "cr:ValidationSplit",
                _ => "cr:TestSplit",
            };
            json!({"splits/name": n, "splits/url": url})
        })
        .collect();
    record_sets.push(json!({
        "@type": "cr:RecordSet",
        "@id": "splits",
        "name": "splits",
        "description": "The splits of the dataset.",
        "dataType": "cr:Split",
        "key": {"@id": "splits/name"},
        "field": [
            {"@type": "cr:Field", "@id": "splits/name", "name": "splits/name",
             "description": "The split's name.", "dataType": "sc:Text"},
            {"@type": "cr:Field", "@id": "splits/url", "name": "splits/url",
             "description": "The split's meaning.", "dataType": "sc:URL"},
        ],
        "data": split_data,
    }));
    for v in variants {
        let name = &v.variant.name;
        let (file_set, record_set) = croissant_config(
            name,
            &format!("The Parquet shards of the `{name}` configuration."),
            &format!(
                "One row per ref with the proposals of detector `{}`.",
                v.variant.detector_name()
            ),
            &schema::COLUMNS,
        );
        distribution.push(file_set);
        record_sets.push(record_set);
        if let Some(e) = &v.embeddings {
            let encoder = e.encoder["name"].as_str().unwrap_or("unknown");
            let (file_set, record_set) = croissant_config(
                &e.config,
                &format!(
                    "The Parquet shards of the `{}` configuration (one per `{name}` shard).",
                    e.config
                ),
                &format!(
                    "One row per ref of `{name}`, same order: frozen CLIP embeddings                      (encoder `{encoder}`, {} float32 coordinates a vector) of its ground-truth                      crop, the whole image, the kept proposals' crops and its sentences.",
                    e.dim
                ),
                &crate::embed::schema::COLUMNS,
            );
            distribution.push(file_set);
            record_sets.push(record_set);
        }
    }
    let url = match &options.repo_id {
        Some(repo) => format!("https://huggingface.co/datasets/{repo}"),
        None => "https://crates.io/crates/refaug".to_string(),
    };
    let version = variants.first().map_or("0.0.0".to_string(), |v| {
        v.variant.manifest.refaug_version.clone()
    });
    json!({
        "@context": croissant_context(),
        "@type": "sc:Dataset",
        "name": pretty_name(variants),
        "description": "Referring-expression refs with object-detector proposals (xyxy pixel \
                        boxes, scores, labels), their IoU with the ground truth and the best \
                        match; one record set per detector, and one per variant's CLIP embeddings when \
                        published. Images not included.",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "license": [
            "https://creativecommons.org/licenses/by/4.0/",
            LICENSE_FILE,
        ],
        "url": url,
        "version": version,
        "citeAs": BIB_REFCOCOG,
        "distribution": distribution,
        "recordSet": record_sets,
    })
}

fn croissant_context() -> Value {
    json!({
        "@language": "en",
        "@vocab": "https://schema.org/",
        "citeAs": "cr:citeAs",
        "column": "cr:column",
        "conformsTo": "dct:conformsTo",
        "cr": "http://mlcommons.org/croissant/",
        "rai": "http://mlcommons.org/croissant/RAI/",
        "data": {"@id": "cr:data", "@type": "@json"},
        "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
        "dct": "http://purl.org/dc/terms/",
        "examples": {"@id": "cr:examples", "@type": "@json"},
        "extract": "cr:extract",
        "field": "cr:field",
        "fileProperty": "cr:fileProperty",
        "fileObject": "cr:fileObject",
        "fileSet": "cr:fileSet",
        "format": "cr:format",
        "includes": "cr:includes",
        "isLiveDataset": "cr:isLiveDataset",
        "jsonPath": "cr:jsonPath",
        "key": "cr:key",
        "md5": "cr:md5",
        "parentField": "cr:parentField",
        "path": "cr:path",
        "recordSet": "cr:recordSet",
        "references": "cr:references",
        "regex": "cr:regex",
        "repeated": "cr:repeated",
        "replace": "cr:replace",
        "sc": "https://schema.org/",
        "separator": "cr:separator",
        "source": "cr:source",
        "subField": "cr:subField",
        "transform": "cr:transform",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_blocks_nest_like_datasets_writes_them() {
        let y = map(vec![
            ("a", s("x")),
            (
                "list",
                Yaml::Seq(vec![
                    map(vec![("name", s("n")), ("dtype", s("int64"))]),
                    s("plain"),
                ]),
            ),
            ("m", map(vec![("k", Yaml::Int(3)), ("b", Yaml::Bool(true))])),
        ]);
        let mut out = String::new();
        y.render(0, &mut out);
        assert_eq!(
            out,
            "a: \"x\"\nlist:\n- name: \"n\"\n  dtype: \"int64\"\n- \"plain\"\nm:\n  k: 3\n  b: true\n"
        );
    }

    #[test]
    fn size_categories_follow_the_hub_buckets() {
        assert_eq!(size_category(999), "n<1K");
        assert_eq!(size_category(1_000), "1K<n<10K");
        assert_eq!(size_category(49_822), "10K<n<100K");
    }
}
