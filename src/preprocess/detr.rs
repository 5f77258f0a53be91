//! The Hugging Face DETR image processor: output size rule and the two processors' resize and
//! normalisation.
//!
//! transformers 5.24 `DetrImageProcessor()` (torchvision backend) and `DetrImageProcessorPil()`
//! with their defaults: resize so the short side is 800 unless the long side would pass 1333,
//! rescale by 1/255, normalise with the ImageNet mean and std. Padding is a no-op for one image.

use image::RgbImage;

use crate::preprocess::Chw;
use crate::preprocess::{pil, torchvision_resize};

/// Which Hugging Face DETR image processor to mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Processor {
    /// transformers 5 `DetrImageProcessor` (torchvision backend): antialiased bilinear on uint8.
    #[default]
    Torchvision,
    /// transformers 4's default / transformers 5 `DetrImageProcessorPil`: PIL BILINEAR.
    Pil,
}

/// Resize and normalisation settings (the processor defaults unless a spec says otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetrPreprocess {
    /// Which processor's resize and normalisation arithmetic to reproduce.
    pub processor: Processor,
    /// `size["shortest_edge"]` (default 800).
    pub shortest_edge: u32,
    /// `size["longest_edge"]` (default 1333).
    pub longest_edge: u32,
    /// `image_mean` per RGB channel, as the float32 the processors turn it into.
    pub mean: [f32; 3],
    /// `image_std` per RGB channel, as float32.
    pub std: [f32; 3],
}

/// ImageNet mean (`IMAGENET_DEFAULT_MEAN`), the DETR processors' default `image_mean`.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet std (`IMAGENET_DEFAULT_STD`), the DETR processors' default `image_std`.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Default for DetrPreprocess {
    /// `DetrImageProcessor()` defaults: torchvision backend, 800/1333, ImageNet mean/std.
    fn default() -> Self {
        DetrPreprocess {
            processor: Processor::Torchvision,
            shortest_edge: 800,
            longest_edge: 1333,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }
}

/// `get_size_with_aspect_ratio((h, w), shortest_edge, longest_edge)` → (new_w, new_h).
///
/// transformers 5.24 `image_transforms.get_size_with_aspect_ratio`, in the same `f64` operations:
/// when `max / min · shortest > longest`, `raw = longest · min / max` and the short side becomes
/// `round(raw)` (Python's round: ties to even); the long side is `int(raw · long / short)` in that
/// case, `int(size · long / short)` otherwise (truncation). An image whose short side already
/// equals the target keeps its size.
pub fn output_size(w: u32, h: u32, shortest_edge: u32, longest_edge: u32) -> (u32, u32) {
    let (height, width) = (f64::from(h), f64::from(w));
    let min_original = height.min(width);
    let max_original = height.max(width);
    let mut size = f64::from(shortest_edge);
    let mut raw_size = None;
    if max_original / min_original * size > f64::from(longest_edge) {
        let raw = f64::from(longest_edge) * min_original / max_original;
        raw_size = Some(raw);
        size = raw.round_ties_even();
    }
    // `size` is an integer from here on (Python int), so these float comparisons are exact.
    if (height <= width && height == size) || (width <= height && width == size) {
        return (w, h);
    }
    // Python `int(size * long / short)`: an exact integer product, then a correctly rounded
    // division — the same as dividing the two exact f64 values.
    let long_side = |long: f64, short: f64| match raw_size {
        Some(raw) => (raw * long / short) as u32,
        None => (size * long / short) as u32,
    };
    if width < height {
        (size as u32, long_side(height, width))
    } else {
        (long_side(width, height), size as u32)
    }
}

/// Per channel, the float32 each uint8 value becomes — the whole rescale + normalise step is a
/// function of (channel, value), so a 3 × 256 table reproduces it exactly.
fn normalise_table(cfg: &DetrPreprocess) -> [[f32; 256]; 3] {
    let mut table = [[0f32; 256]; 3];
    for (c, row) in table.iter_mut().enumerate() {
        match cfg.processor {
            Processor::Torchvision => {
                // transformers' torchvision backend fuses rescale into normalise:
                // mean·(1/rescale_factor), std·(1/rescale_factor) on float32 tensors (the scalar
                // 255.00000000000003 becomes 255f32), then `(x.float() − m) / s` in float32.
                let m = cfg.mean[c] * 255.0f32;
                let s = cfg.std[c] * 255.0f32;
                for (v, out) in row.iter_mut().enumerate() {
                    *out = (v as f32 - m) / s;
                }
            }
            Processor::Pil => {
                // `rescale`: `image.astype(float64) * (1/255)` then `.astype(float32)`;
                // `normalize`: `(image − float32(mean)) / float32(std)` in float32.
                for (v, out) in row.iter_mut().enumerate() {
                    let x = (v as f64 * (1.0 / 255.0)) as f32;
                    *out = (x - cfg.mean[c]) / cfg.std[c];
                }
            }
        }
    }
    table
}

/// Resize + rescale + normalise one image, exactly as the chosen processor does (no padding).
///
/// The result is the `[3, h', w']` float32 tensor the processor returns (as `pixel_values[0]`).
pub fn preprocess(img: &RgbImage, cfg: &DetrPreprocess) -> Chw {
    let (new_w, new_h) = output_size(
        img.width(),
        img.height(),
        cfg.shortest_edge,
        cfg.longest_edge,
    );
    let resized = match cfg.processor {
        Processor::Torchvision => torchvision_resize::resize_bilinear_antialias(img, new_w, new_h),
        Processor::Pil => pil::resize_bilinear(img, new_w, new_h),
    };
    let table = normalise_table(cfg);
    let raw = resized.as_raw();
    let mut data = Vec::with_capacity(raw.len());
    for (c, lut) in table.iter().enumerate() {
        data.extend(raw[c..].iter().step_by(3).map(|&v| lut[usize::from(v)]));
    }
    Chw {
        height: resized.height() as usize,
        width: resized.width() as usize,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_matches_the_reference_table() {
        // W×H pairs from shared/models/README.md (measured with transformers 5.24).
        let table = [
            ((640, 480), (1066, 800)),
            ((480, 640), (800, 1066)),
            ((640, 427), (1199, 800)),
            ((427, 640), (800, 1199)),
            ((500, 375), (1066, 800)),
            ((640, 360), (1333, 750)),
            ((640, 512), (1000, 800)),
            ((640, 525), (975, 800)),
            ((612, 612), (800, 800)),
            ((640, 640), (800, 800)),
            ((600, 400), (1200, 800)),
            ((640, 383), (1333, 798)),
        ];
        for ((w, h), want) in table {
            assert_eq!(output_size(w, h, 800, 1333), want, "{w}x{h}");
        }
    }

    #[test]
    fn output_size_edge_cases() {
        // Expected values: transformers' `get_size_with_aspect_ratio` run in Python.
        // Short side already 800 and long side within the cap: unchanged.
        assert_eq!(output_size(1000, 800, 800, 1333), (1000, 800));
        // Capped, and the capped short side equals the original short side: unchanged
        // (raw = 1333·750/1333 = 750).
        assert_eq!(output_size(1333, 750, 800, 1333), (1333, 750));
        // Downscale: 2000×1600 → short 800, long int(800·2000/1600) = 1000.
        assert_eq!(output_size(2000, 1600, 800, 1333), (1000, 800));
        // 2:1 portrait: 800·2 = 1600 > 1333 → raw 666.5, round half to even → 666,
        // long = int(666.5·2) = 1333.
        assert_eq!(output_size(300, 600, 800, 1333), (666, 1333));
        // The long side truncates `raw · long / short`: 134×68 → raw = 1333·68/134 = 676.4…,
        // short 676, long int(676.4…·134/68) = int(1332.99…) = 1332, not 1333.
        assert_eq!(output_size(134, 68, 800, 1333), (1332, 676));
        // 3:1 landscape: raw = 444.33 → 444, long int(444.33…·3) = 1333.
        assert_eq!(output_size(300, 100, 800, 1333), (1333, 444));
        // A square image: exactly 800×800 whatever its size.
        assert_eq!(output_size(1, 1, 800, 1333), (800, 800));
    }

    #[test]
    fn torchvision_constants_match_the_reference_hex() {
        // float32(float32(mean)·255) and float32(float32(std)·255) from shared/models/README.md.
        let m: Vec<u32> = IMAGENET_MEAN
            .iter()
            .map(|v| (v * 255.0f32).to_bits())
            .collect();
        let s: Vec<u32> = IMAGENET_STD
            .iter()
            .map(|v| (v * 255.0f32).to_bits())
            .collect();
        assert_eq!(m, [0x42f7599a, 0x42e88f5c, 0x42cf0f5c]);
        assert_eq!(s, [0x4269947b, 0x42647ae2, 0x42658000]);
    }
}
