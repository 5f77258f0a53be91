//! The `ultralytics` family (YOLOv8 / YOLO11, ultralytics 8.4): letterbox input, `[B, 4 + C, N]` output.
//!
//! Post-processing mirrors ultralytics 8.4 as the predictor calls it:
//! `utils/nms.py non_max_suppression(pred, conf_thres, iou_thres, classes=None, agnostic=False,
//! multi_label=False, max_det)`, then `utils/ops.py scale_boxes(img1_shape, boxes, img0_shape)`,
//! which clips.

use crate::boxes::BoxXyxy;
use crate::detect::nms::{Candidate, NmsParams, class_aware_nms, xywh_to_xyxy};
use crate::detect::{Detection, clamp_like_torch};
use crate::preprocess::letterbox::LetterboxGeometry;

/// One image's `output0` block, `[4 + classes, anchors]` → boxes in original-image pixels, as
/// `ultralytics.utils.nms.non_max_suppression` + `ops.scale_boxes` + clip do. `geom` is the
/// letterbox of the convention (fixed or `LetterBox(auto=True)`): `scale_boxes(im.shape[2:], …)`
/// takes the input shape either way. `clip`: `clip_boxes` (the library always clips).
///
/// Output order: descending score (equal scores in anchor order, see [`crate::detect::nms`]).
///
/// # Panics
/// If `pred.len() != (4 + classes) * anchors`.
pub fn postprocess(
    pred: &[f32],
    classes: usize,
    anchors: usize,
    params: &NmsParams,
    geom: &LetterboxGeometry,
    clip: bool,
) -> Vec<Detection> {
    let candidates = candidates(pred, classes, anchors, params.conf_threshold);
    let keep = class_aware_nms(&candidates, params);
    let scale = ScaleBoxes::new(geom, clip);
    keep.into_iter()
        .map(|k| {
            let c = &candidates[k];
            let b = scale.apply(c.xyxy);
            Detection {
                bbox: BoxXyxy::from_array(b),
                score: c.score,
                class_id: c.class as i32,
            }
        })
        .collect()
}

/// The anchors that survive `non_max_suppression`'s filters, in anchor order:
/// `xc = amax(classes) > conf_thres`; `conf, j = cls.max(1)` (the first maximum on ties); keep
/// `conf > conf_thres`; boxes through `xywh2xyxy`. Comparisons are float32 against the float32
/// threshold, as torch compares a float32 tensor with a Python float; a NaN class score makes
/// `amax` NaN, so that anchor is dropped.
pub fn candidates(
    pred: &[f32],
    classes: usize,
    anchors: usize,
    conf_threshold: f32,
) -> Vec<Candidate> {
    assert_eq!(
        pred.len(),
        (4 + classes) * anchors,
        "ultralytics output is not [4 + {classes}, {anchors}]"
    );
    if classes == 0 {
        return Vec::new();
    }
    // Class-major layout: a running maximum over the class rows reads memory in order and
    // vectorises; the class index is looked up afterwards, for the candidates only.
    let row = |r: usize| &pred[r * anchors..(r + 1) * anchors];
    let mut best: Vec<f32> = row(4).to_vec();
    let mut nan: Vec<u8> = best.iter().map(|v| v.is_nan() as u8).collect();
    for j in 1..classes {
        for ((b, n), &v) in best.iter_mut().zip(nan.iter_mut()).zip(row(4 + j)) {
            *b = b.max(v);
            *n |= v.is_nan() as u8;
        }
    }
    // torch's `max(dim)` replaces on `!(v <= max)`: without NaN, the index is the first class
    // whose score equals the maximum.
    let first_max = |a: usize| (0..classes).position(|j| pred[(4 + j) * anchors + a] == best[a]);
    let (cx, cy, w, h) = (row(0), row(1), row(2), row(3));
    (0..anchors)
        .filter(|&a| nan[a] == 0 && best[a] > conf_threshold)
        .map(|a| {
            let j = first_max(a).expect("the maximum is one of the scores");
            Candidate {
                xyxy: xywh_to_xyxy(cx[a], cy[a], w[a], h[a]),
                score: pred[(4 + j) * anchors + a],
                class: j as u32,
            }
        })
        .collect()
}

/// ultralytics 8.4 `scale_boxes(img1_shape, boxes, img0_shape)` (+ `clip_boxes`): the letterbox's
/// own rounding, per-axis gains:
/// `gain = min(h1 / h0, w1 / w0)`; `new_h, new_w = max(round(h0·gain), 1), max(round(w0·gain), 1)`;
/// `gain_y, gain_x = new_h / h0, new_w / w0`; `pad_x = round((w1 − new_w) / 2 − 0.1)`, same for y
/// (Python `round`: half to even); then in float32 `x −= pad_x`, `x /= gain_x`, same for y, clamp
/// to `[0, w0]`, `[0, h0]` (when `clip`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleBoxes {
    pad_x: f32,
    pad_y: f32,
    gain_x: f32,
    gain_y: f32,
    w0: f32,
    h0: f32,
    clip: bool,
}

impl ScaleBoxes {
    /// The rescaling for `geom`'s model input (`img1_shape`) and original image (`img0_shape`),
    /// recomputed from the two shapes as the library does; `clip`: `clip_boxes` afterwards.
    pub fn new(geom: &LetterboxGeometry, clip: bool) -> Self {
        let (h1, w1) = (geom.input_h() as f64, geom.input_w() as f64);
        let (h0, w0) = (geom.orig_h as f64, geom.orig_w as f64);
        let gain = (h1 / h0).min(w1 / w0);
        let new_h = (h0 * gain).round_ties_even().max(1.0);
        let new_w = (w0 * gain).round_ties_even().max(1.0);
        let pad_x = ((w1 - new_w) / 2.0 - 0.1).round_ties_even();
        let pad_y = ((h1 - new_h) / 2.0 - 0.1).round_ties_even();
        // torch casts the Python int/float operand to the tensor's float32 before the in-place op.
        ScaleBoxes {
            pad_x: pad_x as f32,
            pad_y: pad_y as f32,
            gain_x: (new_w / w0) as f32,
            gain_y: (new_h / h0) as f32,
            w0: w0 as f32,
            h0: h0 as f32,
            clip,
        }
    }

    /// One xyxy box in model-input pixels → original-image pixels, clipped when asked.
    pub fn apply(&self, b: [f32; 4]) -> [f32; 4] {
        let scaled = [
            (b[0] - self.pad_x) / self.gain_x,
            (b[1] - self.pad_y) / self.gain_y,
            (b[2] - self.pad_x) / self.gain_x,
            (b[3] - self.pad_y) / self.gain_y,
        ];
        if !self.clip {
            return scaled;
        }
        [
            clamp_like_torch(scaled[0], self.w0),
            clamp_like_torch(scaled[1], self.h0),
            clamp_like_torch(scaled[2], self.w0),
            clamp_like_torch(scaled[3], self.h0),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_boxes_uses_the_letterbox_rounding() {
        // 600×400 → 640×427 at the top 106 px (odd padding 213: 106 above, 107 below).
        let g = LetterboxGeometry::new(600, 400, 640, 640);
        let s = ScaleBoxes::new(&g, true);
        assert_eq!((s.pad_x, s.pad_y), (0.0, 106.0));
        assert_eq!(s.gain_x, (640.0f64 / 600.0) as f32);
        assert_eq!(s.gain_y, (427.0f64 / 400.0) as f32);
        // The resized image's bottom edge (row 106 + 427) maps to the original bottom (400).
        // x: float32(640/600) = 1.0666667223 rounds up, so 640 / it = 599.99994 in float32 (as in
        // torch); y: float32(427/400) = 1.0675 exactly, 427 / 1.0675 = 400.
        let b = s.apply([0.0, 106.0, 640.0, 533.0]);
        assert_eq!(b, [0.0, 0.0, 599.999_94, 400.0]);
        // Outside the image: clipped.
        assert_eq!(s.apply([-5.0, 0.0, 700.0, 640.0]), [0.0, 0.0, 600.0, 400.0]);
    }
}
