#!/usr/bin/env python3
"""What storing `refaug embed`'s vectors as float16 would change: file size and zero-shot picks.

Usage: float16_effect.py VARIANT_DIR [--embeddings DIR]

1. Size: every embedding shard rewritten by pyarrow (zstd 3, as refaug writes) twice, its vectors
   as `fixed_size_list<float32, D>` and as `fixed_size_list<float16, D>`; total bytes of each.
2. Effect: a copy whose vectors are rounded to float16 and back (same float32 schema, so the
   training module reads it); the zero-shot baseline (`refaug_train`, §6 metrics) on the float32
   and the rounded embeddings, per split: the metrics, how many refs' picks change, and the
   largest change of a cosine similarity.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from refaug_train import datasets as D
from refaug_train.features import EmbeddingShards
from refaug_train.heads import ZeroShot
from refaug_train.shards import read_refs
from refaug_train.train import Evaluation, evaluate

VECTOR_COLUMNS = [
    "gt_embedding",
    "image_embedding",
    "proposal_embeddings",
    "sentence_embeddings",
]


def convert(arr: pa.Array, dtype: np.dtype[np.floating]) -> pa.Array:
    """`arr` (a vector or list-of-vectors column) with its floats cast to `dtype`."""
    if pa.types.is_fixed_size_list(arr.type):
        values = np.asarray(arr.values.to_numpy(zero_copy_only=False), dtype=dtype)
        element = pa.field("element", pa.from_numpy_dtype(dtype), nullable=False)
        return pa.FixedSizeListArray.from_arrays(
            pa.array(values),
            type=pa.list_(element, arr.type.list_size),
            mask=arr.is_null(),
        )
    inner = convert(arr.values, dtype)
    return pa.ListArray.from_arrays(
        arr.offsets,
        inner,
        type=pa.list_(pa.field("element", inner.type, nullable=False)),
        mask=arr.is_null(),
    )


def rewrite(src: Path, dest: Path, dtype: np.dtype[np.floating], back: bool) -> int:
    """`src` with its vectors cast to `dtype` (and back to float32 when `back`); bytes written."""
    table = pq.read_table(src)
    for name in VECTOR_COLUMNS:
        col = table.column(name).combine_chunks()
        new = convert(col, dtype)
        if back:
            new = convert(new, np.dtype(np.float32))
        i = table.schema.get_field_index(name)
        table = table.set_column(i, pa.field(name, new.type, nullable=True), new)
    pq.write_table(table, dest, compression="zstd", compression_level=3)
    return dest.stat().st_size


def zero_shot(variant: Path, embeddings: Path) -> dict[str, Evaluation]:
    refs, src = read_refs(variant), EmbeddingShards(embeddings)
    out = {}
    for split in sorted(set(refs.split)):
        out[split] = evaluate(ZeroShot(), D.ranking_eval(refs, src, split))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", type=Path)
    ap.add_argument("--embeddings", type=Path)
    args = ap.parse_args()
    emb: Path = args.embeddings or args.variant / "embeddings"
    shards = sorted(emb.glob("*.parquet"))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for sub in ("f32", "f16", "rounded"):
            (t / sub).mkdir()
        f32 = sum(
            rewrite(s, t / "f32" / s.name, np.dtype(np.float32), False) for s in shards
        )
        f16 = sum(
            rewrite(s, t / "f16" / s.name, np.dtype(np.float16), False) for s in shards
        )
        for s in shards:
            rewrite(s, t / "rounded" / s.name, np.dtype(np.float16), True)
        print(
            f"{len(shards)} shards: float32 {f32:,} bytes, float16 {f16:,} bytes ({f16 / f32:.3f})"
        )
        base = zero_shot(args.variant, emb)
        half = zero_shot(args.variant, t / "rounded")
    for split, ev in base.items():
        h = half[split]
        changed = sum(a != b for a, b in zip(ev.pred, h.pred, strict=True))
        dcos = max(
            (abs(a - b) for a, b in zip(ev.cos, h.cos, strict=True)), default=0.0
        )
        keys = sorted(ev.summary)
        print(
            f"{split}: {len(ev.pred)} refs, picks changed {changed}, max |Δcos| {dcos:.2e}"
        )
        print("  float32: " + ", ".join(f"{k} {ev.summary[k]:.4f}" for k in keys))
        print("  float16: " + ", ".join(f"{k} {h.summary[k]:.4f}" for k in keys))


if __name__ == "__main__":
    main()
