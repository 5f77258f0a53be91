#!/usr/bin/env python3
"""Writes tests/data/letterbox/shapes.csv: the model-input geometry that yolov5's AutoShape and
ultralytics' predictor choose per image size, taken from the libraries themselves.

Run from the repository root in the reference environment (yolov5 7.0.14 = ultralytics/yolov5
v7.0, ultralytics 8.4.190, torch, opencv; `../shared/reference/tools/setup_venv.sh` makes it):

    "$VENV/bin/python" tools/make_letterbox_shapes.py

How each geometry is read (no formula of refaug's is used):

* `autoshape`: the real `yolov5.models.common.AutoShape.forward(image, size=640)` on an all-zero
  H x W x 3 uint8 image, with a stand-in model (stride 32, as DetectMultiBackend reads from the
  ONNX metadata) that records the tensor AutoShape hands it; the input shape is that tensor's, the
  resized image is where it is 0 (the padding is 114/255);
* `predict`: the real `ultralytics.data.augment.LetterBox((640, 640), auto=True, stride=32)`, as
  `BasePredictor.pre_transform` builds it for one image with `rect=True` and a dynamic ONNX or
  `.pt` model, on the same zero image; the padding is 114.

Sizes: every image whose long side is 640 (W = 640 and H = 5..640, H = 640 and W = 1..639: every
COCO size class; AutoShape reads an array less than 5 rows high as C x H x W, so H < 5 is left out), a grid of other sizes (W, H in 100, 125, ..., 1000) and a few named cases
(428x300, 600x400, 500x375, 612x612). Columns: `w,h,rule,input_w,input_h,new_w,new_h,top,left`.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import torch
from ultralytics.data.augment import LetterBox
from yolov5.models.common import AutoShape

OUT = os.path.join("tests", "data", "letterbox", "shapes.csv")


class Captured(Exception):
    """Carries the tensor AutoShape passed to the model."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__("captured")
        self.x = x


class Detect(torch.nn.Module):
    """What AutoShape touches on a PyTorch model's last layer."""

    inplace = True
    export = False


class StandIn(torch.nn.Module):
    """A model AutoShape accepts (stride 32, one parameter for the dtype/device), recording its input."""

    def __init__(self) -> None:
        super().__init__()
        self.stride = 32
        self.names = ["x"]
        self.model = torch.nn.ModuleList([Detect()])
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, augment: bool = False) -> torch.Tensor:
        raise Captured(x)


def region(img: np.ndarray) -> tuple[int, int, int, int, int, int]:
    """(input_w, input_h, new_w, new_h, top, left) of an H x W x C letterboxed zero image."""
    inside = np.argwhere(img.max(axis=2) == 0)
    (top, left), (bottom, right) = inside.min(0), inside.max(0)
    return (
        img.shape[1],
        img.shape[0],
        int(right - left + 1),
        int(bottom - top + 1),
        int(top),
        int(left),
    )


def autoshape(model: AutoShape, w: int, h: int) -> tuple[int, ...]:
    try:
        model(np.zeros((h, w, 3), np.uint8), size=640)
    except Captured as c:
        x = (c.x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        return region(x)
    raise AssertionError("AutoShape did not call the model")


def predict(w: int, h: int) -> tuple[int, ...]:
    out = LetterBox((640, 640), auto=True, stride=32)(
        image=np.zeros((h, w, 3), np.uint8)
    )
    return region(out)


def sizes() -> list[tuple[int, int]]:
    out = [(640, h) for h in range(5, 641)] + [(w, 640) for w in range(1, 640)]
    out += [(w, h) for w in range(100, 1001, 25) for h in range(100, 1001, 25)]
    out += [(428, 300), (600, 400), (500, 375), (612, 612)]
    seen: set[tuple[int, int]] = set()
    return [s for s in out if not (s in seen or seen.add(s))]


def main() -> None:
    model = AutoShape(StandIn(), verbose=False)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    rows = 0
    with open(OUT, "w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(
            ["w", "h", "rule", "input_w", "input_h", "new_w", "new_h", "top", "left"]
        )
        for w, h in sizes():
            out.writerow([w, h, "autoshape", *autoshape(model, w, h)])
            out.writerow([w, h, "predict", *predict(w, h)])
            rows += 2
    print(f"wrote {OUT} ({rows} rows)")


if __name__ == "__main__":
    main()
