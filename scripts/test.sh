#!/usr/bin/env bash
# Runs every test: set-up (idempotent), the Rust tests, which also drive the Python read-back checks
# (pyarrow, Hugging Face datasets) through the project's .venv, then the training module's pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --all-targets "$@"
# The training module (train/): lint, formatting, then its tests.
.venv/bin/ruff check -q train
.venv/bin/ruff format -q --check train
(cd train && ../.venv/bin/python -m pytest -q -p no:cacheprovider)
