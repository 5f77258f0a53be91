#!/usr/bin/env python3
"""Writes tests/data/detr/: small golden cases for the DETR pre-processing (tests/detr_preprocess.rs).

Run from the repository root with the project venv: `.venv/bin/python tools/make_detr_goldens.py`
(needs numpy and Pillow 13.0.0; no torch). Deterministic: re-running rewrites identical files.

* Inputs: random RGB uint8 images from numpy's PCG64 (seed 20240), some quantised so that flat areas
  and sharp edges both occur.
* `pil`: Pillow's own `Image.resize((w, h), resample=Image.BILINEAR)` — the ground truth.
* `torchvision`: torch's native uint8 antialiased bilinear kernel, re-implemented below in plain
  Python from the torch 2.15 source (aten/src/ATen/native/cpu/UpSampleKernel.cpp,
  `HelperInterpBase::_compute_indices_min_size_weights_aa` and `_compute_index_ranges_int16_weights`;
  the integer loops of `basic_loop_aa_horizontal/vertical<uint8_t>` and of
  UpSampleKernelAVXAntialias.h). torch is not installed here, so this re-implementation is the
  independent value; it was also checked against the reference tensors of shared/reference.
* `detr_*`: whole `DetrImageProcessor` / `DetrImageProcessorPil` arithmetic with a small size rule
  (shortest_edge 8, longest_edge 13) as float32 little-endian CHW: Pillow or the re-implemented torch
  resize, then numpy float32 normalisation exactly as transformers 5.24 does it.

cases.json lists every case with its file names and how many resized values the two resizes differ in.
"""

import json
import math
import os

import numpy as np
from PIL import Image

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "detr"
)
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def torch_pass_weights(in_size, out_size):
    """_compute_index_ranges_weights(antialias=True) with the linear aa_filter, in float64,
    then _compute_index_ranges_int16_weights: returns (precision, [(xmin, [int weights])])."""
    scale = in_size / out_size  # area_pixel_compute_scale without an explicit scale
    support = (
        1.0 * scale if scale >= 1.0 else 1.0
    )  # (interp_size * 0.5) * scale, interp_size 2
    max_interp_size = math.ceil(support) * 2 + 1
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    rows, wt_max = [], 0.0
    for i in range(out_size):
        center = scale * (i + 0.5)
        xmin = max(
            int(center - support + 0.5), 0
        )  # static_cast<int64_t> truncates toward zero
        xsize = min(int(center + support + 0.5), in_size) - xmin
        xsize = min(max(xsize, 0), max_interp_size)
        ws = []
        for j in range(xsize):
            x = abs((j + xmin - center + 0.5) * invscale)
            ws.append(1.0 - x if x < 1.0 else 0.0)
        total = 0.0
        for w in ws:
            total += w
        if total != 0.0:
            ws = [w / total for w in ws]
            wt_max = max([wt_max] + ws)
        rows.append((xmin, ws))
    precision = 0
    while precision < 22:
        if int(0.5 + wt_max * (1 << (precision + 1))) >= (1 << 15):
            break
        precision += 1
    fixed = []
    for xmin, ws in rows:
        ks = []
        for w in ws:
            v = w * (1 << precision)
            ks.append(int(-0.5 + v) if v < 0 else int(0.5 + v))
        fixed.append((xmin, ks))
    return precision, fixed


def torch_resize(a, out_w, out_h):
    """upsample_avx_bilinear_bicubic_uint8 on an H×W×3 uint8 array: copy when the size is unchanged,
    horizontal pass if the width changes, then vertical pass if the height changes; each value
    clamp((2^(p-1) + sum(pixel * w)) >> p, 0, 255)."""
    in_h, in_w, _ = a.shape
    if (in_w, in_h) == (out_w, out_h):
        return a.copy()
    cur = a.astype(np.int64)
    if out_w != in_w:
        p, fixed = torch_pass_weights(in_w, out_w)
        tmp = np.zeros((in_h, out_w, 3), np.int64)
        for x, (xmin, ks) in enumerate(fixed):
            acc = np.full((in_h, 3), 1 << (p - 1), np.int64)
            for j, k in enumerate(ks):
                acc += cur[:, xmin + j, :] * k
            tmp[:, x, :] = np.clip(acc >> p, 0, 255)
        cur = tmp
    if out_h != in_h:
        p, fixed = torch_pass_weights(in_h, out_h)
        tmp = np.zeros((out_h, cur.shape[1], 3), np.int64)
        for y, (ymin, ks) in enumerate(fixed):
            acc = np.full((cur.shape[1], 3), 1 << (p - 1), np.int64)
            for j, k in enumerate(ks):
                acc += cur[ymin + j, :, :] * k
            tmp[y, :, :] = np.clip(acc >> p, 0, 255)
        cur = tmp
    return cur.astype(np.uint8)


def size_with_aspect_ratio(h, w, size, max_size):
    """transformers 5.24 image_transforms.get_size_with_aspect_ratio -> (oh, ow)."""
    raw_size = None
    mn, mx = float(min(h, w)), float(max(h, w))
    if mx / mn * size > max_size:
        raw_size = max_size * mn / mx
        size = round(raw_size)
    if (h <= w and h == size) or (w <= h and w == size):
        return h, w
    if w < h:
        return (
            int(raw_size * h / w) if raw_size is not None else int(size * h / w)
        ), size
    return size, (int(raw_size * w / h) if raw_size is not None else int(size * w / h))


def normalise_torchvision(resized):
    """Fused rescale + normalise of transformers' torchvision backend, float32 throughout."""
    x = resized.transpose(2, 0, 1).astype(np.float32)
    m = (np.array(MEAN, np.float32) * np.float32(255)).astype(np.float32)
    s = (np.array(STD, np.float32) * np.float32(255)).astype(np.float32)
    return ((x - m[:, None, None]) / s[:, None, None]).astype(np.float32)


def normalise_pil(resized):
    """transformers' `rescale` (float64 multiply, cast to float32) then `normalize` in float32."""
    x = (resized.astype(np.float64) * (1 / 255)).astype(np.float32).transpose(2, 0, 1)
    m = np.array(MEAN, np.float32)
    s = np.array(STD, np.float32)
    return ((x - m[:, None, None]) / s[:, None, None]).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240)
    # (in_w, in_h, out_w, out_h): up, down, mixed, odd, one-pixel, one dimension unchanged.
    sizes = [
        (2, 1, 1, 1),
        (1, 2, 1, 1),
        (1, 1, 5, 3),
        (4, 4, 2, 2),
        (7, 5, 1, 1),
        (16, 12, 27, 20),
        (12, 16, 20, 27),
        (40, 30, 17, 13),
        (37, 23, 37, 61),
        (29, 31, 83, 31),
        (64, 48, 107, 80),
        (53, 41, 30, 71),
        (90, 3, 31, 9),
        # Pillow 13 runs the vertical pass first here (height shrinks by > 2× the width's shrink).
        (20, 60, 18, 20),
        (30, 40, 50, 11),
        (9, 50, 9, 7),
    ]
    cases = []
    for i, (iw, ih, ow, oh) in enumerate(sizes):
        a = rng.integers(0, 256, (ih, iw, 3), dtype=np.uint8)
        if i % 2 == 1:  # flat areas and sharp edges
            a = (a // 64 * 85).astype(np.uint8)
        name = f"resize_{i:02d}_{iw}x{ih}_to_{ow}x{oh}"
        pil = np.asarray(Image.fromarray(a).resize((ow, oh), resample=Image.BILINEAR))
        tv = torch_resize(a, ow, oh)
        a.tofile(os.path.join(OUT, name + ".in.rgb"))
        pil.tofile(os.path.join(OUT, name + ".pil.rgb"))
        tv.tofile(os.path.join(OUT, name + ".torchvision.rgb"))
        cases.append(
            {
                "name": name,
                "in_w": iw,
                "in_h": ih,
                "out_w": ow,
                "out_h": oh,
                "pil_vs_torchvision_differing_values": int((pil != tv).sum()),
            }
        )
    # Whole processors on one image with a small size rule so the goldens stay small.
    detr = []
    for iw, ih in [(20, 12), (9, 31)]:
        a = rng.integers(0, 256, (ih, iw, 3), dtype=np.uint8)
        oh, ow = size_with_aspect_ratio(ih, iw, 8, 13)
        name = f"detr_{iw}x{ih}"
        a.tofile(os.path.join(OUT, name + ".in.rgb"))
        pil = np.asarray(Image.fromarray(a).resize((ow, oh), resample=Image.BILINEAR))
        normalise_pil(pil).astype("<f4").tofile(os.path.join(OUT, name + ".pil.f32"))
        normalise_torchvision(torch_resize(a, ow, oh)).astype("<f4").tofile(
            os.path.join(OUT, name + ".torchvision.f32")
        )
        detr.append(
            {
                "name": name,
                "in_w": iw,
                "in_h": ih,
                "shortest_edge": 8,
                "longest_edge": 13,
                "out_w": ow,
                "out_h": oh,
            }
        )
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"resize": cases, "detr": detr}, f, indent=1)
        f.write("\n")
    for c in cases:
        print(
            c["name"], "pil != torchvision:", c["pil_vs_torchvision_differing_values"]
        )


if __name__ == "__main__":
    main()
