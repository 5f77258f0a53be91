//! `data-manifest.toml`: what the job is (dataset, variants, output, run defaults).
//!
//! The file is parsed into wire structs that refuse unknown keys, then validated into a
//! [`Manifest`] whose paths are resolved relative to the manifest's own folder. Flags of the
//! command line override the `[run]` defaults; everything else is what the job *is*.
//!
//! ```toml
//! [dataset]
//! kind = "refcocog"                               # refcoco | refcoco+ | refcocog
//! split_by = "umd"                                # umd | google | unc (checked against kind)
//! annotations = "sample/refcocog/annotations"     # instances.json and refs(<split_by>).p
//! images = "sample/refcocog/images"
//! splits = ["train", "val", "test"]               # optional: default all of split_by's splits
//! [dataset.sha256]                                # optional, each key optional
//! instances = "…64 hex digits…"
//! refs = "…"
//!
//! [[variant]]
//! name = "yolo"                                   # [a-z0-9_-]+, unique
//! detector = "detectors/fixture-ultralytics.toml" # a detector spec file
//!
//! [output]
//! dir = "out/sample"
//! images_per_shard = 1000                         # default 1000
//!
//! [run]                                           # optional, every key optional
//! device = "cpu"                                  # cpu | cuda | cuda:N
//! batch_size = 4                                  # default 1
//! threads = 0                                     # 0 = all cores, shared (default)
//! ```
//!
//! The SHA-256 digests are checked by [`crate::dataset::load`], which hashes the bytes it parses
//! (reading each file once).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dataset::{DatasetKind, DatasetSource, ExpectedSha256, SplitBy, split_names};
pub use crate::detect::runtime::Device;

/// A validated `data-manifest.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The manifest file itself.
    pub path: PathBuf,
    /// `[dataset]`, paths resolved.
    pub dataset: DatasetSource,
    /// `[[variant]]`, in file order (at least one).
    pub variants: Vec<Variant>,
    /// `[output]`.
    pub output: Output,
    /// `[run]`, defaults filled in.
    pub run: RunDefaults,
    /// `[embed]`, when present.
    pub embed: Option<EmbedSettings>,
}

/// One output variant: one Parquet dataset made by one detector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// `[a-z0-9_-]+`, unique within the manifest.
    pub name: String,
    /// The detector spec file (exists; its content is parsed by `detect::spec`).
    pub detector: PathBuf,
}

/// `[output]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Where the variants are written (need not exist yet).
    pub dir: PathBuf,
    /// Images per output shard (a split's shards are consecutive blocks of its images).
    pub images_per_shard: usize,
}

/// Default images per shard: about 2,000 refs, a few MB of Parquet per shard on RefCOCOg.
pub const DEFAULT_IMAGES_PER_SHARD: usize = 1000;

/// `[run]`: defaults for a run, which command-line flags override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDefaults {
    pub device: Device,
    /// Images per detector batch, at least 1.
    pub batch_size: usize,
    /// Threads in all; 0 means all cores, the sessions sharing them (see `RunOptions::threads`).
    pub threads: usize,
}

impl Default for RunDefaults {
    fn default() -> Self {
        RunDefaults {
            device: Device::Cpu,
            batch_size: 1,
            threads: 0,
        }
    }
}

/// Folders that other commands write inside an output folder, so no variant may be named so.
const RESERVED_NAMES: &[&str] = &[
    crate::report::REPORT_DIR,
    crate::export::EXPORT_DIR,
    crate::gallery::GALLERY_DIR,
];

/// Why a manifest is not usable. Every message names the manifest file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Reading the manifest failed (the message carries the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Not TOML of the manifest's shape (unknown keys included); toml's message quotes the line.
    #[error("{path}: {error}")]
    Parse {
        path: PathBuf,
        error: toml::de::Error,
    },
    /// A required section is missing.
    #[error("{path}: missing {what}")]
    Missing { path: PathBuf, what: &'static str },
    /// A value is not allowed; `key` is the dotted key, `why` says what is expected.
    #[error("{path}: {key} = {value}: {why}")]
    Invalid {
        path: PathBuf,
        key: String,
        /// The value as written (TOML-quoted when a string).
        value: String,
        why: String,
    },
    /// A file or folder the manifest names does not exist.
    #[error("{manifest}: {key}: {what} {path} does not exist")]
    MissingPath {
        manifest: PathBuf,
        key: &'static str,
        what: &'static str,
        path: PathBuf,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireManifest {
    dataset: WireDataset,
    #[serde(default, rename = "variant")]
    variants: Vec<WireVariant>,
    output: Option<WireOutput>,
    #[serde(default)]
    run: WireRun,
    embed: Option<WireEmbed>,
}

/// `[embed]`: what `refaug embed` adds beside every variant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEmbed {
    encoder: PathBuf,
    score_above: Option<f64>,
    width_above: Option<f64>,
    height_above: Option<f64>,
    #[serde(default)]
    truncate: bool,
}

/// `[embed]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedSettings {
    /// The encoder spec file (exists).
    pub encoder: PathBuf,
    /// Which proposals get a crop.
    pub filter: crate::embed::filter::ProposalFilter,
    /// Cut sentences over CLIP's 77 tokens (clip.tokenize's truncate=True) instead of failing.
    pub truncate: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDataset {
    kind: DatasetKind,
    split_by: SplitBy,
    annotations: PathBuf,
    images: PathBuf,
    splits: Option<Vec<String>>,
    sha256: Option<WireSha256>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSha256 {
    instances: Option<String>,
    refs: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireVariant {
    name: String,
    detector: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireOutput {
    dir: PathBuf,
    images_per_shard: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRun {
    device: Option<String>,
    batch_size: Option<usize>,
    threads: Option<usize>,
}

impl Manifest {
    /// Reads and validates the whole manifest: the dataset files and folders exist, every
    /// variant's detector spec exists, variant names are well-formed and unique, `[output]` is
    /// there, `[run]` values are valid.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let wire = read_wire(path)?;
        let base = base_dir(path);
        let dataset = validate_dataset(path, &base, &wire.dataset)?;

        if wire.variants.is_empty() {
            return Err(ManifestError::Missing {
                path: path.to_path_buf(),
                what: "[[variant]]: at least one variant",
            });
        }
        let mut variants: Vec<Variant> = Vec::with_capacity(wire.variants.len());
        for (i, v) in wire.variants.iter().enumerate() {
            let well_formed = !v.name.is_empty()
                && v.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !well_formed {
                return Err(invalid(
                    path,
                    format!("variant[{i}].name"),
                    &v.name,
                    "must match [a-z0-9_-]+",
                ));
            }
            if RESERVED_NAMES.contains(&v.name.as_str()) {
                return Err(invalid(
                    path,
                    format!("variant[{i}].name"),
                    &v.name,
                    "names a folder refaug writes beside the variants (report, export, gallery); choose another",
                ));
            }
            if variants.iter().any(|seen| seen.name == v.name) {
                return Err(invalid(
                    path,
                    format!("variant[{i}].name"),
                    &v.name,
                    "is used by an earlier variant",
                ));
            }
            let detector = base.join(&v.detector);
            if !detector.is_file() {
                return Err(ManifestError::MissingPath {
                    manifest: path.to_path_buf(),
                    key: "variant.detector",
                    what: "detector spec file",
                    path: detector,
                });
            }
            variants.push(Variant {
                name: v.name.clone(),
                detector,
            });
        }

        let output = wire.output.as_ref().ok_or_else(|| ManifestError::Missing {
            path: path.to_path_buf(),
            what: "[output] with dir",
        })?;

        let defaults = RunDefaults::default();
        let device = match &wire.run.device {
            None => defaults.device,
            Some(s) => s
                .parse()
                .map_err(|why: crate::detect::runtime::RuntimeError| {
                    invalid(path, "run.device".into(), s, &why.to_string())
                })?,
        };
        let batch_size = wire.run.batch_size.unwrap_or(defaults.batch_size);
        if batch_size == 0 {
            return Err(ManifestError::Invalid {
                path: path.to_path_buf(),
                key: "run.batch_size".into(),
                value: "0".into(),
                why: "must be at least 1".into(),
            });
        }

        let images_per_shard = output.images_per_shard.unwrap_or(DEFAULT_IMAGES_PER_SHARD);
        if images_per_shard == 0 {
            return Err(ManifestError::Invalid {
                path: path.to_path_buf(),
                key: "output.images_per_shard".into(),
                value: "0".into(),
                why: "must be at least 1".into(),
            });
        }

        let embed = match &wire.embed {
            None => None,
            Some(e) => {
                let encoder = base.join(&e.encoder);
                if !encoder.is_file() {
                    return Err(ManifestError::MissingPath {
                        manifest: path.to_path_buf(),
                        key: "embed.encoder",
                        what: "encoder spec file",
                        path: encoder,
                    });
                }
                let wire_filter = crate::embed::filter::ProposalFilterWire {
                    score_above: e.score_above,
                    width_above: e.width_above,
                    height_above: e.height_above,
                };
                let filter =
                    wire_filter
                        .validate()
                        .map_err(|(key, value)| ManifestError::Invalid {
                            path: path.to_path_buf(),
                            key: format!("embed.{key}"),
                            value,
                            why: "must be a finite number".into(),
                        })?;
                Some(EmbedSettings {
                    encoder,
                    filter,
                    truncate: e.truncate,
                })
            }
        };

        Ok(Manifest {
            path: path.to_path_buf(),
            dataset,
            variants,
            embed,
            output: Output {
                dir: base.join(&output.dir),
                images_per_shard,
            },
            run: RunDefaults {
                device,
                batch_size,
                threads: wire.run.threads.unwrap_or(defaults.threads),
            },
        })
    }

    /// Reads the manifest and validates only `[dataset]` (the rest must still parse, unknown keys
    /// anywhere are still refused): what `refaug inspect` needs, without the detector specs.
    pub fn load_dataset_only(path: &Path) -> Result<DatasetSource, ManifestError> {
        let wire = read_wire(path)?;
        validate_dataset(path, &base_dir(path), &wire.dataset)
    }
}

fn read_wire(path: &Path) -> Result<WireManifest, ManifestError> {
    let text = fs_err::read_to_string(path)?;
    toml::from_str(&text).map_err(|error| ManifestError::Parse {
        path: path.to_path_buf(),
        error,
    })
}

/// The folder relative paths of the manifest are resolved against.
fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn validate_dataset(
    path: &Path,
    base: &Path,
    d: &WireDataset,
) -> Result<DatasetSource, ManifestError> {
    let Some(allowed) = split_names(d.kind, d.split_by) else {
        let has: Vec<&str> = d.kind.split_bys().iter().map(|s| s.as_str()).collect();
        return Err(invalid(
            path,
            "dataset.split_by".into(),
            d.split_by.as_str(),
            &format!("{} is split by {}", d.kind, has.join(", ")),
        ));
    };
    let mut splits: Vec<String> = Vec::new();
    match &d.splits {
        None => splits.extend(allowed.iter().map(|s| s.to_string())),
        Some(list) if list.is_empty() => {
            return Err(ManifestError::Invalid {
                path: path.to_path_buf(),
                key: "dataset.splits".into(),
                value: "[]".into(),
                why: "name at least one split, or leave the key out for all".into(),
            });
        }
        Some(list) => {
            for s in list {
                if !allowed.contains(&s.as_str()) {
                    return Err(invalid(
                        path,
                        "dataset.splits".into(),
                        s,
                        &format!(
                            "not a split of {} split by {} (it has {})",
                            d.kind,
                            d.split_by,
                            allowed.join(", ")
                        ),
                    ));
                }
                if splits.contains(s) {
                    return Err(invalid(path, "dataset.splits".into(), s, "is listed twice"));
                }
                splits.push(s.clone());
            }
        }
    }
    let sha = |key: &str, v: &Option<String>| -> Result<Option<String>, ManifestError> {
        match v {
            None => Ok(None),
            Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Some(s.to_ascii_lowercase()))
            }
            Some(s) => Err(invalid(
                path,
                format!("dataset.sha256.{key}"),
                s,
                "is not a SHA-256 digest (64 hex digits)",
            )),
        }
    };
    let expected_sha256 = match &d.sha256 {
        None => ExpectedSha256::default(),
        Some(w) => ExpectedSha256 {
            instances: sha("instances", &w.instances)?,
            refs: sha("refs", &w.refs)?,
        },
    };

    let source = DatasetSource {
        kind: d.kind,
        split_by: d.split_by,
        annotations_dir: base.join(&d.annotations),
        images_dir: base.join(&d.images),
        splits,
        expected_sha256,
    };
    let missing = |key, what, p: PathBuf| ManifestError::MissingPath {
        manifest: path.to_path_buf(),
        key,
        what,
        path: p,
    };
    if !source.annotations_dir.is_dir() {
        return Err(missing(
            "dataset.annotations",
            "folder",
            source.annotations_dir,
        ));
    }
    if !source.instances_path().is_file() {
        return Err(missing(
            "dataset.annotations",
            "file",
            source.instances_path(),
        ));
    }
    if !source.refs_path().is_file() {
        return Err(missing("dataset.annotations", "file", source.refs_path()));
    }
    if !source.images_dir.is_dir() {
        return Err(missing("dataset.images", "folder", source.images_dir));
    }
    Ok(source)
}

fn invalid(path: &Path, key: String, value: &str, why: &str) -> ManifestError {
    ManifestError::Invalid {
        path: path.to_path_buf(),
        key,
        value: format!("{value:?}"),
        why: why.to_string(),
    }
}
