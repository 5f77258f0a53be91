//! torchvision's `resize(uint8 tensor, antialias=True, BILINEAR)`, bit-exact with torch's native
//! uint8 kernel.
//!
//! torchvision 0.29 `transforms.v2.functional.resize_image` keeps a uint8 tensor as uint8 on CPUs
//! with AVX2/AVX512 (`_do_native_uint8_resize_on_cpu`) and calls
//! `interpolate(size=[h, w], mode="bilinear", align_corners=False, antialias=True)` without a scale
//! factor. torch 2.15 then runs `upsample_avx_bilinear_bicubic_uint8`
//! (`UpSampleKernelAVXAntialias.h`; the generic `_separable_upsample_generic_Nd_kernel_impl_single_dim`
//! uint8 path uses the same weights and the same integer arithmetic): an unchanged size is a copy,
//! otherwise a horizontal pass (only when the width changes) into a uint8 buffer, then a vertical
//! pass (only when the height changes).
//!
//! Each pass's weights are Pillow's (`HelperInterpBase::_compute_indices_min_size_weights_aa`,
//! "bounds approach as in PIL"), but the fixed point differs: `_compute_index_ranges_int16_weights`
//! stores them as int16 with a precision chosen per pass from the largest weight, the largest `p < 22`
//! with `(int)(0.5 + wt_max · 2^(p+1)) < 2^15` — e.g. 15 bits for 2 → 1 (max weight 0.5)
//! but 14 bits when upscaling (max weight near 1) — where Pillow always uses 22 bits. That is what
//! makes the two resizes differ by ±1 on about 0.02 % of values.
//!
//! [`resize_bicubic_antialias_window`] is the float32 counterpart for `BICUBIC` (what CLIP's tensor
//! transform runs on crops converted to float): the same "bounds approach", but torch computes the
//! float kernel's bounds and weights in float32 (`scalar_t = float`) where the uint8 kernel uses
//! double and fixed point, so the two share the algorithm, not the arithmetic.

use image::RgbImage;

use crate::preprocess::Chw;
use crate::preprocess::pil::{FixedWeights, PassWeights, horizontal_pass, vertical_pass};

/// The int16 weight precision `_compute_index_ranges_int16_weights` picks for a pass whose largest
/// normalised weight is `wt_max`.
fn int16_precision(wt_max: f64) -> u32 {
    let mut precision = 0;
    while precision < 22 {
        let next_value = (0.5 + wt_max * (1u64 << (precision + 1)) as f64) as i32;
        if next_value >= 1 << 15 {
            break;
        }
        precision += 1;
    }
    precision
}

/// One pass's weights as torch stores them for uint8 input.
fn int16_weights(in_size: usize, out_size: usize) -> FixedWeights {
    let pw = PassWeights::bilinear(in_size, out_size);
    pw.to_fixed(int16_precision(pw.max_weight()))
}

/// `torchvision.transforms.v2.functional.resize(uint8 CHW tensor, [new_h, new_w], BILINEAR,
/// antialias=True)` (torch 2.15 / torchvision 0.29 native uint8 kernel, as on AVX2 CPUs).
///
/// A zero target dimension gives an empty image (torch would refuse it).
pub fn resize_bilinear_antialias(src: &RgbImage, new_w: u32, new_h: u32) -> RgbImage {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let (out_w, out_h) = (new_w as usize, new_h as usize);
    if (out_w, out_h) == (in_w, in_h) {
        return src.clone();
    }
    if out_w == 0 || out_h == 0 || in_w == 0 || in_h == 0 {
        return RgbImage::new(new_w, new_h);
    }
    let mut cur: Option<RgbImage> = None;
    if out_w != in_w {
        // torch resamples every row; the rows are independent, so all of them is the same as
        // Pillow's "only the rows in use" — here all rows, since the vertical pass may need them.
        cur = Some(horizontal_pass(src, 0..in_h, &int16_weights(in_w, out_w)));
    }
    if out_h != in_h {
        let input = cur.as_ref().unwrap_or(src);
        cur = Some(vertical_pass(input, 0, &int16_weights(in_h, out_h)));
    }
    cur.expect("at least one pass runs when the size changes")
}

/// Keys' cubic convolution kernel with `a = -0.5`, torch's `HelperInterpCubic::aa_filter`
/// (`UpSampleKernel.cpp`, torch 2.15) as GCC compiles it for the AVX2/AVX512 kernels: the nested
/// polynomials `((a + 2)x − (a + 3))x² + 1` and `((ax − 5a)x + 8a)x − 4a` with fused multiply-adds
/// where the compiler fused them (as `../shared/reference/tools/clip_preprocess_numpy.py` pins them).
fn keys_cubic(x: f32) -> f32 {
    const A: f32 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0).mul_add(x, -(A + 3.0)) * x).mul_add(x, 1.0)
    } else if x < 2.0 {
        A.mul_add(x, -(5.0 * A))
            .mul_add(x, 8.0 * A)
            .mul_add(x, -(4.0 * A))
    } else {
        0.0
    }
}

/// One axis of torch's float32 antialiased bicubic resampling: `(first input index, weights)` per
/// output index, from `HelperInterpBase::_compute_indices_min_size_weights_aa` with
/// `scalar_t = float`, `align_corners=False` and no explicit scale (torchvision passes a size).
fn bicubic_aa_weights(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f32>)> {
    // `area_pixel_compute_scale`: in / out, a float32 division.
    let scale = in_size as f32 / out_size as f32;
    // `support = interp_size / 2 * scale` when downscaling (interp_size 4), else 2; invscale is
    // `1.0 / scale` computed in double and stored as float.
    let (support, invscale) = if scale >= 1.0 {
        (
            (2.0 * f64::from(scale)) as f32,
            (1.0 / f64::from(scale)) as f32,
        )
    } else {
        (2.0f32, 1.0f32)
    };
    let max_taps = f64::from(support).ceil() as i64 * 2 + 1;
    (0..out_size)
        .map(|i| {
            // `center = scale * (i + 0.5)`: float times double, stored as float.
            let center = (f64::from(scale) * (i as f64 + 0.5)) as f32;
            // `(int64_t)(center - support + 0.5)`: the float difference, then + 0.5 in double,
            // truncated toward zero, then clamped.
            let xmin = ((f64::from(center - support) + 0.5) as i64).max(0);
            let xmax = ((f64::from(center + support) + 0.5) as i64).min(in_size as i64);
            let taps = (xmax - xmin).clamp(0, max_taps) as usize;
            let xmin = xmin as usize;
            let mut w: Vec<f32> = (0..taps)
                .map(|j| {
                    let d = (j + xmin) as f32 - center;
                    keys_cubic(((f64::from(d) + 0.5) * f64::from(invscale)) as f32)
                })
                .collect();
            let total = w.iter().fold(0.0f32, |t, &v| t + v);
            if total != 0.0 {
                for v in &mut w {
                    *v /= total;
                }
            }
            (xmin, w)
        })
        .collect()
}

/// `Σ_j src[j]·w[j]` in torch's order and roundings: the first product alone, then of the
/// remaining `m` terms the first `4·⌊m/4⌋` as rounded products added in order, the last `m mod 4`
/// as fused multiply-adds (GCC's vectorised loop with its scalar remainder in
/// `basic_loop_aa_horizontal` / `_vertical`, torch 2.15 AVX2/AVX512 builds).
#[inline(always)]
fn aa_dot(src: impl Iterator<Item = f32>, w: &[f32]) -> f32 {
    let unfused = (w.len().saturating_sub(1)) / 4 * 4;
    let mut acc = 0.0f32;
    // `w` drives the zip, so `src` is never asked for an element past the taps.
    for (j, (&wj, s)) in w.iter().zip(src).enumerate() {
        acc = if j == 0 {
            s * wj
        } else if j <= unfused {
            acc + s * wj
        } else {
            s.mul_add(wj, acc)
        };
    }
    acc
}

/// Rows `rows` and columns `cols` of `torch.nn.functional.interpolate(x, size=(new_h, new_w),
/// mode="bicubic", align_corners=False, antialias=True)` on a float32 `[3, H, W]` tensor (torch
/// 2.15, the kernel torchvision 0.29's `Resize(..., BICUBIC, antialias=True)` runs on float
/// input), bit-exact with the AVX2/AVX512 CPU builds; the whole resize is the window
/// `0..new_h` × `0..new_w`.
///
/// Separable: along the width first (only when it changes), then along the height (only when it
/// changes), with a float32 intermediate; an unchanged size is a copy. No clamping (float input).
/// Every output value depends on its own row's and column's taps alone, so a window (CLIP's
/// centre crop) needs the width pass only on the input rows its height taps read, and only for
/// its columns. Both target sizes must be at least 1.
pub fn resize_bicubic_antialias_window(
    src: &Chw,
    new_w: usize,
    new_h: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Chw {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { window_fma(src, new_w, new_h, rows, cols) };
    }
    window(src, new_w, new_h, rows, cols)
}

/// [`window`] compiled with FMA and AVX2, so that `mul_add` is one instruction and the row loops
/// vectorise with it (without them `mul_add` is a call to libm's `fmaf`). The results are the
/// same: a fused multiply-add is exactly rounded either way, and no other operation changes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
unsafe fn window_fma(
    src: &Chw,
    new_w: usize,
    new_h: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Chw {
    window(src, new_w, new_h, rows, cols)
}

#[inline(always)]
fn window(
    src: &Chw,
    new_w: usize,
    new_h: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Chw {
    assert!(new_w > 0 && new_h > 0, "resize to an empty size");
    assert!(
        rows.start < rows.end && rows.end <= new_h && cols.start < cols.end && cols.end <= new_w,
        "window {rows:?} x {cols:?} outside {new_h} x {new_w}"
    );
    let (h, w) = (src.height, src.width);
    // The height pass's taps (per output row in `rows`), and the input rows they read.
    let height_taps = (new_h != h).then(|| {
        let mut t = bicubic_aa_weights(h, new_h);
        t.truncate(rows.end);
        t.drain(..rows.start);
        t
    });
    let in_rows = match &height_taps {
        Some(t) => {
            let lo = t.iter().map(|(m, _)| *m).min().unwrap_or(0);
            let hi = t.iter().map(|(m, w)| m + w.len()).max().unwrap_or(lo);
            lo..hi.max(lo + 1).min(h)
        }
        None => rows.clone(),
    };
    // Width pass (or the columns as they are) on those input rows: [3, in_rows, cols].
    let out_w = cols.len();
    let n_in = in_rows.len();
    let mut mid = Vec::with_capacity(3 * n_in * out_w);
    let width_taps = (new_w != w).then(|| bicubic_aa_weights(w, new_w));
    for plane in src.data.chunks_exact(h * w) {
        for row in plane.chunks_exact(w).skip(in_rows.start).take(n_in) {
            match &width_taps {
                Some(taps) => {
                    for (xmin, wt) in &taps[cols.clone()] {
                        mid.push(aa_dot(row[*xmin..].iter().copied(), wt));
                    }
                }
                None => mid.extend_from_slice(&row[cols.clone()]),
            }
        }
    }
    let Some(taps) = height_taps else {
        return Chw {
            height: n_in,
            width: out_w,
            data: mid,
        };
    };
    // Height pass, a whole output row at a time: each value gets the same operations in the same
    // order as `aa_dot` (the first product, rounded products added, the last `m mod 4` fused),
    // and the row-wide loops vectorise.
    let mut data = Vec::with_capacity(3 * rows.len() * out_w);
    let mut acc = vec![0.0f32; out_w];
    for plane in mid.chunks_exact(n_in * out_w) {
        for (ymin, wt) in &taps {
            let unfused = (wt.len().saturating_sub(1)) / 4 * 4;
            let at = |j: usize| {
                let y = ymin + j - in_rows.start;
                &plane[y * out_w..(y + 1) * out_w]
            };
            for (j, &wj) in wt.iter().enumerate() {
                let s = at(j);
                if j == 0 {
                    acc.iter_mut().zip(s).for_each(|(a, &v)| *a = v * wj);
                } else if j <= unfused {
                    acc.iter_mut().zip(s).for_each(|(a, &v)| *a += v * wj);
                } else {
                    acc.iter_mut()
                        .zip(s)
                        .for_each(|(a, &v)| *a = v.mul_add(wj, *a));
                }
            }
            if wt.is_empty() {
                acc.fill(0.0);
            }
            data.extend_from_slice(&acc);
        }
    }
    Chw {
        height: rows.len(),
        width: out_w,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel element by element, as written first: the width pass over every input row, then
    /// each output value of the height pass on its own (`aa_dot` down a column).
    fn naive(src: &Chw, new_w: usize, new_h: usize) -> Chw {
        let (h, w) = (src.height, src.width);
        let mut mid = src.data.clone();
        if new_w != w {
            let taps = bicubic_aa_weights(w, new_w);
            mid = src
                .data
                .chunks_exact(w)
                .flat_map(|row| {
                    taps.iter()
                        .map(|(m, t)| aa_dot(row[*m..].iter().copied(), t))
                })
                .collect();
        }
        let mw = if new_w != w { new_w } else { w };
        let mut data = mid.clone();
        if new_h != h {
            let taps = bicubic_aa_weights(h, new_h);
            data = Vec::new();
            for plane in mid.chunks_exact(h * mw) {
                for (m, t) in &taps {
                    for x in 0..mw {
                        data.push(aa_dot((*m..).map(|y| plane[y * mw + x]), t));
                    }
                }
            }
        }
        Chw {
            height: new_h,
            width: new_w,
            data,
        }
    }

    #[test]
    fn a_window_equals_the_same_values_of_the_whole_resize() {
        let (h, w) = (61, 97);
        let mut state = 12345u32;
        let data = (0..3 * h * w)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1 << 24) as f32
            })
            .collect();
        let src = Chw {
            height: h,
            width: w,
            data,
        };
        // Down and up in either direction, unchanged sides, and CLIP-like centre windows.
        for (nw, nh) in [
            (40, 24),
            (97, 30),
            (50, 61),
            (150, 90),
            (224, 140),
            (97, 61),
        ] {
            let full = naive(&src, nw, nh);
            for (rows, cols) in [
                (0..nh, 0..nw),
                (nh / 4..nh - nh / 4, nw / 3..nw - nw / 3),
                (nh - 1..nh, 0..1),
            ] {
                let got = resize_bicubic_antialias_window(&src, nw, nh, rows.clone(), cols.clone());
                assert_eq!((got.height, got.width), (rows.len(), cols.len()));
                let want: Vec<f32> = (0..3)
                    .flat_map(|c| {
                        let full = &full;
                        let cols = cols.clone();
                        rows.clone().flat_map(move |y| {
                            cols.clone().map(move |x| full.data[(c * nh + y) * nw + x])
                        })
                    })
                    .collect();
                let same = got
                    .data
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{nw}x{nh} window {rows:?} x {cols:?} differs");
            }
        }
    }

    #[test]
    fn precision_follows_the_largest_weight() {
        // 4 → 2: max weight 3/7; 0.5 + 3/7·2^16 = 28086 < 2^15 but 0.5 + 3/7·2^17 = 56173 is not → 16.
        assert_eq!(int16_precision(3.0 / 7.0), 16);
        // weight 1 (identity-like taps when upscaling): 0.5 + 2^15 ≥ 2^15 at p + 1 = 15 → 14.
        assert_eq!(int16_precision(1.0), 14);
        // 2 → 1: max weight 0.5; 0.5 + 0.5·2^16 = 32768 is not < 2^15 → 15.
        assert_eq!(int16_precision(0.5), 15);
        // Tiny weights saturate at 22 bits.
        assert_eq!(int16_precision(0.001), 22);
    }

    #[test]
    fn two_to_one_averages_with_int16_rounding() {
        // 2 → 1: scale 2, center 1, taps x = 0, 1 with tri(∓0.25) = 0.75 each → 0.5, 0.5;
        // precision 15 → weights 16384; (16384 + 16384·(a + b)) >> 15 = floor((a + b + 1) / 2).
        let img = RgbImage::from_raw(2, 1, vec![10, 0, 255, 13, 1, 254]).unwrap();
        let out = resize_bilinear_antialias(&img, 1, 1);
        assert_eq!(out.as_raw(), &vec![12, 1, 255]);
        let col = RgbImage::from_raw(1, 2, vec![10, 0, 255, 13, 1, 254]).unwrap();
        assert_eq!(
            resize_bilinear_antialias(&col, 1, 1).as_raw(),
            &vec![12, 1, 255]
        );
    }
}
