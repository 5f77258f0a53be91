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

A ref whose image `refaug embed` could not read has null image-side columns (the first four vector
columns) and an entry in the shard's `refaug.image_failures` metadata. Reading such a ref is an error
naming the shard, the ref, the image and the reason: training on a silently shrunken set would make the
results incomparable, and a rerun of `refaug embed` retries the image.
"""

from __future__ import annotations

import json
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
IMAGE_FAILURES_KEY = b"refaug.image_failures"


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
        # ref id -> "image I (file) could not be read: reason", from each shard's metadata
        self._unread: dict[int, str] = {}
        dim = -1
        for p in paths:
            try:
                t = pq.read_table(p, columns=EMBEDDING_COLUMNS)
                meta = t.schema.metadata or {}
                failures = json.loads(meta[IMAGE_FAILURES_KEY]) if IMAGE_FAILURES_KEY in meta else []
                size = t.schema.field("gt_embedding").type.list_size
            except (pa.ArrowInvalid, KeyError, OSError, AttributeError, ValueError) as e:
                raise ShardError(f"{p}: not an embedding shard: {e}") from e
            if dim >= 0 and size != dim:
                raise ShardError(f"{p}: embeddings of size {size}, the other shards' are {dim}")
            dim = size
            for f in failures:
                for rid in f.get("ref_ids", []):
                    image = f"image {f.get('image_id')} ({f.get('file_name')})"
                    self._unread[int(rid)] = f"{image} could not be read: {f.get('reason')}"
            for row in t.to_pylist():
                rid = int(row["ref_id"])
                if rid in self._rows:
                    raise ShardError(f"{p}: ref {rid} repeats ({self._rows[rid][0]})")
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
        if row["gt_embedding"] is None:
            why = self._unread.get(rid, "no entry in the shard's refaug.image_failures")
            raise ShardError(
                f"{where} has no image embeddings: `refaug embed` recorded {why}; fix the image and run "
                "`refaug embed` again (it retries the shards with unread images)"
            )
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


def write_embedding_shard(
    path: Path, rows: list[dict[str, object]], image_failures: list[dict[str, object]] | None = None
) -> None:
    """Write rows in `refaug embed`'s schema (tests and the benchmark make synthetic shards with it);
    `image_id` and `sent_ids` default to the ref id and 0..S-1 when a row has none. The image-side
    columns are nullable, as refaug's; `image_failures` becomes the `refaug.image_failures` metadata."""
    dims = [len(r["gt_embedding"]) for r in rows if r.get("gt_embedding") is not None]  # type: ignore[arg-type]
    dim = dims[0] if dims else 1
    vec = pa.list_(pa.field("element", pa.float32(), False), dim)
    schema = pa.schema(
        [
            pa.field("ref_id", pa.int64(), False),
            pa.field("image_id", pa.int64(), False),
            pa.field("gt_embedding", vec, True),
            pa.field("image_embedding", vec, True),
            pa.field("proposal_index", pa.list_(pa.field("element", pa.int32(), False)), True),
            pa.field("proposal_embeddings", pa.list_(pa.field("element", vec, False)), True),
            pa.field("sent_ids", pa.list_(pa.field("element", pa.int64(), False)), False),
            pa.field("sentence_embeddings", pa.list_(pa.field("element", vec, False)), False),
        ],
        metadata={IMAGE_FAILURES_KEY: json.dumps(image_failures).encode()} if image_failures else None,
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
