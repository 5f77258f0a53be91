//! Post-processing of the four detector families: NMS properties, hand-derived geometry and
//! softmax values, and golden cases whose expected boxes come from an independent numpy
//! re-implementation of the original libraries (`tools/make_post_goldens.py`).

use std::path::PathBuf;

use refaug::detect::nms::{Candidate, NmsParams, class_aware_nms, nms};
use refaug::detect::{Detection, detr, torchvision, ultralytics, yolov5};
use refaug::preprocess::letterbox::LetterboxGeometry;
use serde_json::Value;

fn params(iou: f32, max_det: usize, max_nms: usize) -> NmsParams {
    NmsParams {
        conf_threshold: 0.0,
        iou_threshold: iou,
        max_det,
        max_nms,
        max_wh: 7680.0,
    }
}

fn cand(xyxy: [f32; 4], score: f32, class: u32) -> Candidate {
    Candidate { xyxy, score, class }
}

// ---------------------------------------------------------------------------------------------
// NMS
// ---------------------------------------------------------------------------------------------

#[test]
fn equal_scores_keep_input_order() {
    // Disjoint boxes, all 0.5: output in index order.
    let c: Vec<_> = (0..5)
        .map(|k| cand([k as f32 * 20.0, 0.0, k as f32 * 20.0 + 10.0, 10.0], 0.5, 0))
        .collect();
    assert_eq!(
        class_aware_nms(&c, &params(0.5, 100, 100)),
        vec![0, 1, 2, 3, 4]
    );
    // Two identical boxes with the same score: the first one suppresses the second.
    let c = [
        cand([0.0, 0.0, 10.0, 10.0], 0.3, 0),
        cand([50.0, 0.0, 60.0, 10.0], 0.9, 0),
        cand([0.0, 0.0, 10.0, 10.0], 0.3, 0),
    ];
    assert_eq!(class_aware_nms(&c, &params(0.5, 100, 100)), vec![1, 0]);
}

#[test]
fn overlapping_boxes_of_different_classes_are_both_kept() {
    let b = [10.0, 10.0, 50.0, 50.0];
    let c = [cand(b, 0.9, 0), cand(b, 0.8, 1), cand(b, 0.7, 0)];
    assert_eq!(class_aware_nms(&c, &params(0.5, 100, 100)), vec![0, 1]);
    // Class-agnostic (max_wh = 0): one box survives.
    let agnostic = NmsParams {
        max_wh: 0.0,
        ..params(0.5, 100, 100)
    };
    assert_eq!(class_aware_nms(&c, &agnostic), vec![0]);
}

#[test]
fn iou_equal_to_the_threshold_is_not_suppressed() {
    // inter 50, union 100 + 50 − 50 = 100: IoU exactly 0.5.
    let c = [
        cand([0.0, 0.0, 10.0, 10.0], 0.9, 0),
        cand([0.0, 0.0, 10.0, 5.0], 0.8, 0),
    ];
    assert_eq!(class_aware_nms(&c, &params(0.5, 100, 100)), vec![0, 1]);
    assert_eq!(class_aware_nms(&c, &params(0.499, 100, 100)), vec![0]);
    let boxes = [c[0].xyxy, c[1].xyxy];
    assert_eq!(nms(&boxes, &[0.9, 0.8], 0.5), vec![0, 1]);
    assert_eq!(nms(&boxes, &[0.8, 0.9], 0.499), vec![1]);
}

#[test]
fn max_det_and_max_nms_cut_by_score() {
    // Ten disjoint boxes, scores 0.1 … 1.0 (index 9 highest).
    let c: Vec<_> = (0..10)
        .map(|k| {
            let x = k as f32 * 20.0;
            cand([x, 0.0, x + 10.0, 10.0], (k + 1) as f32 / 10.0, k % 3)
        })
        .collect();
    assert_eq!(class_aware_nms(&c, &params(0.5, 3, 30000)), vec![9, 8, 7]);
    assert_eq!(class_aware_nms(&c, &params(0.5, 100, 4)), vec![9, 8, 7, 6]);
    assert!(class_aware_nms(&c, &params(0.5, 0, 30000)).is_empty());
    // max_nms drops the low scores before suppression: a low box that would have been kept is
    // gone, and so is the effect of a dropped box on others (none here: disjoint boxes).
    assert_eq!(class_aware_nms(&c, &params(0.5, 100, 1)), vec![9]);
}

#[test]
fn a_suppressed_box_does_not_suppress() {
    // A (0.9) suppresses B (0.8); B would have suppressed C (0.7), which A does not touch.
    let c = [
        cand([0.0, 0.0, 10.0, 10.0], 0.9, 0),
        cand([3.0, 0.0, 13.0, 10.0], 0.8, 0),
        cand([6.0, 0.0, 16.0, 10.0], 0.7, 0),
    ];
    // IoU(A,B) = 70/130 = 0.538, IoU(B,C) = 0.538, IoU(A,C) = 40/160 = 0.25.
    assert_eq!(class_aware_nms(&c, &params(0.5, 100, 100)), vec![0, 2]);
}

/// The CPU kernel transcribed without any shortcut: sort, walk, mark (the reference for the
/// randomized checks of the class buckets and early stop).
fn naive(c: &[Candidate], p: &NmsParams) -> Vec<usize> {
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| c[b].score.partial_cmp(&c[a].score).unwrap());
    order.truncate(p.max_nms);
    let b: Vec<[f32; 4]> = order
        .iter()
        .map(|&i| c[i].xyxy.map(|v| v + c[i].class as f32 * p.max_wh))
        .collect();
    let area: Vec<f32> = b.iter().map(|b| (b[2] - b[0]) * (b[3] - b[1])).collect();
    let mut suppressed = vec![false; b.len()];
    let mut keep = Vec::new();
    for i in 0..b.len() {
        if suppressed[i] {
            continue;
        }
        keep.push(order[i]);
        for j in i + 1..b.len() {
            let w = (b[i][2].min(b[j][2]) - b[i][0].max(b[j][0])).max(0.0);
            let h = (b[i][3].min(b[j][3]) - b[i][1].max(b[j][1])).max(0.0);
            let inter = w * h;
            if inter / (area[i] + area[j] - inter) > p.iou_threshold {
                suppressed[j] = true;
            }
        }
    }
    keep.truncate(p.max_det);
    keep
}

/// Deterministic pseudo-random numbers (no property-testing crate).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / (1u64 << 24) as f32
    }
}

fn random_candidates(rng: &mut Lcg, n: usize, classes: u32, wide: bool) -> Vec<Candidate> {
    (0..n)
        .map(|_| {
            // Clustered boxes so that suppression happens; scores on a coarse grid so that exact
            // ties occur.
            let cx = (rng.next() * 8.0).floor() * 80.0 + rng.next() * 10.0;
            let cy = (rng.next() * 8.0).floor() * 80.0 + rng.next() * 10.0;
            let w = if wide && rng.next() < 0.05 {
                9000.0
            } else {
                20.0 + rng.next() * 60.0
            };
            let h = 20.0 + rng.next() * 60.0;
            cand(
                [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                (rng.next() * 200.0).floor() / 200.0,
                (rng.next() * classes as f32) as u32,
            )
        })
        .collect()
}

#[test]
fn matches_the_plain_kernel_and_is_idempotent() {
    let mut rng = Lcg(7);
    for round in 0..60 {
        let n = 50 + round * 37;
        let classes = 1 + (round as u32 % 7);
        let c = random_candidates(&mut rng, n, classes, round % 4 == 3);
        let p = NmsParams {
            max_wh: if round % 5 == 4 { 0.0 } else { 7680.0 },
            ..params(
                [0.3, 0.45, 0.5, 0.7][round % 4],
                [5, 50, 300, 100_000][round % 4],
                [30000, n / 2, 17, 30000][(round / 4) % 4],
            )
        };
        let keep = class_aware_nms(&c, &p);
        assert_eq!(keep, naive(&c, &p), "round {round}");
        // Output ⊆ input, no duplicates, descending scores.
        let mut seen = vec![false; c.len()];
        for &k in &keep {
            assert!(!seen[k], "round {round}: duplicate {k}");
            seen[k] = true;
        }
        assert!(keep.windows(2).all(|w| c[w[0]].score >= c[w[1]].score));
        // Idempotent: the kept boxes survive a second pass, in the same order.
        let again: Vec<Candidate> = keep.iter().map(|&k| c[k]).collect();
        let p2 = NmsParams {
            max_nms: usize::MAX,
            ..p
        };
        assert_eq!(
            class_aware_nms(&again, &p2),
            (0..again.len()).collect::<Vec<_>>(),
            "round {round}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry and the family wrappers, by hand
// ---------------------------------------------------------------------------------------------

/// One ultralytics anchor column block `[4 + classes, anchors]` from rows of (cx, cy, w, h, scores…).
fn ultralytics_pred(rows: &[Vec<f32>]) -> Vec<f32> {
    let k = rows[0].len();
    (0..k)
        .flat_map(|r| rows.iter().map(move |row| row[r]))
        .collect()
}

#[test]
fn ultralytics_unletterboxes_odd_padding_and_clips() {
    // 600×400 → 640×427 at rows 106..533 (213 px of padding: 106 above, 107 below).
    let g = LetterboxGeometry::new(600, 400, 640, 640);
    // Box centred at (320, 319.5), 64 × 42.7 input px → corners (288, 298.15)–(352, 340.85).
    // x: (288 − 0) / float32(640/600); y: (298.15 − 106) / float32(427/400 = 1.0675).
    let rows = vec![
        vec![320.0, 319.5, 64.0, 42.7, 0.1, 0.9],
        // Past the left/top border and below the image: clipped to [0, 600] × [0, 400].
        vec![10.0, 120.0, 100.0, 100.0, 0.95, 0.2],
        // Below the confidence threshold.
        vec![320.0, 320.0, 10.0, 10.0, 0.2, 0.25],
    ];
    let p = NmsParams {
        conf_threshold: 0.25,
        ..params(0.7, 300, 30000)
    };
    let d = ultralytics::postprocess(&ultralytics_pred(&rows), 2, 3, &p, &g, true);
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].score, d[0].class_id), (0.95, 0));
    assert_eq!(
        [d[0].bbox.xmin, d[0].bbox.ymin],
        [0.0, 0.0],
        "clipped at the top-left"
    );
    // x2 = (10 + 50) / 1.0666667 = 56.25, y2 = (120 + 50 − 106) / 1.0675 = 59.953…
    assert_eq!(d[0].bbox.xmax, 60.0f32 / (640.0f64 / 600.0) as f32);
    assert_eq!(d[0].bbox.ymax, 64.0f32 / 1.0675f32);
    let gx = (640.0f64 / 600.0) as f32;
    let (y1, y2) = (319.5f32 - 42.7f32 / 2.0, 319.5f32 + 42.7f32 / 2.0);
    assert_eq!(
        [
            d[1].bbox.xmin,
            d[1].bbox.ymin,
            d[1].bbox.xmax,
            d[1].bbox.ymax
        ],
        [
            288.0 / gx,
            (y1 - 106.0) / 1.0675,
            352.0 / gx,
            (y2 - 106.0) / 1.0675
        ]
    );
    assert_eq!((d[1].score, d[1].class_id), (0.9, 1));
}

#[test]
fn yolov5_uses_fractional_padding_and_rounds_half_to_even() {
    // 320×240 → 640×480 (gain 2) at rows 80..560: pad (0, 80) exactly.
    let g = LetterboxGeometry::new(320, 240, 640, 640);
    // Corners (101, 181)–(107, 187) → (50.5, 50.5)–(53.5, 53.5) → rounded half to even:
    // (50, 50)–(54, 54).
    let row = [104.0, 184.0, 6.0, 6.0, 0.9, 0.5, 0.2];
    let p = NmsParams {
        conf_threshold: 0.25,
        ..params(0.45, 1000, 30000)
    };
    let d = yolov5::postprocess(&row, 2, &p, &g, true, true);
    assert_eq!(d.len(), 1);
    let b = d[0].bbox;
    assert_eq!([b.xmin, b.ymin, b.xmax, b.ymax], [50.0, 50.0, 54.0, 54.0]);
    assert_eq!(d[0].score, 0.5f32 * 0.9f32, "conf = cls × obj in float32");
    let d = yolov5::postprocess(&row, 2, &p, &g, false, true);
    let b = d[0].bbox;
    assert_eq!([b.xmin, b.ymin, b.xmax, b.ymax], [50.5, 50.5, 53.5, 53.5]);

    // 600×400: gain 16/15, pad_y = (640 − 400·16/15)/2 = 106.67 (not 106 as ultralytics).
    let g = LetterboxGeometry::new(600, 400, 640, 640);
    let row = [320.0, 320.0, 64.0, 64.0, 0.9, 0.5, 0.2];
    let d = yolov5::postprocess(&row, 2, &p, &g, false, true);
    let gain = (16.0f64 / 15.0) as f32;
    let pad = (320.0f64 / 3.0) as f32;
    let b = d[0].bbox;
    assert_eq!(
        [b.xmin, b.ymin, b.xmax, b.ymax],
        [
            288.0 / gain,
            (288.0 - pad) / gain,
            352.0 / gain,
            (352.0 - pad) / gain
        ]
    );
}

#[test]
fn yolov5_candidates_need_objectness_and_product_above_conf() {
    let g = LetterboxGeometry::new(640, 640, 640, 640);
    let p = NmsParams {
        conf_threshold: 0.25,
        ..params(0.45, 1000, 30000)
    };
    let rows = [
        // obj 0.2 ≤ 0.25: not a candidate even with class prob 1.
        [100.0, 100.0, 10.0, 10.0, 0.2, 1.0, 1.0],
        // obj 0.5 × 0.5 = 0.25, not > 0.25.
        [200.0, 100.0, 10.0, 10.0, 0.5, 0.5, 0.1],
        // Tie between the classes: the first maximum (class 0).
        [300.0, 100.0, 10.0, 10.0, 0.8, 0.6, 0.6],
    ];
    let pred: Vec<f32> = rows.iter().flatten().copied().collect();
    let d = yolov5::postprocess(&pred, 2, &p, &g, false, true);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].class_id, d[0].score), (0, 0.8f32 * 0.6f32));
}

#[test]
fn detr_softmax_threshold_and_corners_by_hand() {
    // Query 0: logits (ln 6, ln 1, ln 3) → probs (0.6, 0.1, 0.3); no-object = 0.3 dropped;
    // score 0.6, label 0. Query 1: (0, 0, ln 2) → (0.25, 0.25, 0.5): best real class 0.25, below 0.3.
    // Query 2: (ln 2, ln 2, 0) → (0.4, 0.4, 0.2): a tie, label 0 (the first).
    let logits = [
        6f32.ln(),
        0.0,
        3f32.ln(),
        0.0,
        0.0,
        2f32.ln(),
        2f32.ln(),
        2f32.ln(),
        0.0,
    ];
    let boxes = [
        0.5, 0.5, 0.25, 0.5, // cx, cy, w, h
        0.1, 0.1, 0.1, 0.1, //
        0.0, 1.0, 0.5, 0.5, // past the border: not clipped
    ];
    let d = detr::postprocess(&logits, &boxes, 3, 3, 0.3, 640, 480);
    assert_eq!(d.len(), 2);
    assert!((d[0].score - 0.6).abs() < 1e-6, "{}", d[0].score);
    assert_eq!(d[0].class_id, 0);
    let b = d[0].bbox;
    // (0.375, 0.25, 0.625, 0.75) × (640, 480, 640, 480): all exact in float32.
    assert_eq!(
        [b.xmin, b.ymin, b.xmax, b.ymax],
        [240.0, 120.0, 400.0, 360.0]
    );
    assert!((d[1].score - 0.4).abs() < 1e-6, "{}", d[1].score);
    assert_eq!(d[1].class_id, 0);
    let b = d[1].bbox;
    assert_eq!(
        [b.xmin, b.ymin, b.xmax, b.ymax],
        [-160.0, 360.0, 160.0, 600.0]
    );
}

#[test]
fn torchvision_keeps_scores_strictly_above_the_threshold_in_graph_order() {
    let boxes = [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0];
    let d = torchvision::postprocess(&boxes, &[3, 1, 90], &[0.9, 0.5, 0.2], 0.5);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].class_id, d[0].score), (3, 0.9));
    let d = torchvision::postprocess(&boxes, &[3, 1, 90], &[0.9, 0.5, 0.2], 0.1);
    assert_eq!(
        d.iter().map(|d| d.class_id).collect::<Vec<_>>(),
        vec![3, 1, 90]
    );
}

// ---------------------------------------------------------------------------------------------
// Golden cases (tools/make_post_goldens.py)
// ---------------------------------------------------------------------------------------------

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/post")
}

fn case(name: &str) -> Value {
    let p = data_dir().join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).expect("golden case")).expect("golden json")
}

fn read_f32(name: &str) -> Vec<f32> {
    let b = std::fs::read(data_dir().join(name)).expect("golden tensor");
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn read_i64(name: &str) -> Vec<i64> {
    let b = std::fs::read(data_dir().join(name)).expect("golden tensor");
    b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The JSON numbers are the exact decimal values of float32 numbers: `as f32` recovers them.
fn f(v: &Value) -> f32 {
    v.as_f64().expect("number") as f32
}

fn u(v: &Value) -> usize {
    v.as_u64().expect("integer") as usize
}

/// Compares boxes and classes exactly, scores within `score_ulps` float32 ulps.
fn assert_same(name: &str, got: &[Detection], expected: &Value, score_ulps: u32) {
    let exp = expected.as_array().expect("expected boxes");
    assert_eq!(got.len(), exp.len(), "{name}: box count");
    for (k, (g, e)) in got.iter().zip(exp).enumerate() {
        let b = &e["box"];
        let eb = [f(&b[0]), f(&b[1]), f(&b[2]), f(&b[3])];
        assert_eq!(
            [g.bbox.xmin, g.bbox.ymin, g.bbox.xmax, g.bbox.ymax],
            eb,
            "{name}: box {k}"
        );
        assert_eq!(
            g.class_id as i64,
            e["class"].as_i64().unwrap(),
            "{name}: class {k}"
        );
        let es = f(&e["score"]);
        let ulps = (g.score.to_bits() as i64 - es.to_bits() as i64).unsigned_abs();
        assert!(
            ulps <= score_ulps as u64,
            "{name}: score {k}: {} vs {es}",
            g.score
        );
    }
}

fn yolo_params(c: &Value) -> NmsParams {
    let p = &c["params"];
    NmsParams {
        conf_threshold: f(&p["conf_threshold"]),
        iou_threshold: f(&p["iou_threshold"]),
        max_det: u(&p["max_det"]),
        max_nms: u(&p["max_nms"]),
        max_wh: f(&p["max_wh"]),
    }
}

fn yolo_golden(name: &str) {
    let c = case(name);
    let pred = read_f32(&format!("{name}.pred.f32"));
    let (w, h) = (u(&c["orig_w"]) as u32, u(&c["orig_h"]) as u32);
    let g = LetterboxGeometry::new(w, h, u(&c["input_w"]) as u32, u(&c["input_h"]) as u32);
    let p = yolo_params(&c);
    let classes = u(&c["classes"]);
    let anchors = u(&c["anchors"]);
    let got = match c["family"].as_str().unwrap() {
        "ultralytics" => {
            let cands = ultralytics::candidates(&pred, classes, anchors, p.conf_threshold);
            assert_eq!(cands.len(), u(&c["candidates"]), "{name}: candidates");
            ultralytics::postprocess(&pred, classes, anchors, &p, &g, true)
        }
        "yolov5" => {
            let cands = yolov5::candidates(&pred, classes, p.conf_threshold);
            assert_eq!(cands.len(), u(&c["candidates"]), "{name}: candidates");
            yolov5::postprocess(
                &pred,
                classes,
                &p,
                &g,
                c["round_boxes"].as_bool().unwrap(),
                true,
            )
        }
        other => panic!("{name}: family {other}"),
    };
    assert_same(name, &got, &c["expected"], 0);
}

#[test]
fn golden_ultralytics() {
    for name in [
        "ultralytics_600x400",
        "ultralytics_cuts_333x500",
        "ultralytics_wide_boxes",
        "ultralytics_agnostic",
    ] {
        yolo_golden(name);
    }
}

#[test]
fn golden_yolov5() {
    for name in ["yolov5_600x400_round", "yolov5_cuts_333x500"] {
        yolo_golden(name);
    }
}

#[test]
fn golden_detr() {
    let name = "detr_640x427";
    let c = case(name);
    let logits = read_f32(&format!("{name}.logits.f32"));
    let boxes = read_f32(&format!("{name}.pred_boxes.f32"));
    let got = detr::postprocess(
        &logits,
        &boxes,
        u(&c["queries"]),
        u(&c["slots"]),
        f(&c["threshold"]),
        u(&c["orig_w"]) as u32,
        u(&c["orig_h"]) as u32,
    );
    // exp differs by at most an ulp between numpy's SIMD expf and the platform expf.
    assert_same(name, &got, &c["expected"], 4);
}

#[test]
fn golden_torchvision() {
    let name = "torchvision";
    let c = case(name);
    let got = torchvision::postprocess(
        &read_f32(&format!("{name}.boxes.f32")),
        &read_i64(&format!("{name}.labels.i64")),
        &read_f32(&format!("{name}.scores.f32")),
        f(&c["threshold"]),
    );
    assert_same(name, &got, &c["expected"], 0);
}
