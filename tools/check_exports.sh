#!/usr/bin/env bash
# The export check (outside `cargo test`: it needs torch, ultralytics, yolov5 and transformers, ~6.5 GB):
# builds yolov5s, yolov8x, detr-resnet-50 and fasterrcnn-resnet50-fpn with random weights through
# tools/export_detectors.py -- the same code that exports the official weights -- and runs
# `refaug detectors check` on copies of the shipped specs that point at the files. Nothing is downloaded.
#
#   bash ../shared/reference/tools/setup_venv.sh "$VENV"    # once: the reference environment
#   bash tools/check_exports.sh "$VENV/bin/python"          # about 10 minutes on 2 cores, ~640 MB of ONNX
#
# Exit status: refaug's (0 when every spec is accepted).
set -euo pipefail
PY=${1:?usage: bash tools/check_exports.sh PYTHON   (the reference environment's interpreter)}
cd "$(dirname "$0")/.."
OUT=target/export-check
# The reference environment's offline switches and caches, when the shared folder is there.
if [ -f ../shared/reference/tools/env.sh ]; then
    # shellcheck disable=SC1091
    source ../shared/reference/tools/env.sh
fi
"$PY" tools/export_detectors.py all --random --out "$OUT/models" --write-specs "$OUT/specs"
cargo run --release --quiet -- detectors check "$OUT"/specs/*.toml
