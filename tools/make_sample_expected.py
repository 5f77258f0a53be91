#!/usr/bin/env python3
"""Writes tests/data/sample-expected.json: what `refaug run` must write for the bundled sample.

Re-run from the repository root with the project environment (numpy, Pillow 13.0.0,
opencv-python-headless 5.0.0.93; onnx/onnxruntime only for the cross-checks; no torch):

    .venv/bin/python tools/make_sample_expected.py

Deterministic: re-running rewrites an identical file. `tests/run.rs`
(`rows_equal_the_independent_expectation`) compares every written row with it.

The sample (`sample/refcocog/`, written by tools/make_sample.py) goes through the three fixture
detectors of data-manifest.toml, computed independently of the Rust code:

* decoding: Pillow `Image.open(path).convert("RGB")` (no EXIF orientation applied);
* the fixture models' parameters: `draw_params(family, seed)` of tools/make_fixture_models.py with the
  seeds its search found; the ONNX graph rebuilt from them must hash to the spec's `model_sha256`, so
  the numpy maths below is the maths of the very model file the spec pins;
* pre-processing as the original libraries do it:
  - `yolo` (fixture-ultralytics): ultralytics 8.4 `LetterBox` to 64x64, pad 114, `cv2.resize`
    INTER_LINEAR, /255 float32 (`letterbox_np` of the fixture generator);
  - `detr` (fixture-detr, torchvision processor): transformers' `get_size_with_aspect_ratio`
    (shortest_edge 48, longest_edge 80), torch's antialiased bilinear uint8 resize (the float64/int
    re-implementation in tools/make_detr_goldens.py), fused (x - mean*255) / (std*255) in float32;
  - `fasterrcnn` (fixture-torchvision): `to_tensor`, RGB / 255 as [3, H, W];
* the model outputs by the generator's numpy maths (pooled features summed in float64 as the graphs
  do, the heads in float32); onnxruntime is run only as a cross-check: the same post-processing on
  its raw outputs, the largest box / score difference printed, never used;
* post-processing by the generator's numpy versions of ultralytics `non_max_suppression` +
  `scale_boxes` (conf 0.1, IoU 0.7, max_det 300), transformers `post_process_object_detection`
  (threshold 0.1) and torchvision's `scores > 0.1` (max_det 100), then what refaug's `Detector`
  adds: clip every box to the image where the library clips (not DETR: transformers'
  post-processing keeps boxes past the image, and so does refaug by default), stable sort by
  descending score;
* rows: every ref of refs(umd).p with its image_id, split, proposals
  [[xmin, ymin, xmax, ymax, score, class_id], ...] and best_iou = the largest IoU of a proposal with the
  ground-truth box (COCO [x, y, w, h] -> xyxy), 0 without proposals.

`.venv/bin/python tools/make_sample_expected.py --compare OUT_DIR` also compares the rows a
`refaug run` wrote to OUT_DIR with the expectation and with the same pipeline fed with onnxruntime's raw
outputs, which tells a pre/post-processing bug (differs from both) from model-runtime float noise.

Floats are rounded to 6 decimals (the test compares within 1e-3 px / score and 1e-4 IoU). Values that
sit within the generator's safety margins of a threshold / NMS IoU / score tie are listed on stdout:
such a value could flip between float implementations, so a mismatch there is not a bug.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import make_detr_goldens as goldens
import make_fixture_models as fixtures

F32 = np.float32
SAMPLE = os.path.join(ROOT, "sample", "refcocog")
OUT = os.path.join(ROOT, "tests", "data", "sample-expected.json")

# variant -> (spec file, family, seed found by make_fixture_models.py's search)
VARIANTS = {
    "yolo": ("fixture-ultralytics.toml", "ultralytics", 180),
    "detr": ("fixture-detr.toml", "detr", 1),
    "fasterrcnn": ("fixture-torchvision.toml", "torchvision", 1),
}
SCORE_THRESHOLD = 0.1  # spec default (`DEFAULT_SCORE_THRESHOLD`), the research's value
ULTRALYTICS_IOU, ULTRALYTICS_MAX_DET = 0.7, 300  # ultralytics predict defaults
TORCHVISION_MAX_DET = 100  # torchvision detections_per_img


# ---------------------------------------------------------------------------------------------
# Margins: the generator's checks raise; here they are recorded and reported.
# ---------------------------------------------------------------------------------------------

NEAR = []
CONTEXT = {"where": ""}


def record_check_far(value, boundary, eps, what):
    if abs(float(value) - float(boundary)) < eps:
        NEAR.append(
            f"{CONTEXT['where']}: {what} {float(value):.6f} within {eps} of {boundary}"
        )


def record_distinct_scores(scores, what):
    s = np.sort(np.asarray(scores, np.float64))
    if len(s) > 1 and np.min(np.diff(s)) < 1e-4:
        NEAR.append(f"{CONTEXT['where']}: {what}: near-tied scores")


fixtures.check_far = record_check_far
fixtures.distinct_scores = record_distinct_scores


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


def load_params():
    """The fixture parameters per variant, checked against the specs' model hashes."""
    params = {}
    tmp = tempfile.mkdtemp()
    for variant, (spec_file, family, seed) in VARIANTS.items():
        with open(os.path.join(ROOT, "detectors", spec_file), "rb") as f:
            spec = tomllib.load(f)
        assert spec["family"] == family, (spec_file, spec["family"])
        p = fixtures.draw_params(family, seed, 80)
        path = os.path.join(tmp, f"{family}.onnx")
        if family == "ultralytics":
            fixtures.yolo_graph(p, path, "ultralytics")
        elif family == "detr":
            fixtures.detr_graph(p, path)
        else:
            fixtures.torchvision_graph(p, path)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest != spec["model_sha256"]:
            sys.exit(
                f"{spec_file}: seed {seed} rebuilds a model with sha256 {digest}, "
                f"the spec pins {spec['model_sha256']}; re-run the search of make_fixture_models.py"
            )
        model = os.path.normpath(os.path.join(ROOT, "detectors", spec["model"]))
        params[variant] = (spec, p, model)
    return params


# ---------------------------------------------------------------------------------------------
# One image through one detector
# ---------------------------------------------------------------------------------------------


def finish(b, s, c, w, h, clip=True):
    """What refaug's Detector adds: clip to the image (`clip`: where the library clips; not
    DETR), stable sort by descending score."""
    b = np.asarray(b, F32).reshape(-1, 4).copy()
    if clip:
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    s = np.asarray(s, F32)
    order = np.argsort(-s, kind="stable")
    return [(b[i].copy(), F32(s[i]), int(c[i])) for i in order]


def model_input(variant, spec, img):
    """The family's pre-processing of one H x W x 3 uint8 image, as the original library does it."""
    h, w = img.shape[:2]
    if variant == "yolo":
        tw, th = spec["input_size"]
        return fixtures.letterbox_np(img, tw, th)[None]
    if variant == "detr":
        oh, ow = goldens.size_with_aspect_ratio(
            h, w, spec["shortest_edge"], spec["longest_edge"]
        )
        return goldens.normalise_torchvision(goldens.torch_resize(img, ow, oh))[None]
    return (img.transpose(2, 0, 1).astype(F32) / F32(255)).astype(F32)


def raw_numpy(variant, p, x):
    """The model's outputs by the numpy maths of the fixture generator."""
    if variant == "yolo":
        return (fixtures.ultralytics_np(p, x)[0],)
    if variant == "detr":
        logits, boxes = fixtures.detr_np(p, x)
        return logits[0], boxes[0]
    return fixtures.torchvision_np(p, x)


def raw_ort(variant, session, x):
    """The same outputs from onnxruntime (cross-check only)."""
    if variant == "yolo":
        return (session.run(["output0"], {"images": x})[0][0],)
    if variant == "detr":
        logits, boxes = session.run(["logits", "pred_boxes"], {"pixel_values": x})
        return logits[0], boxes[0]
    return tuple(session.run(["boxes", "labels", "scores"], {"images": x}))


def post(variant, spec, raw, w, h):
    """The family's post-processing as the original library does it, then refaug's `finish`."""
    if variant == "yolo":
        tw, th = spec["input_size"]
        b, s, c = fixtures.ultralytics_post_np(
            raw[0], SCORE_THRESHOLD, ULTRALYTICS_IOU, ULTRALYTICS_MAX_DET, w, h, tw, th
        )
        return finish(b, s, c, w, h)
    if variant == "detr":
        b, s, c = fixtures.detr_post_np(raw[0], raw[1], SCORE_THRESHOLD, w, h)
        return finish(b, s, c, w, h, clip=False)
    b, lab, s = raw
    for v in s:
        fixtures.check_far(v, SCORE_THRESHOLD, 2e-3, "torchvision score")
    keep = s > F32(SCORE_THRESHOLD)
    return finish(b[keep], s[keep], lab[keep], w, h)[:TORCHVISION_MAX_DET]


def compare(variant, image_id, want, got, stats):
    """Largest difference between two detection lists (numpy vs onnxruntime), into `stats`."""
    st = stats.setdefault(variant, {"box": 0.0, "score": 0.0, "other": []})
    if len(want) != len(got) or any(a[2] != b[2] for a, b in zip(want, got)):
        st["other"].append(
            f"image {image_id}: {len(want)} vs {len(got)} boxes or other classes"
        )
        return
    for (wb, ws, _), (gb, gs, _) in zip(want, got):
        st["box"] = max(st["box"], float(np.abs(wb.astype(np.float64) - gb).max()))
        st["score"] = max(st["score"], abs(float(ws) - float(gs)))


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


def iou(a, b):
    """IoU in float64 of two xyxy boxes; 0 when the union is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


ORT_DETECTIONS = {}


def compare_output(out_dir, expected):
    """`--compare OUT_DIR`: the rows `refaug run` wrote there against the expectation and against the
    same pipeline fed with onnxruntime's raw outputs (diagnostics only; writes nothing)."""
    import glob

    import pyarrow.parquet as pq

    for variant, rows in expected.items():
        want = {r["ref_id"]: r for r in rows}
        worst = {"expected": [0.0, 0.0, None], "onnxruntime": [0.0, 0.0, None]}
        problems = []
        n = 0
        for path in sorted(glob.glob(os.path.join(out_dir, variant, "*.parquet"))):
            for row in pq.read_table(path).to_pylist():
                n += 1
                w = want[row["ref_id"]]
                got = [
                    [
                        p["xmin"],
                        p["ymin"],
                        p["xmax"],
                        p["ymax"],
                        p["score"],
                        p["class_id"],
                    ]
                    for p in row["proposals"]
                ]
                refs = {"expected": w["proposals"]}
                if ORT_DETECTIONS:
                    refs["onnxruntime"] = [
                        [float(v) for v in b] + [float(sc), c]
                        for b, sc, c in ORT_DETECTIONS[variant][w["image_id"]]
                    ]
                for name, props in refs.items():
                    if len(props) != len(got) or any(
                        a[5] != b[5] for a, b in zip(props, got)
                    ):
                        problems.append(
                            f"ref {row['ref_id']}: {len(got)} proposals vs {len(props)} ({name})"
                        )
                        continue
                    for a, b in zip(props, got):
                        db = max(abs(a[i] - b[i]) for i in range(4))
                        if db > worst[name][0]:
                            worst[name][0], worst[name][2] = db, row["ref_id"]
                        worst[name][1] = max(worst[name][1], abs(a[4] - b[4]))
                if abs(row["best_iou"] - w["best_iou"]) > 1e-4:
                    problems.append(
                        f"ref {row['ref_id']}: best_iou {row['best_iou']} vs {w['best_iou']}"
                    )
        print(
            f"{variant}: {n} rows of {len(rows)}; refaug vs "
            + "; vs ".join(
                f"{k}: box {v[0]:.3g} px (ref {v[2]}), score {v[1]:.3g}"
                for k, v in worst.items()
            )
        )
        for pr in problems[:10]:
            print("  " + pr)


def r6(v):
    return round(float(v), 6)


def main():
    with open(
        os.path.join(SAMPLE, "annotations", "instances.json"), encoding="utf-8"
    ) as f:
        instances = json.load(f)
    with open(os.path.join(SAMPLE, "annotations", "refs(umd).p"), "rb") as f:
        refs = pickle.load(f, encoding="bytes")
    images = {im["id"]: im for im in instances["images"]}
    anns = {a["id"]: a for a in instances["annotations"]}
    params = load_params()

    try:
        import onnxruntime as ort

        sessions = {
            v: ort.InferenceSession(m, providers=["CPUExecutionProvider"])
            for v, (_, _, m) in params.items()
        }
    except ImportError:
        sessions = {}
    stats = {}
    ort_dets = {}

    used = sorted({r[b"image_id"] for r in refs})
    detections = {v: {} for v in params}
    for image_id in used:
        rec = images[image_id]
        path = os.path.join(SAMPLE, "images", rec["file_name"])
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        assert (w, h) == (rec["width"], rec["height"]), (path, img.shape)
        for variant, (spec, p, _) in params.items():
            CONTEXT["where"] = f"{variant} image {image_id}"
            x = model_input(variant, spec, img)
            dets = post(variant, spec, raw_numpy(variant, p, x), w, h)
            detections[variant][image_id] = dets
            if variant in sessions:
                n = len(NEAR)
                got = post(variant, spec, raw_ort(variant, sessions[variant], x), w, h)
                del NEAR[n:]  # the same values, reported once
                compare(variant, image_id, dets, got, stats)
                ort_dets.setdefault(variant, {})[image_id] = got

    if sessions:
        ORT_DETECTIONS.update(ort_dets)
    out = {}
    for variant in params:
        rows = []
        for r in sorted(refs, key=lambda r: r[b"ref_id"]):
            x, y, bw, bh = anns[r[b"ann_id"]]["bbox"]
            # the contract's gt_box: x + w in float64, stored as float32
            gt = tuple(
                float(F32(v))
                for v in (x, y, float(x) + float(bw), float(y) + float(bh))
            )
            dets = detections[variant][r[b"image_id"]]
            ious = [iou([float(v) for v in b], gt) for b, _, _ in dets]
            rows.append(
                {
                    "ref_id": int(r[b"ref_id"]),
                    "image_id": int(r[b"image_id"]),
                    "split": r[b"split"].decode(),
                    "proposals": [[r6(v) for v in b] + [r6(s), c] for b, s, c in dets],
                    "best_iou": r6(max(ious, default=0.0)),
                }
            )
        out[variant] = rows

    with open(OUT, "w") as f:
        # one proposal per line: readable diffs when the sample or the fixtures change
        f.write(fixtures.compact_rows(json.dumps(out, indent=1)) + "\n")

    for variant in params:
        counts = [len(d) for d in detections[variant].values()]
        print(
            f"{variant}: {sum(counts)} boxes over {len(counts)} images "
            f"(min {min(counts)}, max {max(counts)} per image, {counts.count(0)} images without)"
        )
    for variant, st in stats.items():
        print(
            f"{variant}: onnxruntime instead of the numpy maths moves a box by at most {st['box']:.3g} px "
            f"and a score by {st['score']:.3g}" + "".join(f"; {o}" for o in st["other"])
        )
    print(f"{len(NEAR)} values near a boundary" + (":" if NEAR else ""))
    for n in NEAR:
        print("  " + n)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT)} bytes)")
    if len(sys.argv) == 3 and sys.argv[1] == "--compare":
        compare_output(sys.argv[2], out)


if __name__ == "__main__":
    main()
