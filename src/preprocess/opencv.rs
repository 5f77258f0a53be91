//! OpenCV's `cv2.resize(..., interpolation=INTER_LINEAR)` on uint8 RGB images, bit-exact.
//!
//! Mirrors OpenCV 5.0.0 (`opencv-python` 5.0.0.93, x86-64) `cv::resize` → `cv::hal::resize` →
//! `resizeGeneric_` with `HResizeLinear<uchar, int, short, 2048>` and the `uchar` specialisation of
//! `VResizeLinear`:
//!
//! * same size: a plain copy (`cv::resize` returns early);
//! * coefficients (`INTER_RESIZE_COEF_BITS = 11`): for each output column
//!   `fx = float((dx + 0.5) · scale_x − 0.5)` with `scale_x = 1 / (dst_w / src_w)` in float64,
//!   `sx = floor(fx)`, `fx −= sx` (float32); columns left of the image use `sx = 0, fx = 0`, columns at
//!   or right of the last source column use `sx = src_w − 1, fx = 0`; weights
//!   `cvRound((1 − fx) · 2048)`, `cvRound(fx · 2048)` (round half to even). Rows likewise, but the row
//!   weight is *not* reset at the borders: the source row indices are clamped instead;
//! * horizontal pass in exact integers: `H = S[sx]·a0 + S[sx + 1]·a1` (fits in i32);
//! * vertical pass with the rounding of OpenCV's SIMD kernel `VResizeLinearVec_32s8u`, which the
//!   scalar tail of the `uchar` specialisation reproduces, so it holds for every column whatever the
//!   vector width (SSE / AVX2 / AVX-512):
//!   `((b0 · (H0 >> 4)) >> 16) + ((b1 · (H1 >> 4)) >> 16) + 2) >> 2` — *not* the generic
//!   `FixedPtCast` `(H0·b0 + H1·b1 + 2^21) >> 22`, which differs by 1 on some values;
//! * an exact 2× downscale switches to `INTER_AREA` (fast 2×2 average `(a + b + c + d + 2) >> 2`);
//!   with weights 1024/1024 the formula above gives exactly that, so no special case is needed.
//!
//! Checked against cv2 5.0.0.93 on ~300 random size pairs (1…400 px, up and down, random and smooth
//! images) with `tools/make_pixel_goldens.py`'s goldens kept in `tests/data/pixels/`.

use image::RgbImage;

const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// One output coordinate's taps: source indices (already clamped) and fixed-point weights.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Taps {
    i0: usize,
    i1: usize,
    w0: i32,
    w1: i32,
}

/// OpenCV's `saturate_cast<short>(float)`: `cvRound`, i.e. round half to even.
fn fixed_weight(w: f32) -> i32 {
    (w * COEF_SCALE).round_ties_even() as i32
}

/// `fx = (float)((d + 0.5) · scale − 0.5)`, `sx = cvFloor(fx)`, `fx −= sx`.
fn source_position(d: usize, scale: f64) -> (i64, f32) {
    let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
    let s = f.floor();
    (s as i64, f - s)
}

/// Column taps: outside the image the weight goes entirely to the border column.
fn column_taps(src: usize, dst: usize) -> Vec<Taps> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let (mut s, mut f) = source_position(d, scale);
            if s < 0 {
                (s, f) = (0, 0.0);
            }
            if s >= src as i64 - 1 {
                (s, f) = (src as i64 - 1, 0.0);
            }
            let s = s as usize;
            Taps {
                i0: s,
                i1: (s + 1).min(src - 1),
                w0: fixed_weight(1.0 - f),
                w1: fixed_weight(f),
            }
        })
        .collect()
}

/// Row taps: weights from the unclamped position, row indices clamped into the image
/// (`resizeGeneric_Invoker`: `sy = clip(yofs[dy] + k, 0, src_h − 1)`).
fn row_taps(src: usize, dst: usize) -> Vec<Taps> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let (s, f) = source_position(d, scale);
            Taps {
                i0: s.clamp(0, last) as usize,
                i1: (s + 1).clamp(0, last) as usize,
                w0: fixed_weight(1.0 - f),
                w1: fixed_weight(f),
            }
        })
        .collect()
}

/// Horizontal pass of one source row into `out` (`new_w · 3` fixed-point values).
fn horizontal(row: &[u8], cols: &[Taps], out: &mut [i32]) {
    for (t, o) in cols.iter().zip(out.chunks_exact_mut(3)) {
        let p0 = &row[3 * t.i0..3 * t.i0 + 3];
        let p1 = &row[3 * t.i1..3 * t.i1 + 3];
        for c in 0..3 {
            o[c] = p0[c] as i32 * t.w0 + p1[c] as i32 * t.w1;
        }
    }
}

/// `cv2.resize(src, (new_w, new_h), interpolation=cv2.INTER_LINEAR)` for an RGB uint8 image.
///
/// # Panics
/// If either side of `src` or of the requested size is 0 (OpenCV asserts the same).
pub fn resize_linear(src: &RgbImage, new_w: u32, new_h: u32) -> RgbImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    assert!(
        w > 0 && h > 0 && new_w > 0 && new_h > 0,
        "resize_linear: empty size {w}x{h} -> {new_w}x{new_h}"
    );
    if (new_w as usize, new_h as usize) == (w, h) {
        return src.clone();
    }
    let (nw, nh) = (new_w as usize, new_h as usize);
    let cols = column_taps(w, nw);
    let rows = row_taps(h, nh);
    let raw = src.as_raw();
    let stride = 3 * w;

    // Horizontally resized rows, cached by source row: output rows only move forward, so two slots
    // hold everything the next output row needs (as OpenCV's ring of `ksize` row buffers).
    let mut a: (usize, Vec<i32>) = (usize::MAX, vec![0; 3 * nw]);
    let mut b: (usize, Vec<i32>) = (usize::MAX, vec![0; 3 * nw]);
    let fill = |slot: &mut (usize, Vec<i32>), row: usize| {
        horizontal(&raw[row * stride..(row + 1) * stride], &cols, &mut slot.1);
        slot.0 = row;
    };
    let mut out = vec![0u8; 3 * nw * nh];
    for (t, out_row) in rows.iter().zip(out.chunks_exact_mut(3 * nw)) {
        if a.0 != t.i0 {
            if b.0 == t.i0 {
                std::mem::swap(&mut a, &mut b);
            } else {
                fill(&mut a, t.i0);
            }
        }
        if t.i1 != t.i0 && b.0 != t.i1 {
            fill(&mut b, t.i1);
        }
        let h0 = &a.1;
        let h1 = if t.i1 == t.i0 { &a.1 } else { &b.1 };
        for ((o, &v0), &v1) in out_row.iter_mut().zip(h0.iter()).zip(h1.iter()) {
            let v = ((t.w0 * (v0 >> 4)) >> 16) + ((t.w1 * (v1 >> 4)) >> 16) + 2;
            *o = (v >> 2).clamp(0, 255) as u8;
        }
    }
    RgbImage::from_raw(new_w, new_h, out).expect("3 bytes per pixel")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 90, 7]));
        assert_eq!(resize_linear(&img, 5, 3), img);
    }

    /// Hand-derived: 2 → 4 columns, scale 0.5: fx = −0.25, 0.25, 0.75, 1.25 → taps
    /// (0, w 2048/0) [left border], (0→1, 1536/512), (0→1, 512/1536), (1, 2048/0) [right border].
    #[test]
    fn column_taps_of_a_2x_upscale() {
        let t = column_taps(2, 4);
        let got: Vec<_> = t.iter().map(|t| (t.i0, t.i1, t.w0, t.w1)).collect();
        assert_eq!(
            got,
            vec![
                (0, 1, 2048, 0),
                (0, 1, 1536, 512),
                (0, 1, 512, 1536),
                (1, 1, 2048, 0)
            ]
        );
        // Rows keep the unclamped weights and clamp the indices instead.
        let r = row_taps(2, 4);
        let got: Vec<_> = r.iter().map(|t| (t.i0, t.i1, t.w0, t.w1)).collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 512, 1536),
                (0, 1, 1536, 512),
                (0, 1, 512, 1536),
                (1, 1, 1536, 512)
            ]
        );
    }

    /// A constant image stays constant, except where OpenCV's `>> 4` / `>> 16` truncation loses a
    /// level: value 255 in the middle rows of a 2× upscale: ((1536·(522240>>4))>>16) +
    /// ((512·32640)>>16) = 765 + 255 = 1020 → (1020 + 2) >> 2 = 255.
    #[test]
    fn constant_image_upscaled() {
        let img = RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 128]));
        let out = resize_linear(&img, 4, 4);
        assert!(out.pixels().all(|p| p.0 == [255, 0, 128]), "{out:?}");
    }
}
