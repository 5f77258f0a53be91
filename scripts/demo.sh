#!/usr/bin/env bash
# The main job on the bundled sample: set-up (idempotent), build, then `refaug run` on
# data-manifest.toml (three variants: YOLO, DETR, Faster R-CNN, here their tiny test stand-ins),
# then the report and a gallery of the proposals (out/sample/gallery/index.html, linked from
# out/sample/report/report.md); then the training side: `refaug embed` (frozen CLIP embeddings
# beside every variant, here a tiny stand-in encoder), `refaug validate` on all of it, then
# `refaug-train grid`: each of the research's three heads (H1 ClipSf net1, H2 FLYP, H3 self-attention)
# trained for a few epochs on each variant from the embeddings alone, evaluated beside the zero-shot
# baseline, and the results table (out/sample/runs/report/results.md, .csv, .json) with loss and
# accuracy plots (loss.png, accuracy.png there; one log.csv and checkpoint per epoch per run).
# Departures from the research's settings, for 53 refs and stand-in models: batch 8 instead of 512/1024
# (else one step per epoch); --best-iou-above 0, because the research's training filter (best IoU
# > 0.5) leaves 5/0/0 of the 32 train refs of the three stand-in detectors for H1 and H3; --normalize
# for FLYP, whose unnormalised loss diverges on the stand-in embeddings.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
./target/release/refaug inspect --manifest data-manifest.toml
./target/release/refaug run --manifest data-manifest.toml "$@"
./target/release/refaug report out/sample --compare
./target/release/refaug gallery out/sample
./target/release/refaug embed --manifest data-manifest.toml
# After embed, so that it checks the embeddings too (and an output embedded by an older refaug has
# been brought to the current contract by then).
./target/release/refaug validate out/sample
.venv/bin/refaug-train grid out/sample --epochs 5 --batch-size 8 --best-iou-above 0 --normalize --quiet
