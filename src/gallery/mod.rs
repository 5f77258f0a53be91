//! `refaug gallery OUT`: a static site to look at the proposals — per ref its image with the
//! ground truth, the best proposal and every proposal of each variant drawn over it, its
//! sentences and its numbers (best IoU, proposals, the research's training filter). It opens
//! from `file://` with nothing fetched from the network:
//!
//! ```text
//! <dest>/index.html        the page (site/index.html)
//! <dest>/gallery.js        what it does (site/gallery.js): cards, SVG overlays, filters, keys
//! <dest>/gallery.css       how it looks (site/gallery.css)
//! <dest>/data.js           the selected refs (see [`data`])
//! <dest>/thumbnails/<image_id>.jpg   each image once, downsized (see [`thumbs`])
//! ```
//!
//! The output can be large (RefCOCOg: ~95,000 refs per variant), so the site holds a selection
//! ([`select`]): the first `n` refs in a sort order, or the refs listed. Shards are read twice,
//! one at a time: once for the few numbers the selection needs, once for the selected rows.
//! The site is built in a hidden folder next to `dest` and renamed into place; a previous
//! gallery at `dest` is replaced, any other non-empty folder is refused.

pub mod data;
pub mod select;
pub mod thumbs;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::report::{OutputVariant, ReportError, ReportOptions, find_variants};
use crate::write::row::Row;
use crate::write::shard::read_rows;

use self::data::{
    DATA_FORMAT, DATA_GLOBAL, DatasetInfo, GalleryData, RefData, SelectionInfo, VariantInfo,
};
use self::select::{RefSummary, SortOrder, VariantOutcome};
use self::thumbs::{ImageJob, ImagesFrom};

/// Refs a gallery shows by default: enough to see how detectors fail, small enough to open
/// quickly and share (see the README for the size of a 200-ref site).
pub const DEFAULT_N: usize = 200;
/// Longer side of a thumbnail by default, pixels.
pub const DEFAULT_THUMBNAIL_SIZE: u32 = 400;
/// Name of the gallery's folder under an output folder (and a published folder).
pub const GALLERY_DIR: &str = "gallery";
/// The site's files.
pub const INDEX_FILE: &str = "index.html";
pub const SCRIPT_FILE: &str = "gallery.js";
pub const STYLE_FILE: &str = "gallery.css";
pub const DATA_FILE: &str = "data.js";
pub const THUMBNAIL_DIR: &str = "thumbnails";

const INDEX_HTML: &str = include_str!("site/index.html");
const GALLERY_JS: &str = include_str!("site/gallery.js");
const GALLERY_CSS: &str = include_str!("site/gallery.css");

/// What a gallery shows.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryOptions {
    /// How many refs (ignored when `refs` lists them).
    pub n: usize,
    /// Exactly these refs, in the sort order.
    pub refs: Option<Vec<i64>>,
    pub sort: SortOrder,
    /// Seed of [`SortOrder::Random`].
    pub seed: u32,
    /// Only these splits (default: all).
    pub splits: Option<Vec<String>>,
    /// Only these variants, in this order (default: all, in the data manifest's order).
    pub variants: Option<Vec<String>>,
    pub images: ImagesFrom,
    /// Longer side of the thumbnails, pixels.
    pub thumbnail_size: u32,
    /// The training filter the verdicts use.
    pub report: ReportOptions,
}

impl Default for GalleryOptions {
    fn default() -> Self {
        GalleryOptions {
            n: DEFAULT_N,
            refs: None,
            sort: SortOrder::default(),
            seed: 0,
            splits: None,
            variants: None,
            images: ImagesFrom::Manifest(PathBuf::from("data-manifest.toml")),
            thumbnail_size: DEFAULT_THUMBNAIL_SIZE,
            report: ReportOptions::default(),
        }
    }
}

/// Errors of making a gallery; each names its file, image or ref.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error("{path}: I/O error")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image {image_id}")]
    Decode {
        image_id: i64,
        #[source]
        source: crate::decode::DecodeError,
    },
    #[error(
        "{path} (image {image_id}) is {}x{}, the output says {}x{}: not the image the proposals were made on",
        found.0, found.1, expected.0, expected.1
    )]
    ImageSize {
        path: PathBuf,
        image_id: i64,
        expected: (u32, u32),
        found: (u32, u32),
    },
    #[error("{path}: cannot write the thumbnail")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("the images: {0}")]
    Images(String),
    #[error("{0}")]
    Options(String),
    #[error("{path}: exists, is not empty and is not a refaug gallery; refusing to replace it")]
    NotEmpty { path: PathBuf },
}

/// What `make` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct GallerySummary {
    pub dir: PathBuf,
    pub refs: usize,
    /// Refs the output holds in the chosen splits and variants.
    pub refs_in_output: usize,
    pub images: usize,
    pub variants: Vec<String>,
    /// The order the refs were chosen in (`--sort`'s value).
    pub sort: String,
    /// Size of the whole site, of `data.js` and of the thumbnails, bytes.
    pub bytes: u64,
    pub data_bytes: u64,
    pub thumbnail_bytes: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> GalleryError + '_ {
    move |source| GalleryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The variants to show, in order.
fn chosen_variants(
    out: &Path,
    names: Option<&[String]>,
) -> Result<Vec<OutputVariant>, GalleryError> {
    let all = find_variants(out)?;
    let Some(names) = names else {
        return Ok(all);
    };
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|v| &v.name == name)
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
                    GalleryError::Options(format!(
                        "--variants: {} has no variant {name:?} (it has {})",
                        out.display(),
                        known.join(", ")
                    ))
                })
        })
        .collect()
}

/// Each variant's shard files of the chosen splits, in reading order.
fn chosen_shards(
    variants: &[OutputVariant],
    splits: Option<&[String]>,
) -> Result<Vec<Vec<PathBuf>>, GalleryError> {
    if let Some(splits) = splits {
        for split in splits {
            if !variants
                .iter()
                .any(|v| v.manifest.splits.contains_key(split))
            {
                return Err(GalleryError::Options(format!(
                    "--splits: no variant has a split {split:?}"
                )));
            }
        }
    }
    variants
        .iter()
        .map(|variant| {
            let mut paths = Vec::new();
            for split in variant.splits() {
                if splits.is_none_or(|s| s.contains(&split)) {
                    paths.extend(variant.shard_paths(&split)?);
                }
            }
            Ok(paths)
        })
        .collect()
}

impl GalleryOptions {
    fn validate(&self) -> Result<(), GalleryError> {
        self.report.validate()?;
        if self.refs.is_none() && self.n == 0 {
            return Err(GalleryError::Options("--n must be at least 1".to_string()));
        }
        if self.refs.as_ref().is_some_and(Vec::is_empty) {
            return Err(GalleryError::Options(
                "--refs needs at least one ref_id".to_string(),
            ));
        }
        if self.thumbnail_size < 16 {
            return Err(GalleryError::Options(format!(
                "--thumbnail-size {} is below 16 pixels",
                self.thumbnail_size
            )));
        }
        Ok(())
    }
}

/// Make the gallery of the output folder `out` in `dest`.
pub fn make(
    out: &Path,
    dest: &Path,
    options: &GalleryOptions,
) -> Result<GallerySummary, GalleryError> {
    options.validate()?;
    let variants = chosen_variants(out, options.variants.as_deref())?;
    let shards = chosen_shards(&variants, options.splits.as_deref())?;
    let images = thumbs::images_dir(&options.images, out, &variants[0])?;

    // Pass 1: a few numbers per ref and variant, and where each ref's row is.
    let mut summaries: BTreeMap<i64, RefSummary> = BTreeMap::new();
    let mut shard_of: BTreeMap<(usize, i64), usize> = BTreeMap::new();
    for (v, paths) in shards.iter().enumerate() {
        for (s, path) in paths.iter().enumerate() {
            for row in read_rows(path).map_err(ReportError::from)? {
                shard_of.insert((v, row.ref_id), s);
                let summary = summaries.entry(row.ref_id).or_insert_with(|| RefSummary {
                    ref_id: row.ref_id,
                    ..RefSummary::default()
                });
                summary.outcomes.insert(
                    v,
                    VariantOutcome {
                        best_iou: row.best_iou,
                        proposals: row.proposals.len(),
                    },
                );
            }
        }
    }
    let refs_in_output = summaries.len();
    let selected: Vec<i64> = match &options.refs {
        Some(listed) => {
            let mut chosen = Vec::new();
            for id in listed {
                let Some(summary) = summaries.get(id) else {
                    return Err(GalleryError::Options(format!(
                        "--refs: ref_id {id} has no row in {} (in the chosen splits and variants)",
                        out.display()
                    )));
                };
                if !chosen.iter().any(|s: &RefSummary| s.ref_id == *id) {
                    chosen.push(summary.clone());
                }
            }
            let n = chosen.len();
            select::select(chosen, options.sort, options.seed, n)
        }
        None => select::select(
            summaries.into_values().collect(),
            options.sort,
            options.seed,
            options.n,
        ),
    };
    let wanted: BTreeSet<i64> = selected.iter().copied().collect();

    // Pass 2: the selected rows, reading only the shards that hold one.
    let mut rows: BTreeMap<i64, Vec<(usize, Row)>> = BTreeMap::new();
    for (v, paths) in shards.iter().enumerate() {
        let needed: BTreeSet<usize> = wanted
            .iter()
            .filter_map(|id| shard_of.get(&(v, *id)).copied())
            .collect();
        for s in needed {
            for row in read_rows(&paths[s]).map_err(ReportError::from)? {
                if wanted.contains(&row.ref_id) {
                    rows.entry(row.ref_id).or_default().push((v, row));
                }
            }
        }
    }

    let first = &variants[0].manifest;
    let mut data = GalleryData {
        format: DATA_FORMAT,
        title: format!(
            "refaug gallery: {}",
            out.canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| out.display().to_string())
        ),
        dataset: DatasetInfo {
            kind: first.dataset_kind.clone(),
            split_by: first.split_by.clone(),
        },
        variants: variants
            .iter()
            .map(|v| VariantInfo {
                name: v.name.clone(),
                detector: v.detector_name(),
                family: v.manifest.detector["family"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                sees_eval_images: v.manifest.detector["sees_eval_images"]
                    .as_bool()
                    .unwrap_or(false),
            })
            .collect(),
        filter: (&options.report).into(),
        selection: SelectionInfo {
            sort: options.sort,
            seed: options.seed,
            n: options.refs.is_none().then_some(options.n),
            listed: options.refs.is_some(),
            refs_in_output,
        },
        images: BTreeMap::new(),
        refs: Vec::new(),
    };
    let mut jobs: BTreeMap<i64, ImageJob> = BTreeMap::new();
    for id in &selected {
        let ref_rows = &rows[id];
        let (v0, first_row) = &ref_rows[0];
        if let Some((v, other)) = ref_rows
            .iter()
            .find(|(_, r)| r.image_id != first_row.image_id)
        {
            return Err(GalleryError::Options(format!(
                "ref_id {id} is on image {} in variant {} but on image {} in variant {}: the \
                 variants of {} are not of one dataset",
                first_row.image_id,
                variants[*v0].name,
                other.image_id,
                variants[*v].name,
                out.display()
            )));
        }
        data.refs.push(RefData::of(&ref_rows[0].1));
        let index = data.refs.len() - 1;
        for (v, row) in ref_rows {
            let thumbnail = format!("{THUMBNAIL_DIR}/{}.jpg", row.image_id);
            data.add_row(&variants[*v].name, row, index, thumbnail, &options.report);
            jobs.entry(row.image_id).or_insert_with(|| ImageJob {
                image_id: row.image_id,
                path: images.join(&row.file_name),
                width: u32::try_from(row.image_width).unwrap_or(0),
                height: u32::try_from(row.image_height).unwrap_or(0),
                thumbnail: PathBuf::new(),
            });
        }
    }

    let staging = Staging::new(dest)?;
    let thumbs_dir = staging.dir.join(THUMBNAIL_DIR);
    fs_err::create_dir_all(&thumbs_dir).map_err(io_error(&thumbs_dir))?;
    let jobs: Vec<ImageJob> = jobs
        .into_values()
        .map(|mut job| {
            job.thumbnail = thumbs_dir.join(format!("{}.jpg", job.image_id));
            job
        })
        .collect();
    let thumbnail_bytes = thumbs::make_thumbnails(&jobs, options.thumbnail_size)?;
    let script = data.script();
    for (name, text) in [
        (INDEX_FILE, INDEX_HTML),
        (SCRIPT_FILE, GALLERY_JS),
        (STYLE_FILE, GALLERY_CSS),
        (DATA_FILE, script.as_str()),
    ] {
        let path = staging.dir.join(name);
        fs_err::write(&path, text).map_err(io_error(&path))?;
    }
    let bytes = thumbnail_bytes
        + [INDEX_HTML, GALLERY_JS, GALLERY_CSS, script.as_str()]
            .iter()
            .map(|t| t.len() as u64)
            .sum::<u64>();
    staging.commit()?;
    Ok(GallerySummary {
        dir: dest.to_path_buf(),
        refs: data.refs.len(),
        refs_in_output,
        images: jobs.len(),
        variants: variants.iter().map(|v| v.name.clone()).collect(),
        sort: options
            .sort
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string()),
        bytes,
        data_bytes: script.len() as u64,
        thumbnail_bytes,
    })
}

/// Whether `dir` holds a gallery this command made (its data file says so).
fn is_gallery(dir: &Path) -> bool {
    let prefix = format!("window.{DATA_GLOBAL} = ");
    let mut head = vec![0u8; prefix.len()];
    std::fs::File::open(dir.join(DATA_FILE))
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head == prefix.as_bytes())
}

/// The hidden folder a site is built in, next to its destination; removed unless committed.
struct Staging {
    dir: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staging {
    fn new(dest: &Path) -> Result<Staging, GalleryError> {
        let name = dest
            .file_name()
            .ok_or_else(|| GalleryError::Options(format!("{}: not a folder name", dest.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs_err::create_dir_all(&parent).map_err(io_error(&parent))?;
        if dest.exists() && !is_gallery(dest) {
            let mut entries = fs_err::read_dir(dest).map_err(io_error(dest))?;
            if entries.next().is_some() {
                return Err(GalleryError::NotEmpty {
                    path: dest.to_path_buf(),
                });
            }
        }
        let dir = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if dir.exists() {
            fs_err::remove_dir_all(&dir).map_err(io_error(&dir))?;
        }
        fs_err::create_dir(&dir).map_err(io_error(&dir))?;
        Ok(Staging {
            dir,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    /// Put the site in place: an empty folder or a previous gallery at `dest` is replaced.
    fn commit(mut self) -> Result<(), GalleryError> {
        let dest = self.dest.clone();
        if dest.exists() {
            let old = self.dir.with_file_name(format!(
                "{}.old",
                self.dir
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            ));
            fs_err::rename(&dest, &old).map_err(io_error(&dest))?;
            fs_err::rename(&self.dir, &dest).map_err(io_error(&dest))?;
            fs_err::remove_dir_all(&old).map_err(io_error(&old))?;
        } else {
            fs_err::rename(&self.dir, &dest).map_err(io_error(&dest))?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a failed build leaves nothing behind, and its error is what matters.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
