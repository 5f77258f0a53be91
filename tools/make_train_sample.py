#!/usr/bin/env python3
"""Copies refaug's output on the bundled sample into train/tests/data/sample/, the training module's test
input: for each variant of data-manifest.toml (yolo, detr, fasterrcnn: the tiny stand-in detectors) its
proposal shards and its `refaug embed` embedding shards (the 16-d stand-in CLIP encoder,
encoders/fixture-clip.toml). 53 refs, ~0.3 MB in all.

Re-run from the repository root after `refaug run` and `refaug embed` on data-manifest.toml (what
scripts/demo.sh does; the Rust tests check those shards against independent computations:
tests/run.rs and tests/embed_run.rs):

    bash scripts/demo.sh && .venv/bin/python tools/make_train_sample.py [out/sample]

Only the Parquet files are copied (no manifest.json: it records the run's paths and times), so the copy
is identical whenever refaug's output is.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq

VARIANTS = ["yolo", "detr", "fasterrcnn"]
DEST = Path("train/tests/data/sample")


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "out/sample")
    if DEST.exists():
        shutil.rmtree(DEST)
    for v in VARIANTS:
        for sub in ("", "embeddings"):
            files = sorted((src / v / sub).glob("*.parquet"))
            if not files:
                sys.exit(
                    f"{src / v / sub}: no Parquet shard (run refaug run and refaug embed first)"
                )
            (DEST / v / sub).mkdir(parents=True, exist_ok=True)
            for f in files:
                pq.read_metadata(f)  # a complete Parquet file, not a half-written one
                shutil.copyfile(f, DEST / v / sub / f.name)
                print(DEST / v / sub / f.name)


if __name__ == "__main__":
    main()
