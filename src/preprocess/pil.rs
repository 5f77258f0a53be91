//! Pillow's `Image.resize(size, resample=BILINEAR)` on RGB uint8 images, bit-exact.
//!
//! Pillow 13.0 `src/libImaging/Resample.c` (`ImagingResampleInner`): a separable convolution in
//! two passes with a uint8 image in between; normally the horizontal pass first (over only the source
//! rows the vertical pass reads), but the vertical pass first when the height shrinks by more than
//! twice as many pixels as the width (new in 13.0, absent from 12.x); a pass whose dimension does
//! not change is skipped, and an unchanged size is a plain copy. The triangle filter is stretched by the scale when downscaling
//! (antialiasing). Weights are computed in `f64`, normalised to sum 1, then turned into fixed point;
//! each output value is `clamp((2^(p-1) + Σ pixel·weight) >> p, 0, 255)`.
//!
//! torch's native uint8 antialiased kernel is the same algorithm ("bounds approach as in PIL") with
//! other fixed-point weights, so the shared pieces here are `pub(crate)` and
//! [`crate::preprocess::torchvision_resize`] reuses them.

use image::RgbImage;

/// Fixed-point fraction bits of Pillow's 8-bit resampling coefficients: `PRECISION_BITS = 32 - 8 - 2`.
const PILLOW_PRECISION_BITS: u32 = 32 - 8 - 2;

/// The triangle filter both libraries use for BILINEAR (`bilinear_filter` in Resample.c,
/// `HelperInterpLinear::aa_filter` in torch): support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// The `f64` weights of one resampling pass along one axis: for every output index the first input
/// index, the number of taps and `ksize` weight slots (unused slots are 0).
#[derive(Debug, Clone)]
pub(crate) struct PassWeights {
    /// Weight slots per output index (`ceil(support) * 2 + 1`).
    pub ksize: usize,
    /// `(first input index, taps)` per output index.
    pub bounds: Vec<(usize, usize)>,
    /// `bounds.len() * ksize` normalised weights.
    pub weights: Vec<f64>,
}

impl PassWeights {
    /// Pillow's `precompute_coeffs(in_size, 0, in_size, out_size, &BILINEAR)`, which torch's
    /// `_compute_indices_min_size_weights_aa` (antialias=True, align_corners=False, no explicit
    /// scale) reproduces operation for operation: `scale = in/out`, `support = 1·max(scale, 1)`,
    /// `center = (i + 0.5)·scale`, `xmin = max(trunc(center − support + 0.5), 0)`,
    /// `xmax = min(trunc(center + support + 0.5), in)`, `w_j = tri((j + xmin − center + 0.5) / max(scale, 1))`,
    /// each weight divided by their sum (when the sum is not 0).
    pub fn bilinear(in_size: usize, out_size: usize) -> PassWeights {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let inv = 1.0 / filterscale;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0.0f64; out_size * ksize];
        for (i, k) in weights.chunks_exact_mut(ksize).enumerate() {
            let center = (i as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero; the clamp to 0 comes after, as in both sources.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            // torch clamps the tap count to the slot count ("rare cases ... due to precision");
            // in Pillow that case would overrun its buffer, so the clamp never changes a Pillow result.
            let taps = (xmax - xmin).clamp(0, ksize as i64) as usize;
            let xmin = xmin as usize;
            let mut total = 0.0;
            for (j, w) in k[..taps].iter_mut().enumerate() {
                *w = triangle(((j + xmin) as f64 - center + 0.5) * inv);
                total += *w;
            }
            if total != 0.0 {
                for w in &mut k[..taps] {
                    *w /= total;
                }
            }
            bounds.push((xmin, taps));
        }
        PassWeights {
            ksize,
            bounds,
            weights,
        }
    }

    /// The largest normalised weight (torch's `wt_max`, which picks its fixed-point precision).
    pub fn max_weight(&self) -> f64 {
        self.weights.iter().copied().fold(0.0, f64::max)
    }

    /// Weights as fixed point with `precision` fraction bits, rounded half away from zero the way
    /// both libraries do it: `(int)(±0.5 + w · 2^precision)`.
    pub fn to_fixed(&self, precision: u32) -> FixedWeights {
        let one = (1u64 << precision) as f64;
        let weights = self
            .weights
            .iter()
            .map(|&w| {
                let v = w * one;
                (if v < 0.0 { -0.5 + v } else { 0.5 + v }) as i32
            })
            .collect();
        FixedWeights {
            precision,
            ksize: self.ksize,
            bounds: self.bounds.clone(),
            weights,
        }
    }
}

/// One pass's weights in fixed point.
#[derive(Debug, Clone)]
pub(crate) struct FixedWeights {
    /// Fraction bits.
    pub precision: u32,
    /// Weight slots per output index.
    pub ksize: usize,
    /// `(first input index, taps)` per output index.
    pub bounds: Vec<(usize, usize)>,
    /// `bounds.len() * ksize` fixed-point weights.
    pub weights: Vec<i32>,
}

impl FixedWeights {
    /// `clamp(acc >> precision, 0, 255)`: Pillow's `clip8` (a table indexed by the arithmetic shift)
    /// and torch's `std::clamp(output >> weights_precision, 0, 255)` alike.
    #[inline]
    fn clip(&self, acc: i32) -> u8 {
        (acc >> self.precision).clamp(0, 255) as u8
    }
}

/// The horizontal pass over source rows `rows` (`ImagingResampleHorizontal_8bpc`): a new image
/// `bounds.len()` wide (at least 1) and `rows.len()` high.
pub(crate) fn horizontal_pass(
    src: &RgbImage,
    rows: std::ops::Range<usize>,
    fw: &FixedWeights,
) -> RgbImage {
    let in_w = src.width() as usize;
    let out_w = fw.bounds.len();
    let half = 1i32 << (fw.precision - 1);
    let n_rows = rows.len();
    let mut out = vec![0u8; out_w * n_rows * 3];
    let src = src.as_raw();
    for (out_row, y) in out.chunks_exact_mut(out_w * 3).zip(rows) {
        let row = &src[y * in_w * 3..(y + 1) * in_w * 3];
        for (x, px) in out_row.chunks_exact_mut(3).enumerate() {
            let (xmin, taps) = fw.bounds[x];
            let k = &fw.weights[x * fw.ksize..x * fw.ksize + taps];
            let (mut r, mut g, mut b) = (half, half, half);
            for (s, &w) in row[xmin * 3..(xmin + taps) * 3].chunks_exact(3).zip(k) {
                r += i32::from(s[0]) * w;
                g += i32::from(s[1]) * w;
                b += i32::from(s[2]) * w;
            }
            px[0] = fw.clip(r);
            px[1] = fw.clip(g);
            px[2] = fw.clip(b);
        }
    }
    RgbImage::from_raw(out_w as u32, n_rows as u32, out).expect("buffer sized from its dimensions")
}

/// The vertical pass (`ImagingResampleVertical_8bpc`) over an image at least 1 wide; `row_offset` is subtracted from every
/// first-row index (the horizontal pass may have kept only the rows in use).
pub(crate) fn vertical_pass(src: &RgbImage, row_offset: usize, fw: &FixedWeights) -> RgbImage {
    let stride = src.width() as usize * 3;
    let out_h = fw.bounds.len();
    let half = 1i32 << (fw.precision - 1);
    let src = src.as_raw();
    let mut out = vec![0u8; stride * out_h];
    let mut acc = vec![0i32; stride];
    for (y, out_row) in out.chunks_exact_mut(stride).enumerate() {
        let (ymin, taps) = fw.bounds[y];
        let ymin = ymin - row_offset;
        acc.fill(half);
        for (t, &w) in fw.weights[y * fw.ksize..y * fw.ksize + taps]
            .iter()
            .enumerate()
        {
            let row = &src[(ymin + t) * stride..(ymin + t + 1) * stride];
            for (a, &s) in acc.iter_mut().zip(row) {
                *a += i32::from(s) * w;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = fw.clip(a);
        }
    }
    RgbImage::from_raw(stride as u32 / 3, out_h as u32, out)
        .expect("buffer sized from its dimensions")
}

/// `PIL.Image.resize((new_w, new_h), resample=Image.BILINEAR)` (Pillow 13.0), antialiased on downscale.
///
/// No `box`, no `reducing_gap` (the defaults, as transformers' `resize` calls it). A zero target
/// dimension gives an empty image.
pub fn resize_bilinear(src: &RgbImage, new_w: u32, new_h: u32) -> RgbImage {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let (out_w, out_h) = (new_w as usize, new_h as usize);
    if (out_w, out_h) == (in_w, in_h) {
        // `Image.resize` returns `self.copy()` for an unchanged size.
        return src.clone();
    }
    if out_w == 0 || out_h == 0 || in_w == 0 || in_h == 0 {
        return RgbImage::new(new_w, new_h);
    }
    let need_horizontal = out_w != in_w;
    let need_vertical = out_h != in_h;
    let vert = PassWeights::bilinear(in_h, out_h).to_fixed(PILLOW_PRECISION_BITS);
    let horiz = PassWeights::bilinear(in_w, out_w).to_fixed(PILLOW_PRECISION_BITS);
    // Pillow 13.0 runs the vertical pass first when the height shrinks by more than twice as many
    // pixels as the width does: `!((in_h - h) > 0 && (in_h - h) > (in_w - w) * 2)` → horizontal
    // first. The passes round to uint8 in between, so the order changes results.
    let (dh, dw) = (in_h as i64 - out_h as i64, in_w as i64 - out_w as i64);
    let horizontal_first = !(dh > 0 && dh > dw * 2);
    if horizontal_first {
        let mut offset = 0;
        let mut cur: Option<RgbImage> = None;
        if need_horizontal {
            // Only the source rows the vertical pass reads: from the first output's first row to
            // the last output's end.
            let first = vert.bounds[0].0;
            let (last_min, last_taps) = vert.bounds[out_h - 1];
            cur = Some(horizontal_pass(src, first..last_min + last_taps, &horiz));
            offset = first;
        }
        if need_vertical {
            let input = cur.as_ref().unwrap_or(src);
            cur = Some(vertical_pass(input, offset, &vert));
        }
        cur.expect("at least one pass runs when the size changes")
    } else {
        // Only reached when the height changes.
        let tmp = vertical_pass(src, 0, &vert);
        if need_horizontal {
            horizontal_pass(&tmp, 0..out_h, &horiz)
        } else {
            tmp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_weights_follow_the_stretched_triangle() {
        // 4 → 2: scale 2, support 2, centers 1 and 3; taps at x = 0..3 for the first output with
        // tri((x + 0.5 − 1) / 2) = 0.75, 0.75, 0.25 → normalised 3/7, 3/7, 1/7.
        let pw = PassWeights::bilinear(4, 2);
        assert_eq!(pw.ksize, 5);
        assert_eq!(pw.bounds, vec![(0, 3), (1, 3)]);
        let w = &pw.weights[..3];
        assert!((w[0] - 3.0 / 7.0).abs() < 1e-15 && (w[1] - 3.0 / 7.0).abs() < 1e-15);
        assert!((w[2] - 1.0 / 7.0).abs() < 1e-15);
    }

    #[test]
    fn unchanged_size_is_a_copy() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8, y as u8, 7]));
        assert_eq!(resize_bilinear(&img, 5, 3), img);
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(13, 7, image::Rgb([200, 0, 255]));
        for (w, h) in [(1, 1), (26, 14), (5, 20), (13, 3)] {
            let out = resize_bilinear(&img, w, h);
            assert!(out.pixels().all(|p| p.0 == [200, 0, 255]), "{w}x{h}");
        }
    }
}
