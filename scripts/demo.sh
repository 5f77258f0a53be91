#!/usr/bin/env bash
# The main job on the bundled sample: set-up (idempotent), build, then `refaug run` on
# data-manifest.toml (three variants: YOLO, DETR, Faster R-CNN, here their tiny test stand-ins),
# then `refaug validate` on what it wrote, the report and a gallery of the proposals
# (out/sample/gallery/index.html, linked from out/sample/report/report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
./target/release/refaug inspect --manifest data-manifest.toml
./target/release/refaug run --manifest data-manifest.toml "$@"
./target/release/refaug validate out/sample
./target/release/refaug report out/sample --compare
./target/release/refaug gallery out/sample
