#!/usr/bin/env bash
# The main job on the bundled sample: set-up (idempotent), build, then `refaug run` on
# data-manifest.toml (three variants: YOLO, DETR, Faster R-CNN, here their tiny test stand-ins),
# then `refaug validate` on what it wrote, the report and a gallery of the proposals
# (out/sample/gallery/index.html, linked from out/sample/report/report.md); then the training side:
# `refaug embed` (frozen CLIP embeddings beside every variant, here a tiny stand-in encoder), a few
# epochs of the research's contrastive head (FLYP) on the DETR variant from the embeddings alone,
# its evaluation beside the zero-shot baseline, and the results table
# (out/sample/runs/report/results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
./target/release/refaug inspect --manifest data-manifest.toml
./target/release/refaug run --manifest data-manifest.toml "$@"
./target/release/refaug validate out/sample
./target/release/refaug report out/sample --compare
./target/release/refaug gallery out/sample
./target/release/refaug embed --manifest data-manifest.toml
train=.venv/bin/refaug-train
runs=out/sample/runs
"$train" fit --variant out/sample/detr --head flyp --normalize --epochs 3 --out "$runs/detr-flyp" --quiet
"$train" evaluate --variant out/sample/detr --checkpoint "$runs/detr-flyp/epoch-03.pt" --out "$runs/detr-flyp/eval"
"$train" evaluate --variant out/sample/detr --head zero-shot --out "$runs/detr-zero-shot"
"$train" report "$runs/detr-flyp/eval" "$runs/detr-zero-shot" --out "$runs/report"
