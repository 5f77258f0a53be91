//! The research's CLIP image input of a box: crop the decoded image, then OpenAI CLIP's
//! `_transform` re-implemented on tensors (`../shared/docs/training-research.md` §3, report cell
//! 66), bit-exact with torch 2.15 / torchvision 0.29 on AVX2/AVX512 CPUs.
//!
//! ```text
//! xyxy ─▶ CropBox (xywh, each rounded half to even) ─▶ uint8 crop, zero-filled outside the image
//!      ─▶ /255 ─▶ Resize(shorter side, BICUBIC, antialias) ─▶ CenterCrop ─▶ Normalize(mean, std)
//! ```

use image::RgbImage;

use crate::boxes::BoxXyxy;
use crate::preprocess::Chw;
use crate::preprocess::torchvision_resize::resize_bicubic_antialias_window;

/// OpenAI CLIP's image mean (`clip.clip._transform`), RGB.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI CLIP's image std (`clip.clip._transform`), RGB.
// The digits as CLIP writes them (torch rounds them to float32 in Normalize, as this does).
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Why a box has no CLIP input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CropError {
    #[error("box {0:?} has a coordinate that is NaN or infinite")]
    NonFinite(BoxXyxy),
    #[error("box {box_xyxy:?} rounds to an empty crop (x {x}, y {y}, width {w}, height {h})")]
    Empty {
        box_xyxy: BoxXyxy,
        x: i32,
        y: i32,
        w: i32,
        h: i32,
    },
}

/// The integer rectangle `torchvision.transforms.functional.crop(img, top=y, left=x, height=h,
/// width=w)` is given: `box_convert(xyxy, "xyxy", "xywh").round().int()` on a float32 tensor, i.e.
/// `w = xmax − xmin` in float32, then x, y, w and h each rounded half to even (`torch.round`)
/// independently, so the right edge is `round(x) + round(w)`, not `round(xmax)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CropBox {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl CropBox {
    /// The research's rounding of `b`; an empty (or inverted) rectangle is an error, as torch's
    /// resize would refuse it.
    pub fn from_xyxy(b: &BoxXyxy) -> Result<CropBox, CropError> {
        let all = [b.xmin, b.ymin, b.xmax, b.ymax];
        if !all.iter().all(|v| v.is_finite()) {
            return Err(CropError::NonFinite(*b));
        }
        // float32 → int32 like `.int()`; a finite box of image scale is far inside i32's range.
        let r = |v: f32| v.round_ties_even() as i32;
        let (x, y, w, h) = (r(b.xmin), r(b.ymin), r(b.width()), r(b.height()));
        if w <= 0 || h <= 0 {
            return Err(CropError::Empty {
                box_xyxy: *b,
                x,
                y,
                w,
                h,
            });
        }
        Ok(CropBox { x, y, w, h })
    }

    /// The whole image, `[0, 0, W, H]`.
    pub fn whole(img: &RgbImage) -> CropBox {
        CropBox {
            x: 0,
            y: 0,
            w: img.width() as i32,
            h: img.height() as i32,
        }
    }

    /// Zeros the crop adds outside an image of `width` × `height`: left, top, right, bottom.
    pub fn padding_ltrb(&self, width: u32, height: u32) -> [i32; 4] {
        [
            (-self.x).max(0),
            (-self.y).max(0),
            (self.x + self.w - width as i32).max(0),
            (self.y + self.h - height as i32).max(0),
        ]
    }
}

/// A uint8 crop as a `[3, h, w]` tensor (channel-major, C order), what `torchvision`'s `crop`
/// returns for a `read_image` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct CropU8 {
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

/// `img[:, y:y+h, x:x+w]` with every pixel outside the image zero (torchvision's tensor `crop`
/// pads with 0 instead of clamping the box).
pub fn crop(img: &RgbImage, b: CropBox) -> CropU8 {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let (w, h) = (b.w as usize, b.h as usize);
    let plane = w * h;
    let mut data = vec![0u8; 3 * plane];
    let x0 = i64::from(b.x).max(0);
    let x1 = (i64::from(b.x) + i64::from(b.w)).min(iw);
    let raw = img.as_raw();
    if x1 > x0 {
        for cy in 0..h {
            let sy = i64::from(b.y) + cy as i64;
            if sy < 0 || sy >= ih {
                continue;
            }
            for sx in x0..x1 {
                let cx = (sx - i64::from(b.x)) as usize;
                let p = ((sy * iw + sx) * 3) as usize;
                for c in 0..3 {
                    data[c * plane + cy * w + cx] = raw[p + c];
                }
            }
        }
    }
    CropU8 {
        height: h,
        width: w,
        data,
    }
}

/// `Resize(size)` with an int size: the shorter side becomes `size`, the longer
/// `int(size · long / short)` (Python true division, truncated); returns (height, width).
/// torchvision 0.29 `_compute_resized_output_size`.
pub fn resized_hw(height: usize, width: usize, size: usize) -> (usize, usize) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = ((size * long) as f64 / short as f64) as usize;
    if width <= height {
        (new_long, size)
    } else {
        (size, new_long)
    }
}

/// What a CLIP image encoder takes: its input side and normalisation (from the encoder spec).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipTransform {
    pub size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ClipTransform {
    /// OpenAI CLIP at 224 px (RN50).
    pub const OPENAI_224: ClipTransform = ClipTransform {
        size: 224,
        mean: CLIP_MEAN,
        std: CLIP_STD,
    };

    /// `Compose([ConvertImageDtype(float), Resize(size, BICUBIC, antialias=True),
    /// CenterCrop(size), Normalize(mean, std)])` on the uint8 crop → float32 `[3, size, size]`.
    pub fn apply(&self, crop: &CropU8) -> Chw {
        // ConvertImageDtype(float): float32(u8) / 255, one IEEE division per value.
        let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0f32);
        let float = Chw {
            height: crop.height,
            width: crop.width,
            data: crop.data.iter().map(|&v| lut[v as usize]).collect(),
        };
        let (rh, rw) = resized_hw(crop.height, crop.width, self.size);
        // CenterCrop: offsets `int(round((size − crop) / 2.0))`, Python's half-to-even round;
        // only that window of the resize is computed (the same values, bit for bit).
        let off = |n: usize| ((n - self.size) as f64 / 2.0).round_ties_even() as usize;
        let (top, left) = (off(rh), off(rw));
        let n = self.size;
        let window = resize_bicubic_antialias_window(&float, rw, rh, top..top + n, left..left + n);
        let mut data = window.data;
        for (c, plane) in data.chunks_exact_mut(n * n).enumerate() {
            // Normalize: `tensor.sub_(mean).div_(std)`, float32 subtraction then division.
            let (m, s) = (self.mean[c], self.std[c]);
            plane.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
        Chw {
            height: n,
            width: n,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(xmin: f32, ymin: f32, xmax: f32, ymax: f32) -> BoxXyxy {
        BoxXyxy::from_array([xmin, ymin, xmax, ymax])
    }

    #[test]
    fn rounding_is_half_to_even_per_coordinate() {
        // x 2.5 → 2, y 3.5 → 4, w = 10.5 − 2.5 = 8 → 8, h = 9 − 3.5 = 5.5 → 6; right edge 2 + 8.
        let c = CropBox::from_xyxy(&bx(2.5, 3.5, 10.5, 9.0)).unwrap();
        assert_eq!(
            c,
            CropBox {
                x: 2,
                y: 4,
                w: 8,
                h: 6
            }
        );
        // The reference's two proposals 561.6522 and 562.4332 both give x = 562.
        let a = CropBox::from_xyxy(&bx(561.6522, 0.0, 640.0, 124.0)).unwrap();
        let b = CropBox::from_xyxy(&bx(562.4332, 0.0, 640.0, 124.0)).unwrap();
        assert_eq!((a.x, b.x), (562, 562));
        assert!(matches!(
            CropBox::from_xyxy(&bx(1.0, 1.0, 1.4, 5.0)),
            Err(CropError::Empty { w: 0, .. })
        ));
        assert!(CropBox::from_xyxy(&bx(f32::NAN, 1.0, 1.4, 5.0)).is_err());
    }

    #[test]
    fn crop_zero_fills_outside_the_image() {
        // 2×2 image, R = 10·(y·2 + x) + 1, G = R + 1, B = R + 2.
        let img = RgbImage::from_fn(2, 2, |x, y| {
            let r = 10 * (y * 2 + x) as u8 + 1;
            image::Rgb([r, r + 1, r + 2])
        });
        let b = CropBox {
            x: -1,
            y: 1,
            w: 3,
            h: 2,
        };
        assert_eq!(b.padding_ltrb(2, 2), [1, 0, 0, 1]);
        let c = crop(&img, b);
        assert_eq!((c.height, c.width), (2, 3));
        // Row 0 = image row 1: [0, px(0,1), px(1,1)]; row 1 is below the image.
        assert_eq!(&c.data[0..6], &[0, 21, 31, 0, 0, 0]);
        assert_eq!(&c.data[6..12], &[0, 22, 32, 0, 0, 0]);
        assert_eq!(&c.data[12..18], &[0, 23, 33, 0, 0, 0]);
    }

    #[test]
    fn resized_size_truncates_the_longer_side() {
        // 224 · 640 / 427 = 335.7 → 335; square stays square; 17×300 → 224 × 3952.
        assert_eq!(resized_hw(427, 640, 224), (224, 335));
        assert_eq!(resized_hw(640, 427, 224), (335, 224));
        assert_eq!(resized_hw(50, 50, 224), (224, 224));
        assert_eq!(resized_hw(300, 17, 224), (3952, 224));
    }

    #[test]
    fn constant_crop_normalises_to_a_constant() {
        // Keys weights sum to 1 after normalisation, so a constant stays (nearly) constant; then
        // (v − mean) / std.
        let c = CropU8 {
            height: 30,
            width: 50,
            data: vec![128; 3 * 30 * 50],
        };
        let t = ClipTransform::OPENAI_224.apply(&c);
        assert_eq!((t.height, t.width, t.data.len()), (224, 224, 3 * 224 * 224));
        let want = (128.0f32 / 255.0 - CLIP_MEAN[0]) / CLIP_STD[0];
        assert!(t.data[..224 * 224].iter().all(|v| (v - want).abs() < 1e-5));
    }
}
