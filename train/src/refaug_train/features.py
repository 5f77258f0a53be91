"""Where a ref's frozen CLIP embeddings come from: one interface, `FeatureSource`.

A source gives, for a ref and the indices of its kept proposals (`filters`), the embeddings of the
ground-truth crop, of each candidate crop (the kept proposals in order, or the whole image when none is
kept: §10.3) and of each sentence. `EmbeddingShards` reads them from Parquet embedding shards (no
image, no CLIP).

Embedding shard layout read here: `refaug embed`'s (`<variant>/embeddings/<shard name>`, one row per ref;
columns used below; `image_id` and `sent_ids` are also there). `write_embedding_shard` writes the same
columns and types for tests and the benchmark:

| column | type | meaning |
|---|---|---|
| `ref_id` | int64 | the ref (joins the proposals shards) |
| `gt_embedding` | fixed_size_list<float32, D> | the ground-truth crop |
| `image_embedding` | fixed_size_list<float32, D> | the whole image (the evaluation fallback) |
| `proposal_index` | list<int32> | indices into `proposals` of the embedded (kept) proposals, stored order |
| `proposal_embeddings` | list<fixed_size_list<float32, D>> | their embeddings, same order |
| `sentence_embeddings` | list<fixed_size_list<float32, D>> | each sentence, in `sentences` order |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .filters import F32
from .shards import Refs, ShardError

EMBEDDING_COLUMNS = [
    "ref_id",
    "gt_embedding",
    "image_embedding",
    "proposal_index",
    "proposal_embeddings",
    "sentence_embeddings",
]


@dataclass(frozen=True)
class RefFeatures:
    gt: F32  # [D]
    candidates: F32  # [K, D]: kept proposals in order, or [1, D] the whole image
    sentences: F32  # [S, D]


class FeatureSource(Protocol):
    """Frozen CLIP embeddings of a ref's crops and sentences."""

    @property
    def dim(self) -> int: ...

    def features(self, refs: Refs, i: int, kept: list[int]) -> RefFeatures:
        """Row i of `refs`, whose kept proposals are `kept` (indices into its proposals; [] = fallback)."""
        ...


def _matrix(rows: list[list[float]], dim: int, where: str) -> F32:
    m = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1) if rows else np.zeros((0, dim), np.float32)
    if m.shape[1] != dim:
        raise ShardError(f"{where}: embedding of size {m.shape[1]}, expected {dim}")
    return m


class EmbeddingShards:
    """`FeatureSource` over a folder of embedding shards (layout in the module docstring)."""

    def __init__(self, folder: Path) -> None:
        paths = sorted(p for p in Path(folder).glob("*.parquet") if not p.name.startswith("."))
        if not paths:
            raise ShardError(f"{folder}: no embedding shard (*.parquet)")
        self._rows: dict[int, tuple[Path, dict[str, object]]] = {}
        dim = -1
        for p in paths:
            try:
                t = pq.read_table(p, columns=EMBEDDING_COLUMNS)
            except (pa.ArrowInvalid, KeyError, OSError) as e:
                raise ShardError(f"{p}: not an embedding shard: {e}") from e
            for row in t.to_pylist():
                rid = int(row["ref_id"])
                if rid in self._rows:
                    raise ShardError(f"{p}: ref {rid} repeats ({self._rows[rid][0]})")
                if dim < 0:
                    dim = len(row["gt_embedding"])
                self._rows[rid] = (p, row)
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def features(self, refs: Refs, i: int, kept: list[int]) -> RefFeatures:
        rid = int(refs.ref_id[i])
        if rid not in self._rows:
            raise ShardError(f"{refs.source[i]}: ref {rid} has no row in the embedding shards")
        path, row = self._rows[rid]
        where = f"{path}: ref {rid}"
        index = [int(k) for k in row["proposal_index"]]  # type: ignore[attr-defined]
        embs = _matrix(row["proposal_embeddings"], self._dim, where)  # type: ignore[arg-type]
        if len(index) != len(embs):
            raise ShardError(f"{where}: {len(index)} proposal_index, {len(embs)} proposal_embeddings")
        pos = {k: j for j, k in enumerate(index)}
        missing = [k for k in kept if k not in pos]
        if missing:
            raise ShardError(f"{where}: kept proposals {missing} have no embedding (embedded: {index})")
        cands = embs[[pos[k] for k in kept]] if kept else _matrix([row["image_embedding"]], self._dim, where)  # type: ignore[list-item]
        sents = _matrix(row["sentence_embeddings"], self._dim, where)  # type: ignore[arg-type]
        if len(sents) != len(refs.sentences[i]):
            raise ShardError(
                f"{where}: {len(sents)} sentence embeddings for {len(refs.sentences[i])} sentences"
            )
        gt = _matrix([row["gt_embedding"]], self._dim, where)[0]  # type: ignore[list-item]
        return RefFeatures(gt=gt, candidates=cands, sentences=sents)


def write_embedding_shard(path: Path, rows: list[dict[str, object]]) -> None:
    """Write rows in `refaug embed`'s schema (tests and the benchmark make synthetic shards with it);
    `image_id` and `sent_ids` default to the ref id and 0..S-1 when a row has none."""
    dim = len(rows[0]["gt_embedding"]) if rows else 1  # type: ignore[arg-type]
    vec = pa.list_(pa.float32(), dim)
    schema = pa.schema(
        [
            pa.field("ref_id", pa.int64(), False),
            pa.field("image_id", pa.int64(), False),
            pa.field("gt_embedding", vec, False),
            pa.field("image_embedding", vec, False),
            pa.field("proposal_index", pa.list_(pa.field("element", pa.int32(), False)), False),
            pa.field("proposal_embeddings", pa.list_(pa.field("element", vec, False)), False),
            pa.field("sent_ids", pa.list_(pa.field("element", pa.int64(), False)), False),
            pa.field("sentence_embeddings", pa.list_(pa.field("element", vec, False)), False),
        ]
    )
    full = [
        {
            "image_id": r["ref_id"],
            "sent_ids": list(range(len(r["sentence_embeddings"]))),  # type: ignore[arg-type]
            **r,
        }
        for r in rows
    ]
    pq.write_table(pa.Table.from_pylist(full, schema=schema), path)
