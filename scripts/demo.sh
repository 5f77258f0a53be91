#!/usr/bin/env bash
# The main job on the bundled sample: set-up (idempotent), build, then refaug on data-manifest.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
./target/release/refaug inspect --manifest data-manifest.toml
