#!/usr/bin/env python3
"""Export the research's detectors to the ONNX files the shipped specs name (`detectors/*.toml`).

    python tools/export_detectors.py yolov5s yolov8x detr-resnet-50 fasterrcnn-resnet50-fpn --out models
    python tools/export_detectors.py all --random --out target/export-check/models \
        --write-specs target/export-check/specs

Run it in the reference environment (`../shared/reference/tools/setup_venv.sh`: torch 2.15,
torchvision 0.29.2, yolov5 7.0.14 = ultralytics/yolov5 v7.0, ultralytics 8.4.190, transformers
5.24), from the repository root. Without `--random` it loads the official weights, which needs
internet: yolov5s.pt (yolov5 v7.0 release), yolov8x.pt (ultralytics assets), facebook/detr-resnet-50
(Hugging Face Hub), torchvision's COCO_V1 Faster R-CNN weights. Then pin each spec's
`model_sha256` with the printed hash and run `refaug detectors check detectors/<name>.toml`.

`--random` builds the same architectures with random weights (nothing is downloaded) and exports
them through the same code: the check that the export path gives files refaug accepts, on a
machine without internet. `--write-specs DIR` writes a copy of each shipped spec whose `model`
points at the exported file (hash "unknown"), for `refaug detectors check DIR/*.toml`
(`tools/check_exports.sh` does all of it).

What each export does (the IO the specs' families expect, see README "Detectors"):

* yolov5s: yolov5 v7.0 `export.py` (`yolov5.export.run(include=["onnx"], dynamic=True, opset=17)`):
  `images` [batch,3,height,width] -> `output0` [batch,anchors,85]. Random: `models/yolo.py`
  `Model("yolov5s.yaml", nc=80)` saved as a checkpoint and exported by the same call.
* yolov8x: ultralytics `YOLO("yolov8x.pt").export(format="onnx", dynamic=True)`: `images` ->
  `output0` [batch,84,anchors]. Random: `YOLO("yolov8x.yaml")`, same export call.
* detr-resnet-50: transformers `DetrForObjectDetection.from_pretrained("facebook/detr-resnet-50")`,
  a wrapper `pixel_values -> (logits, pred_boxes)`, `torch.onnx.export(dynamo=False, opset 17)`
  with dynamic batch, height and width (no `pixel_mask` input: refaug never pads DETR batches).
  Random: `DetrConfig(backbone="resnet50", use_pretrained_backbone=False)` with the 91 COCO slots.
* fasterrcnn-resnet50-fpn: torchvision `fasterrcnn_resnet50_fpn(weights="COCO_V1",
  box_score_thresh=0.0)`, `torch.onnx.export(dynamo=False, opset 17)`: `images` [3,height,width]
  -> `boxes`, `labels`, `scores`. Random: `weights=None, weights_backbone=None`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ("yolov5s", "yolov8x", "detr-resnet-50", "fasterrcnn-resnet50-fpn")
# The file each shipped spec names (`model`, relative to models/).
FILES = {
    "yolov5s": "yolov5s.onnx",
    "yolov8x": "yolov8x.onnx",
    "detr-resnet-50": "detr-resnet-50.onnx",
    "fasterrcnn-resnet50-fpn": "fasterrcnn_resnet50_fpn.onnx",
}
OPSET = 17


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_yolov5s(dest: str, random: bool, work: str) -> None:
    # yolov5 v7.0 checkpoints are pickled modules; torch >= 2.6 loads weights only unless told
    # (yolov5 v7.0 predates that default). The file is the yolov5 release's or the one made here.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import torch
    import yolov5
    import yolov5.export
    import yolov5.models.common
    import yolov5.utils.downloads

    # yolov5 7.0.14 (PyPI) first asks the Hugging Face Hub through an import that huggingface_hub
    # >= 1.0 no longer has; for a local file it returns None anyway (../shared/reference/README.md).
    for module in (yolov5.models.common, yolov5.utils.downloads):
        if hasattr(module, "attempt_download_from_hub"):
            module.attempt_download_from_hub = lambda *a, **k: None
    if random:
        from yolov5.models.yolo import Model

        torch.manual_seed(0)
        cfg = os.path.join(os.path.dirname(yolov5.__file__), "models", "yolov5s.yaml")
        model = Model(cfg, ch=3, nc=80)
        model.names = [f"class{i}" for i in range(80)]
        weights = os.path.join(work, "yolov5s.pt")
        torch.save({"model": model, "epoch": -1}, weights)
    else:
        weights = os.path.join(
            work, "yolov5s.pt"
        )  # downloaded there by attempt_download
    yolov5.export.run(
        weights=weights, include=("onnx",), dynamic=True, opset=OPSET, imgsz=(640, 640)
    )
    shutil.move(os.path.splitext(weights)[0] + ".onnx", dest)


def export_yolov8x(dest: str, random: bool, work: str) -> None:
    from ultralytics import YOLO

    source = "yolov8x.yaml" if random else "yolov8x.pt"
    cwd = os.getcwd()
    os.chdir(work)  # the .pt download and the export land here
    try:
        out = YOLO(source).export(format="onnx", dynamic=True, imgsz=640)
    finally:
        os.chdir(cwd)
    shutil.move(os.path.join(work, out) if not os.path.isabs(out) else out, dest)


def export_detr(dest: str, random: bool, work: str) -> None:
    import torch
    from transformers import DetrConfig, DetrForObjectDetection

    if random:
        torch.manual_seed(0)
        config = DetrConfig(
            backbone="resnet50", use_pretrained_backbone=False, num_labels=91
        )
        model = DetrForObjectDetection(config)
    else:
        model = DetrForObjectDetection.from_pretrained("facebook/detr-resnet-50")
    model.eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(
            self, pixel_values: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.m(pixel_values=pixel_values)
            return out.logits, out.pred_boxes

    example = torch.rand(1, 3, 800, 1066)
    torch.onnx.export(
        Wrapper(model),
        (example,),
        dest,
        dynamo=False,
        opset_version=OPSET,
        do_constant_folding=True,
        input_names=["pixel_values"],
        output_names=["logits", "pred_boxes"],
        dynamic_axes={
            "pixel_values": {0: "batch", 2: "height", 3: "width"},
            "logits": {0: "batch"},
            "pred_boxes": {0: "batch"},
        },
    )


def export_fasterrcnn(dest: str, random: bool, work: str) -> None:
    import torch
    import torchvision as tv

    if random:
        torch.manual_seed(0)
        m = tv.models.detection.fasterrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, box_score_thresh=0.0
        )
    else:
        m = tv.models.detection.fasterrcnn_resnet50_fpn(
            weights="COCO_V1", box_score_thresh=0.0
        )
    m.eval()
    torch.onnx.export(
        m,
        ([torch.rand(3, 480, 640)],),
        dest,
        dynamo=False,
        opset_version=OPSET,
        do_constant_folding=True,
        input_names=["images"],
        output_names=["boxes", "labels", "scores"],
        dynamic_axes={
            "images": {1: "height", 2: "width"},
            "boxes": {0: "num_detections"},
            "labels": {0: "num_detections"},
            "scores": {0: "num_detections"},
        },
    )


EXPORTERS = {
    "yolov5s": export_yolov5s,
    "yolov8x": export_yolov8x,
    "detr-resnet-50": export_detr,
    "fasterrcnn-resnet50-fpn": export_fasterrcnn,
}


def write_spec(name: str, model: str, specs_dir: str) -> str:
    """A copy of detectors/<name>.toml whose model is `model` (absolute) and hash "unknown"."""
    with open(os.path.join(ROOT, "detectors", f"{name}.toml")) as fh:
        text = fh.read()
    text = re.sub(r'(?m)^model = ".*"$', f'model = "{os.path.abspath(model)}"', text)
    text = re.sub(r'(?m)^model_sha256 = ".*"$', 'model_sha256 = "unknown"', text)
    path = os.path.join(specs_dir, f"{name}.toml")
    with open(path, "w") as fh:
        fh.write(text)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("names", nargs="+", help=f"any of {', '.join(NAMES)}, or all")
    ap.add_argument(
        "--out", default="models", help="folder for the ONNX files (default models/)"
    )
    ap.add_argument(
        "--random",
        action="store_true",
        help="random weights (nothing downloaded): the export check",
    )
    ap.add_argument(
        "--write-specs",
        metavar="DIR",
        help="write spec copies pointing at the exported files",
    )
    a = ap.parse_args()
    names = list(NAMES) if a.names == ["all"] else a.names
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        ap.error(f"unknown detector(s) {unknown}; choose from {', '.join(NAMES)}")
    os.makedirs(a.out, exist_ok=True)
    if a.write_specs:
        os.makedirs(a.write_specs, exist_ok=True)
    for name in names:
        dest = os.path.join(a.out, FILES[name])
        with tempfile.TemporaryDirectory() as work:
            EXPORTERS[name](dest, a.random, work)
        print(
            f"{name}: {dest} ({os.path.getsize(dest)} bytes) sha256 {sha256(dest)}",
            flush=True,
        )
        if a.write_specs:
            print(f"  spec {write_spec(name, dest, a.write_specs)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
