//! The gallery's pictures: where an output's source images are (`--images`, or the data
//! manifest that made the output, checked to be that output's dataset), and one downsized JPEG
//! thumbnail per image, decoded as every run decodes it ([`crate::decode`]) and resized with
//! Pillow's antialiased bilinear filter ([`crate::preprocess::pil::resize_bilinear`]).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::GalleryError;
use crate::manifest::Manifest;
use crate::report::OutputVariant;

/// JPEG quality of the thumbnails (libjpeg scale, as Pillow's `quality`).
pub const JPEG_QUALITY: u8 = 85;

/// Where the source images come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImagesFrom {
    /// The folder the rows' `file_name`s are relative to.
    Dir(PathBuf),
    /// The data manifest the output was made from; its `[dataset] images`.
    Manifest(PathBuf),
}

/// The images folder of `from`, for the output `out` (whose first variant is `variant`). A data
/// manifest must describe the output's dataset: the same
/// kind and split_by, and an `instances.json` with the sha256 the output records.
pub fn images_dir(
    from: &ImagesFrom,
    out: &Path,
    variant: &OutputVariant,
) -> Result<PathBuf, GalleryError> {
    let manifest_path = match from {
        ImagesFrom::Dir(dir) if dir.is_dir() => return Ok(dir.clone()),
        ImagesFrom::Dir(dir) => {
            return Err(GalleryError::Images(format!(
                "--images {}: not a folder",
                dir.display()
            )));
        }
        ImagesFrom::Manifest(path) => path,
    };
    if !manifest_path.is_file() {
        return Err(GalleryError::Images(format!(
            "no data manifest at {} to find the images of {} by; pass --images DIR or --manifest M",
            manifest_path.display(),
            out.display()
        )));
    }
    let source = Manifest::load_dataset_only(manifest_path)?;
    let output = &variant.manifest;
    let kind = serde_json::to_value(source.kind).unwrap_or_default();
    let split_by = serde_json::to_value(source.split_by).unwrap_or_default();
    let mismatch = |what: String| {
        GalleryError::Images(format!(
            "{} describes another dataset than {}: {what}; pass --images DIR for the output's images",
            manifest_path.display(),
            out.display()
        ))
    };
    if kind.as_str() != Some(output.dataset_kind.as_str())
        || split_by.as_str() != Some(output.split_by.as_str())
    {
        return Err(mismatch(format!(
            "{kind} split by {split_by}, the output {} split by {}",
            output.dataset_kind, output.split_by
        )));
    }
    if let Some(recorded) = output.sources.get("instances.json") {
        let instances = source.instances_path();
        let actual = crate::sha256_file(&instances).map_err(|source| GalleryError::Io {
            path: instances.clone(),
            source,
        })?;
        if !actual.eq_ignore_ascii_case(recorded) {
            return Err(mismatch(format!(
                "{} has sha256 {actual}, the output was made from {recorded}",
                instances.display()
            )));
        }
    }
    Ok(source.images_dir)
}

/// One image to draw: its file and the size the output says it has.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageJob {
    pub image_id: i64,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Where the thumbnail goes.
    pub thumbnail: PathBuf,
}

/// The thumbnail size of a `width`×`height` image: the longer side `max_side` (never larger
/// than the image), the other rounded, at least 1.
pub fn thumbnail_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longer = width.max(height);
    if longer <= max_side {
        return (width, height);
    }
    let scale = f64::from(max_side) / f64::from(longer);
    let side = |s: u32| ((f64::from(s) * scale).round() as u32).clamp(1, max_side);
    (side(width), side(height))
}

fn make_one(job: &ImageJob, max_side: u32) -> Result<u64, GalleryError> {
    let rgb = crate::decode::decode_file(&job.path).map_err(|source| GalleryError::Decode {
        image_id: job.image_id,
        source,
    })?;
    if (rgb.width(), rgb.height()) != (job.width, job.height) {
        return Err(GalleryError::ImageSize {
            path: job.path.clone(),
            image_id: job.image_id,
            expected: (job.width, job.height),
            found: (rgb.width(), rgb.height()),
        });
    }
    let (w, h) = thumbnail_size(rgb.width(), rgb.height(), max_side);
    let small = crate::preprocess::pil::resize_bilinear(&rgb, w, h);
    let file = fs_err::File::create(&job.thumbnail).map_err(|source| GalleryError::Io {
        path: job.thumbnail.clone(),
        source,
    })?;
    let mut writer = std::io::BufWriter::new(file);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut writer, JPEG_QUALITY)
        .encode_image(&small)
        .map_err(|source| GalleryError::Encode {
            path: job.thumbnail.clone(),
            source,
        })?;
    drop(writer);
    Ok(fs_err::metadata(&job.thumbnail)
        .map_err(|source| GalleryError::Io {
            path: job.thumbnail.clone(),
            source,
        })?
        .len())
}

/// Make every thumbnail (in parallel); returns their total size in bytes. The first error (in
/// `jobs` order) is returned.
pub fn make_thumbnails(jobs: &[ImageJob], max_side: u32) -> Result<u64, GalleryError> {
    let sizes: Vec<Result<u64, GalleryError>> =
        jobs.par_iter().map(|job| make_one(job, max_side)).collect();
    sizes.into_iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_keep_the_aspect_and_never_grow() {
        assert_eq!(thumbnail_size(640, 480, 400), (400, 300));
        assert_eq!(thumbnail_size(480, 640, 400), (300, 400));
        // 427 × 400/640 = 266.875 → 267.
        assert_eq!(thumbnail_size(640, 427, 400), (400, 267));
        assert_eq!(thumbnail_size(300, 200, 400), (300, 200));
        assert_eq!(thumbnail_size(4000, 3, 400), (400, 1));
    }
}
