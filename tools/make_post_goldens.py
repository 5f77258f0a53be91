#!/usr/bin/env python3
"""Golden cases for the post-processing of the four detector families (tests/postprocess.rs).

Each case is a small synthetic model output plus the boxes the original library would return for
it. The expected boxes are computed here by an independent numpy re-implementation of the library
code, written line by line from:

* yolov5 v7.0 `utils/general.py`: `non_max_suppression`, `xywh2xyxy`, `scale_boxes`, `clip_boxes`
  (+ detect.py's `.round()`);
* ultralytics 8.4.190 `utils/nms.py` `non_max_suppression` and `utils/ops.py` `xywh2xyxy`,
  `scale_boxes`, `clip_boxes`;
* torchvision `csrc/ops/cpu/nms_kernel.cpp` (`torchvision.ops.nms`);
* transformers 5.24 `DetrImageProcessor.post_process_object_detection` and
  `center_to_corners_format`; torch's CPU softmax (`SoftMaxKernel.cpp`, AVX2 lane order);
* the torchvision detection graph's outputs filtered by `scores > conf`.

Conventions that the libraries leave open and that this file fixes the same way as the Rust code
(documented in src/detect/nms.rs): equal scores are ordered stably (torch's CPU sort is unstable, so
the library order of exact ties is implementation-defined). Every float32 operation that torch
performs on float32 tensors with a Python scalar is done here on np.float32 with the scalar cast to
float32 first, which is what torch does.

Output, in tests/data/post/: `<case>.json` (shapes, parameters, geometry, expected boxes as exact
decimal values of float32 numbers) and `<case>.<tensor>.f32` / `.i64` (raw little-endian arrays).

Run: `.venv/bin/python tools/make_post_goldens.py` (numpy only; deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "post"
F32 = np.float32


# ---------------------------------------------------------------------------------------------
# torchvision.ops.nms, CPU kernel (nms_kernel_impl<float>)
# ---------------------------------------------------------------------------------------------
def tv_nms(dets: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices kept, in processing order. dets float32 [N,4], scores float32 [N]."""
    assert dets.dtype == np.float32 and scores.dtype == np.float32
    n = len(scores)
    if n == 0:
        return []
    x1, y1, x2, y2 = (np.ascontiguousarray(dets[:, k]) for k in range(4))
    areas = (x2 - x1) * (y2 - y1)  # float32
    # scores.sort(0, descending=True): stable here (see module docstring).
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    thr = F32(iou_threshold)
    for _i in range(n):
        i = order[_i]
        if suppressed[i]:
            continue
        keep.append(int(i))
        rest = order[_i + 1 :]
        rest = rest[~suppressed[rest]]
        if len(rest) == 0:
            continue
        # std::max(a, b) == (a < b) ? b : a ; std::min(a, b) == (b < a) ? b : a
        xx1 = np.where(x1[i] < x1[rest], x1[rest], x1[i])
        yy1 = np.where(y1[i] < y1[rest], y1[rest], y1[i])
        xx2 = np.where(x2[rest] < x2[i], x2[rest], x2[i])
        yy2 = np.where(y2[rest] < y2[i], y2[rest], y2[i])
        dw = xx2 - xx1
        dh = yy2 - yy1
        w = np.where(F32(0) < dw, dw, F32(0))
        h = np.where(F32(0) < dh, dh, F32(0))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            ovr = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[ovr > thr]] = True
    return keep


def torch_max_dim1(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`Tensor.max(1)` on CPU: value and index of the FIRST maximum (no NaN in these cases)."""
    assert not np.isnan(a).any()
    j = np.argmax(a, axis=1)  # numpy also returns the first occurrence
    return a[np.arange(len(a)), j], j


# ---------------------------------------------------------------------------------------------
# yolov5 v7.0
# ---------------------------------------------------------------------------------------------
def y5_xywh2xyxy(x: np.ndarray) -> np.ndarray:
    y = x.copy()
    y[:, 0] = x[:, 0] - x[:, 2] / F32(2)
    y[:, 1] = x[:, 1] - x[:, 3] / F32(2)
    y[:, 2] = x[:, 0] + x[:, 2] / F32(2)
    y[:, 3] = x[:, 1] + x[:, 3] / F32(2)
    return y


def y5_nms(
    pred: np.ndarray, conf_thres, iou_thres, max_det, max_nms=30000, max_wh=7680
):
    """pred float32 [anchors, 5 + nc] for one image → float32 [n, 6] (xyxy, conf, cls)."""
    x = pred.copy()
    x = x[x[:, 4] > F32(conf_thres)]
    if not x.shape[0]:
        return np.zeros((0, 6), np.float32)
    x[:, 5:] *= x[:, 4:5]
    box = y5_xywh2xyxy(x[:, :4])
    conf, j = torch_max_dim1(x[:, 5:])
    x = np.concatenate((box, conf[:, None], j[:, None].astype(np.float32)), 1)[
        conf > F32(conf_thres)
    ]
    n = x.shape[0]
    if not n:
        return np.zeros((0, 6), np.float32)
    elif n > max_nms:
        x = x[np.argsort(-x[:, 4], kind="stable")[:max_nms]]
    else:
        x = x[np.argsort(-x[:, 4], kind="stable")]
    c = x[:, 5:6] * F32(max_wh)
    boxes, scores = x[:, :4] + c, x[:, 4]
    i = tv_nms(boxes, scores, iou_thres)
    if len(i) > max_det:
        i = i[:max_det]
    return x[i]


def y5_scale_boxes(img1_shape, boxes, img0_shape):
    gain = min(img1_shape[0] / img0_shape[0], img1_shape[1] / img0_shape[1])
    pad = (
        (img1_shape[1] - img0_shape[1] * gain) / 2,
        (img1_shape[0] - img0_shape[0] * gain) / 2,
    )
    boxes[:, [0, 2]] -= F32(pad[0])
    boxes[:, [1, 3]] -= F32(pad[1])
    boxes[:, :4] /= F32(gain)
    boxes[:, 0] = np.clip(boxes[:, 0], F32(0), F32(img0_shape[1]))
    boxes[:, 1] = np.clip(boxes[:, 1], F32(0), F32(img0_shape[0]))
    boxes[:, 2] = np.clip(boxes[:, 2], F32(0), F32(img0_shape[1]))
    boxes[:, 3] = np.clip(boxes[:, 3], F32(0), F32(img0_shape[0]))
    return boxes


# ---------------------------------------------------------------------------------------------
# ultralytics 8.4
# ---------------------------------------------------------------------------------------------
def ul_xywh2xyxy(x: np.ndarray) -> np.ndarray:
    y = np.empty_like(x)
    xy = x[..., :2]
    wh = x[..., 2:] / F32(2)
    y[..., :2] = xy - wh
    y[..., 2:] = xy + wh
    return y


def ul_nms(
    pred: np.ndarray, conf_thres, iou_thres, max_det, max_nms=30000, max_wh=7680
):
    """pred float32 [4 + nc, anchors] for one image → float32 [n, 6]."""
    nc = pred.shape[0] - 4
    xc = pred[4 : 4 + nc].max(0) > F32(conf_thres)
    x = pred.T.copy()
    x = x[xc]
    x[:, :4] = ul_xywh2xyxy(x[:, :4])
    if not x.shape[0]:
        return np.zeros((0, 6), np.float32)
    box, cls = x[:, :4], x[:, 4:]
    conf, j = torch_max_dim1(cls)
    filt = conf > F32(conf_thres)
    x = np.concatenate((box, conf[:, None], j[:, None].astype(np.float32)), 1)[filt]
    n = x.shape[0]
    if not n:
        return np.zeros((0, 6), np.float32)
    if n > max_nms:
        x = x[np.argsort(-x[:, 4], kind="stable")[:max_nms]]
    c = x[:, 5:6] * F32(max_wh)
    scores = x[:, 4]
    boxes = x[:, :4] + c
    i = tv_nms(boxes, scores, iou_thres)
    i = i[:max_det]
    return x[i]


def ul_scale_boxes(img1_shape, boxes, img0_shape):
    gain = min(img1_shape[0] / img0_shape[0], img1_shape[1] / img0_shape[1])
    new_h, new_w = (max(round(v * gain), 1) for v in img0_shape[:2])
    gain_y, gain_x = new_h / img0_shape[0], new_w / img0_shape[1]
    pad_x, pad_y = (
        round((img1_shape[1] - new_w) / 2 - 0.1),
        round((img1_shape[0] - new_h) / 2 - 0.1),
    )
    boxes[..., 0] -= F32(pad_x)
    boxes[..., 1] -= F32(pad_y)
    boxes[..., 2] -= F32(pad_x)
    boxes[..., 3] -= F32(pad_y)
    boxes[..., 0] /= F32(gain_x)
    boxes[..., 1] /= F32(gain_y)
    boxes[..., 2] /= F32(gain_x)
    boxes[..., 3] /= F32(gain_y)
    h, w = img0_shape[:2]
    boxes[..., 0] = np.clip(boxes[..., 0], F32(0), F32(w))
    boxes[..., 1] = np.clip(boxes[..., 1], F32(0), F32(h))
    boxes[..., 2] = np.clip(boxes[..., 2], F32(0), F32(w))
    boxes[..., 3] = np.clip(boxes[..., 3], F32(0), F32(h))
    return boxes


def letterbox_input_shape(w0: int, h0: int, target: int = 640) -> tuple[int, int]:
    """The letterboxed input (h, w): both libraries pad to the full target with auto=False."""
    return target, target


# ---------------------------------------------------------------------------------------------
# DETR (transformers 5)
# ---------------------------------------------------------------------------------------------
def torch_softmax_lastdim(x: np.ndarray) -> np.ndarray:
    """torch CPU `_vec_softmax_lastdim` for float32 with 8-lane (AVX2) vectors."""
    out = np.empty_like(x)
    for r in range(x.shape[0]):
        row = x[r]
        m = row.max()
        e = np.exp(row - m).astype(np.float32)
        n = len(e)
        if n < 8:
            s = e[0]
            for v in e[1:]:
                s = F32(s + v)
        else:
            lanes = e[:8].copy()
            d = 8
            while d + 8 <= n:
                lanes = lanes + e[d : d + 8]
                d += 8
            tail = n - d
            if tail:
                lanes[:tail] = lanes[:tail] + e[d:]
            s = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + (
                (lanes[1] + lanes[5]) + (lanes[3] + lanes[7])
            )
        inv = F32(1) / F32(s)
        out[r] = e * inv
    return out


def detr_post(logits: np.ndarray, pred_boxes: np.ndarray, threshold: float, target_hw):
    prob = torch_softmax_lastdim(logits)
    scores, labels = torch_max_dim1(prob[:, :-1])
    cx, cy, w, h = (pred_boxes[:, k] for k in range(4))
    half = F32(0.5)
    boxes = np.stack(
        [cx - half * w, cy - half * h, cx + half * w, cy + half * h], axis=-1
    )
    img_h, img_w = F32(target_hw[0]), F32(target_hw[1])
    boxes = boxes * np.array([img_w, img_h, img_w, img_h], dtype=np.float32)[None, :]
    keep = scores > F32(threshold)
    return boxes[keep], scores[keep], labels[keep]


# ---------------------------------------------------------------------------------------------
# synthetic outputs
# ---------------------------------------------------------------------------------------------
def sigmoid(z):
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def synthetic_boxes(rng, anchors, clusters=12, spread=6.0, big=0):
    """cx, cy, w, h in a 640×640 input: boxes jittered around a few cluster boxes, so that NMS
    suppresses a lot, some of them past the image border; `big` extra-wide boxes (w > 7680)."""
    centres = rng.uniform(-20, 660, size=(clusters, 2))
    sizes = rng.uniform(8, 300, size=(clusters, 2))
    k = rng.integers(0, clusters, size=anchors)
    cxcy = centres[k] + rng.normal(0, spread, size=(anchors, 2))
    wh = np.abs(sizes[k] * rng.normal(1, 0.08, size=(anchors, 2))) + 0.5
    b = np.concatenate([cxcy, wh], 1).astype(np.float32)
    if big:
        idx = rng.choice(anchors, size=big, replace=False)
        b[idx, 2] = rng.uniform(8000, 20000, size=big).astype(np.float32)
    return b


def yolov8_output(rng, anchors, nc, big=0):
    boxes = synthetic_boxes(rng, anchors, big=big)
    cls = sigmoid(rng.normal(-2.0, 1.6, size=(anchors, nc)))
    # A tie for the best class (first maximum wins) on a few anchors.
    for a in rng.choice(anchors, size=5, replace=False):
        c = rng.choice(nc, size=2, replace=False)
        cls[a, c] = F32(0.8)
    return np.ascontiguousarray(np.concatenate([boxes, cls], 1).T.astype(np.float32))


def yolov5_output(rng, anchors, nc):
    boxes = synthetic_boxes(rng, anchors)
    obj = sigmoid(rng.normal(0.0, 1.5, size=(anchors, 1)))
    cls = sigmoid(rng.normal(0.5, 1.5, size=(anchors, nc)))
    for a in rng.choice(anchors, size=5, replace=False):
        c = rng.choice(nc, size=2, replace=False)
        cls[a, c] = F32(0.9)
    return np.concatenate([boxes, obj, cls], 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
def det_rows(boxes, scores, classes):
    return [
        {"box": [float(v) for v in b], "score": float(s), "class": int(c)}
        for b, s, c in zip(boxes.astype(np.float32), scores.astype(np.float32), classes)
    ]


def write_case(name: str, meta: dict, tensors: dict[str, np.ndarray]):
    for tname, arr in tensors.items():
        ext = "i64" if arr.dtype == np.int64 else "f32"
        arr.astype("<i8" if ext == "i64" else "<f4").tofile(
            OUT / f"{name}.{tname}.{ext}"
        )
    meta = {"name": name, **meta}
    (OUT / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{name}: {len(meta['expected'])} boxes")


def yolo_case(
    name,
    family,
    rng,
    *,
    orig,
    conf,
    iou,
    max_det,
    max_nms=30000,
    max_wh=7680.0,
    anchors=200,
    nc=5,
    round_boxes=False,
    big=0,
):
    w0, h0 = orig
    img1 = letterbox_input_shape(w0, h0)
    if family == "ultralytics":
        pred = yolov8_output(rng, anchors, nc, big=big)
        det = ul_nms(pred, conf, iou, max_det, max_nms, max_wh)
        boxes = ul_scale_boxes(img1, det[:, :4].copy(), (h0, w0))
        candidates = int((pred[4:].max(0) > F32(conf)).sum())
    else:
        pred = yolov5_output(rng, anchors, nc)
        det = y5_nms(pred, conf, iou, max_det, max_nms, max_wh)
        boxes = y5_scale_boxes(img1, det[:, :4].copy(), (h0, w0))
        if round_boxes:
            boxes = np.round(boxes)  # half to even, like torch.round
        x = pred[pred[:, 4] > F32(conf)]
        candidates = int(((x[:, 5:] * x[:, 4:5]).max(1) > F32(conf)).sum())
    meta = {
        "family": family,
        "classes": nc,
        "anchors": anchors,
        "orig_w": w0,
        "orig_h": h0,
        "input_w": img1[1],
        "input_h": img1[0],
        "params": {
            "conf_threshold": conf,
            "iou_threshold": iou,
            "max_det": max_det,
            "max_nms": max_nms,
            "max_wh": max_wh,
        },
        "round_boxes": round_boxes,
        "candidates": candidates,
        "expected": det_rows(boxes, det[:, 4], det[:, 5].astype(int)),
    }
    write_case(name, meta, {"pred": pred})


def detr_case(name, rng, *, orig, threshold, queries=40, slots=8):
    w0, h0 = orig
    logits = rng.normal(0, 2.0, size=(queries, slots)).astype(np.float32)
    logits[:, -1] += F32(1.0)  # no-object slot a little more likely
    logits[3, 1] = logits[3, 4] = logits[3].max() + F32(
        3
    )  # tie between two classes: the first wins
    logits[5, :] = F32(2.5)  # all equal: every probability 1/slots
    boxes = sigmoid(rng.normal(0, 1.2, size=(queries, 4)))
    boxes[7] = np.array(
        [0.05, 0.95, 0.3, 0.4], np.float32
    )  # reaches past the image: not clipped
    logits[7, 2] = F32(12)
    b, s, l = detr_post(logits, boxes, threshold, (h0, w0))
    # No score within float32 rounding of the threshold: the kept set does not hinge on an ulp.
    all_scores = torch_max_dim1(torch_softmax_lastdim(logits)[:, :-1])[0]
    assert np.abs(all_scores - F32(threshold)).min() > 1e-5
    meta = {
        "family": "detr",
        "queries": queries,
        "slots": slots,
        "orig_w": w0,
        "orig_h": h0,
        "threshold": threshold,
        "expected": det_rows(b, s, l),
    }
    write_case(name, meta, {"logits": logits, "pred_boxes": boxes})


def torchvision_case(name, rng, *, threshold, n=20):
    boxes = np.sort(
        rng.uniform(0, 600, size=(n, 4)).astype(np.float32).reshape(n, 2, 2), axis=1
    ).reshape(n, 4)
    boxes = boxes[:, [0, 2, 1, 3]]
    scores = np.sort(rng.uniform(0, 1, size=n).astype(np.float32))[::-1].copy()
    scores[n // 2] = F32(threshold)  # exactly the threshold: dropped (strict >)
    labels = rng.integers(1, 91, size=n).astype(np.int64)
    keep = scores > F32(threshold)
    meta = {
        "family": "torchvision",
        "threshold": threshold,
        "expected": det_rows(boxes[keep], scores[keep], labels[keep]),
    }
    write_case(name, meta, {"boxes": boxes, "scores": scores, "labels": labels})


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    # ultralytics 8.4 predict defaults (iou 0.7, max_det 300); 600×400 → 640×427 with odd padding.
    yolo_case(
        "ultralytics_600x400",
        "ultralytics",
        rng,
        orig=(600, 400),
        conf=0.25,
        iou=0.7,
        max_det=300,
    )
    # Cuts: max_nms below the candidate count, max_det below the kept count; 333×500 (new 426×640,
    # pad_x = round(107 − 0.1) = 107 vs yolov5's unrounded 106.88).
    yolo_case(
        "ultralytics_cuts_333x500",
        "ultralytics",
        rng,
        orig=(333, 500),
        conf=0.1,
        iou=0.45,
        max_det=7,
        max_nms=40,
    )
    # Boxes wider than max_wh: the class offset no longer separates classes.
    yolo_case(
        "ultralytics_wide_boxes",
        "ultralytics",
        rng,
        orig=(640, 480),
        conf=0.2,
        iou=0.5,
        max_det=300,
        big=6,
    )
    # max_wh = 0: class-agnostic.
    yolo_case(
        "ultralytics_agnostic",
        "ultralytics",
        rng,
        orig=(640, 427),
        conf=0.2,
        iou=0.6,
        max_det=300,
        max_wh=0.0,
    )
    # yolov5 v7.0 detect.py defaults (iou 0.45, max_det 1000) with rounding; fractional padding.
    yolo_case(
        "yolov5_600x400_round",
        "yolov5",
        rng,
        orig=(600, 400),
        conf=0.25,
        iou=0.45,
        max_det=1000,
        round_boxes=True,
    )
    yolo_case(
        "yolov5_cuts_333x500",
        "yolov5",
        rng,
        orig=(333, 500),
        conf=0.1,
        iou=0.45,
        max_det=9,
        max_nms=50,
        round_boxes=False,
    )
    detr_case("detr_640x427", rng, orig=(640, 427), threshold=0.3)
    torchvision_case("torchvision", rng, threshold=0.5)


if __name__ == "__main__":
    main()
