#!/usr/bin/env bash
# Runs every test: set-up (idempotent), then the Rust tests, which also drive the Python read-back checks
# (pyarrow, Hugging Face datasets) through the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --all-targets "$@"
