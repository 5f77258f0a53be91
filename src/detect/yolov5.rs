//! The `yolov5` family (ultralytics/yolov5 v7.0): letterbox input, `[B, N, 5 + C]` output.
//!
//! Post-processing mirrors `utils/general.py` of v7.0 as `detect.py` calls it:
//! `non_max_suppression(pred, conf_thres, iou_thres, classes=None, agnostic=False,
//! multi_label=False, max_det)`, then `scale_boxes(im.shape[2:], det[:, :4], im0.shape)` and
//! `.round()`; `models/common.py` `AutoShape.forward` calls the same functions with the same
//! arguments (`conf`, `iou` 0.45, `max_det` 1000 as attributes) and `scale_boxes(shape1, …)`,
//! without the rounding.

use crate::boxes::BoxXyxy;
use crate::detect::nms::{Candidate, NmsParams, class_aware_nms, xywh_to_xyxy};
use crate::detect::{Detection, clamp_like_torch};
use crate::preprocess::letterbox::LetterboxGeometry;

/// One image's `output0` rows, `[anchors, 5 + classes]` → boxes in original-image pixels, as
/// `non_max_suppression` + `scale_boxes` (+ `.round()` when `round_boxes`, as `detect.py`; not
/// AutoShape) do. `geom` is the letterbox of the convention (detect.py's fixed size or
/// AutoShape's `shape1`: `scale_boxes(shape1, …)` takes the input shape either way). `clip`:
/// `scale_boxes`' `clip_boxes` (the library always clips; `false` keeps the unclipped corners).
///
/// Output order: descending score (equal scores in anchor order, see [`crate::detect::nms`]).
///
/// # Panics
/// If `pred.len()` is not a multiple of `5 + classes`.
pub fn postprocess(
    pred: &[f32],
    classes: usize,
    params: &NmsParams,
    geom: &LetterboxGeometry,
    round_boxes: bool,
    clip: bool,
) -> Vec<Detection> {
    let candidates = candidates(pred, classes, params.conf_threshold);
    let keep = class_aware_nms(&candidates, params);
    let scale = ScaleBoxes::new(geom, clip);
    keep.into_iter()
        .map(|k| {
            let c = &candidates[k];
            let mut b = scale.apply(c.xyxy);
            if round_boxes {
                // `Tensor.round()`: half to even.
                b = b.map(f32::round_ties_even);
            }
            Detection {
                bbox: BoxXyxy::from_array(b),
                score: c.score,
                class_id: c.class as i32,
            }
        })
        .collect()
}

/// The rows that survive `non_max_suppression`'s filters, in anchor order:
/// `xc = obj > conf_thres`; `x[:, 5:] *= x[:, 4:5]` (float32); `conf, j = x[:, 5:].max(1)` (the
/// first maximum on ties); keep `conf > conf_thres`. Both comparisons are float32 against the
/// float32 threshold, as torch compares a float32 tensor with a Python float.
pub fn candidates(pred: &[f32], classes: usize, conf_threshold: f32) -> Vec<Candidate> {
    let stride = 5 + classes;
    assert!(
        pred.len().is_multiple_of(stride),
        "yolov5 output of {} values is not [anchors, 5 + {classes}]",
        pred.len()
    );
    let mut out = Vec::new();
    for row in pred.chunks_exact(stride) {
        let obj = row[4];
        let candidate = obj > conf_threshold;
        if !candidate {
            continue;
        }
        let Some((best, best_j)) = best_class(&row[5..], obj, conf_threshold) else {
            continue;
        };
        let keep = best > conf_threshold;
        if !keep {
            continue;
        }
        out.push(Candidate {
            xyxy: xywh_to_xyxy(row[0], row[1], row[2], row[3]),
            score: best,
            class: best_j as u32,
        });
    }
    out
}

/// The largest value (ignoring NaN) and whether there is a NaN, with eight independent lanes so
/// that the loop vectorises (a single running maximum is a serial dependency chain).
fn max_and_nan(xs: &[f32]) -> (f32, bool) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut nan = [false; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            lanes[k] = if c[k] > lanes[k] { c[k] } else { lanes[k] };
            nan[k] |= c[k].is_nan();
        }
    }
    let mut m = f32::NEG_INFINITY;
    let mut any_nan = false;
    for (&l, &n) in lanes
        .iter()
        .zip(&nan)
        .chain(tail.iter().map(|v| (v, &false)))
    {
        m = if l > m { l } else { m };
        any_nan |= n || l.is_nan();
    }
    (m, any_nan)
}

/// `conf, j = (cls * obj).max(0)` for one row: the largest float32 product and the index of its
/// first occurrence; `None` when a product is NaN (torch's max then returns NaN, which never passes
/// the threshold) or there are no classes. The index is only looked up for products above
/// `conf_threshold` (it is 0 otherwise; such rows are dropped).
fn best_class(cls: &[f32], obj: f32, conf_threshold: f32) -> Option<(f32, usize)> {
    if obj > 0.0 {
        // Rounding is monotonic, so for obj > 0 the largest product is (largest score) × obj:
        // one vectorisable pass, then the first index whose product equals it.
        let (m, nan) = max_and_nan(cls);
        if nan || cls.is_empty() {
            return None;
        }
        let best = m * obj;
        let kept = best > conf_threshold;
        if !kept {
            // Only the kept rows need the class index.
            return Some((best, 0));
        }
        let j = cls.iter().position(|&p| p * obj == best)?;
        Some((cls[j] * obj, j))
    } else {
        // Not reached with a threshold ≥ 0 (obj > conf_thres); kept exact anyway.
        let mut best: Option<(f32, usize)> = None;
        for (j, &p) in cls.iter().enumerate() {
            let c = p * obj;
            if c.is_nan() {
                return None;
            }
            match best {
                Some((b, _)) if c <= b => {}
                _ => best = Some((c, j)),
            }
        }
        best
    }
}

/// yolov5 v7.0 `scale_boxes(img1_shape, boxes, img0_shape)` + `clip_boxes`: one gain for both axes
/// and **unrounded** padding, unlike ultralytics 8.4:
/// `gain = min(h1 / h0, w1 / w0)`, `pad = ((w1 − w0·gain) / 2, (h1 − h0·gain) / 2)` (Python
/// floats), then in float32 `x −= pad_x`, `y −= pad_y`, `xyxy /= gain`, clamp to `[0, w0]`,
/// `[0, h0]` (when `clip`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleBoxes {
    pad_x: f32,
    pad_y: f32,
    gain: f32,
    w0: f32,
    h0: f32,
    clip: bool,
}

impl ScaleBoxes {
    /// The rescaling for `geom`'s model input (`img1_shape`) and original image (`img0_shape`);
    /// `clip`: `clip_boxes` afterwards, as the library does.
    pub fn new(geom: &LetterboxGeometry, clip: bool) -> Self {
        let (h1, w1) = (geom.input_h() as f64, geom.input_w() as f64);
        let (h0, w0) = (geom.orig_h as f64, geom.orig_w as f64);
        let gain = (h1 / h0).min(w1 / w0);
        let pad_x = (w1 - w0 * gain) / 2.0;
        let pad_y = (h1 - h0 * gain) / 2.0;
        // torch casts a Python float operand to the tensor's float32 before the in-place op.
        ScaleBoxes {
            pad_x: pad_x as f32,
            pad_y: pad_y as f32,
            gain: gain as f32,
            w0: w0 as f32,
            h0: h0 as f32,
            clip,
        }
    }

    /// One xyxy box in model-input pixels → original-image pixels, clipped when asked.
    pub fn apply(&self, b: [f32; 4]) -> [f32; 4] {
        let x1 = (b[0] - self.pad_x) / self.gain;
        let y1 = (b[1] - self.pad_y) / self.gain;
        let x2 = (b[2] - self.pad_x) / self.gain;
        let y2 = (b[3] - self.pad_y) / self.gain;
        if !self.clip {
            return [x1, y1, x2, y2];
        }
        [
            clamp_like_torch(x1, self.w0),
            clamp_like_torch(y1, self.h0),
            clamp_like_torch(x2, self.w0),
            clamp_like_torch(y2, self.h0),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_boxes_keeps_fractional_padding() {
        // 600×400 → 640×640: gain = 16/15, pad_y = (640 − 400·16/15)/2 = 106.666…, pad_x = 0.
        let g = LetterboxGeometry::new(600, 400, 640, 640);
        let s = ScaleBoxes::new(&g, true);
        assert_eq!(s.pad_x, 0.0);
        assert_eq!(s.pad_y, (320.0f64 / 3.0) as f32);
        assert_eq!(s.gain, (16.0f64 / 15.0) as f32);
        // y = 106.666… + 15 maps to 15·15/16 up to float32 rounding.
        let b = s.apply([64.0, 121.666_67, 128.0, 600.0]);
        assert_eq!(b[0], 64.0f32 / (16.0f64 / 15.0) as f32);
        assert!((b[1] - 14.0625).abs() < 1e-4, "{}", b[1]);
        assert_eq!(b[3], 400.0, "clipped to the image height");
    }
}
