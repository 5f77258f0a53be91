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

use image::RgbImage;

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

#[cfg(test)]
mod tests {
    use super::*;

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
