//! The `detr` family (Hugging Face transformers DETR): `pixel_values` input, `logits` + `pred_boxes`.
//!
//! Post-processing mirrors transformers 5 `DetrImageProcessor.post_process_object_detection`
//! (`models/detr/image_processing_detr.py`; the PIL processor shares it) with
//! `center_to_corners_format` (`image_transforms.py`).

use crate::boxes::BoxXyxy;
use crate::detect::Detection;

/// One image's `logits` `[queries, slots]` and `pred_boxes` `[queries, 4]` → boxes, as
/// `post_process_object_detection(threshold, target_sizes=[(h, w)])` does: NOT clipped (the library
/// does not clip; the detector clips afterwards), in query order.
///
/// Per query: `prob = softmax(logits)` ([`softmax`]); `score, label = prob[:-1].max()` (the last,
/// "no object", slot dropped; first maximum on ties); boxes `(cx − 0.5·w, cy − 0.5·h, cx + 0.5·w,
/// cy + 0.5·h) · [W, H, W, H]` in float32; keep `score > threshold` (float32 comparison). The label
/// is the slot index (the COCO category id for COCO DETR models).
///
/// # Panics
/// If the slices do not have `queries × slots` and `queries × 4` values, or `slots < 2`.
pub fn postprocess(
    logits: &[f32],
    pred_boxes: &[f32],
    queries: usize,
    slots: usize,
    threshold: f32,
    orig_w: u32,
    orig_h: u32,
) -> Vec<Detection> {
    assert_eq!(
        logits.len(),
        queries * slots,
        "DETR logits are not [{queries}, {slots}]"
    );
    assert_eq!(
        pred_boxes.len(),
        queries * 4,
        "DETR pred_boxes are not [{queries}, 4]"
    );
    assert!(
        slots >= 2,
        "DETR logits need a class slot and the no-object slot"
    );
    // `torch.Tensor([h])`, `torch.Tensor([w])`: float32.
    let (w, h) = (orig_w as f32, orig_h as f32);
    let mut prob = vec![0f32; slots];
    let mut out = Vec::new();
    for (row, b) in logits.chunks_exact(slots).zip(pred_boxes.chunks_exact(4)) {
        softmax(row, &mut prob);
        let (mut score, mut label) = (prob[0], 0usize);
        let mut nan = score.is_nan();
        for (j, &p) in prob[..slots - 1].iter().enumerate().skip(1) {
            // torch `max(dim)`: replace on `!(p <= max)`; a NaN stops the scan and wins.
            if nan {
                break;
            }
            if p > score || p.is_nan() {
                score = p;
                label = j;
                nan = p.is_nan();
            }
        }
        let keep = score > threshold;
        if !keep {
            continue;
        }
        let (cx, cy, bw, bh) = (b[0], b[1], b[2], b[3]);
        let (hw, hh) = (0.5 * bw, 0.5 * bh);
        out.push(Detection {
            bbox: BoxXyxy {
                xmin: (cx - hw) * w,
                ymin: (cy - hh) * h,
                xmax: (cx + hw) * w,
                ymax: (cy + hh) * h,
            },
            score,
            class_id: label as i32,
        });
    }
    out
}

/// `torch.nn.functional.softmax(x, -1)` for one float32 row, in the operation order of torch's CPU
/// kernel (`aten/src/ATen/native/cpu/SoftMaxKernel.cpp`, `_vec_softmax_lastdim`): `m = max(x)`;
/// `e = exp(x − m)`; `s = Σ e` accumulated as an AVX2 build does (8 lane sums, lane `k` taking
/// elements `k, k + 8, …`, then combined as `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`;
/// rows shorter than 8 summed left to right);
/// `out = e · (1 / s)`. torch's vectorised `exp` (SLEEF, ≤ 1 ulp) and the platform `expf` can differ
/// by an ulp, so scores agree to float32 rounding, not always to the bit.
///
/// # Panics
/// If `out` is shorter than `x`.
pub fn softmax(x: &[f32], out: &mut [f32]) {
    let out = &mut out[..x.len()];
    // `vec::maximum` propagates NaN.
    let mut m = f32::NEG_INFINITY;
    for &v in x {
        if v.is_nan() || m.is_nan() {
            m = f32::NAN;
        } else if v > m {
            m = v;
        }
    }
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - m).exp();
    }
    let s = if out.len() < 8 {
        // `reduce_all` on less than one vector: a plain left-to-right sum.
        out.iter().fold(0.0, |a, &e| a + e)
    } else {
        let mut lanes = [0f32; 8];
        lanes.copy_from_slice(&out[..8]);
        for (k, &e) in out.iter().enumerate().skip(8) {
            lanes[k % 8] += e;
        }
        ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
            + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
    };
    let r = 1.0 / s;
    for o in out.iter_mut() {
        *o *= r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_by_hand() {
        // ln 1, ln 3 → 1/4, 3/4 (up to float32 rounding of ln 3 and exp).
        let mut p = [0f32; 2];
        softmax(&[0.0, 3f32.ln()], &mut p);
        assert!(
            (p[0] - 0.25).abs() < 1e-7 && (p[1] - 0.75).abs() < 1e-7,
            "{p:?}"
        );
        // Equal logits: exactly uniform (exp(0) = 1, 1/4 exact).
        let mut p = [0f32; 4];
        softmax(&[7.5; 4], &mut p);
        assert_eq!(p, [0.25; 4]);
        // Shifting by the max keeps huge logits finite.
        let mut p = [0f32; 2];
        softmax(&[1000.0, 1000.0], &mut p);
        assert_eq!(p, [0.5, 0.5]);
    }
}
