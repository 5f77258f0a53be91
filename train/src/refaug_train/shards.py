"""A variant's proposal shards (refaug's contract, `schemas/README.md`), read with pyarrow into columns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .filters import F32

I64 = npt.NDArray[np.int64]

COLUMNS = ["ref_id", "file_name", "split", "image_width", "image_height", "sentences", "gt_box", "proposals"]


class ShardError(ValueError):
    """A shard that does not follow the contract; the message names the file (and the ref when known)."""


@dataclass
class Refs:
    """The rows of one variant, columnar; proposals flattened with offsets: ref i owns
    prop_off[i]:prop_off[i+1]."""

    ref_id: I64
    file_name: list[str]
    split: list[str]
    width: npt.NDArray[np.int32]
    height: npt.NDArray[np.int32]
    sentences: list[list[str]]
    gt: F32  # [N, 4] xyxy
    prop_off: I64  # [N + 1]
    prop_boxes: F32  # [T, 4] xyxy, stored order
    prop_scores: F32  # [T]
    source: list[str]  # the shard each row came from

    def __len__(self) -> int:
        return len(self.ref_id)

    def proposals(self, i: int) -> tuple[F32, F32]:
        a, b = int(self.prop_off[i]), int(self.prop_off[i + 1])
        return self.prop_boxes[a:b], self.prop_scores[a:b]


def shard_paths(variant_dir: Path, split: str | None = None) -> list[Path]:
    """`<split>-NNNNN-of-NNNNN.parquet` files of a variant folder, sorted (split, index)."""
    pattern = f"{split}-*-of-*.parquet" if split else "*-*-of-*.parquet"
    paths = sorted(p for p in Path(variant_dir).glob(pattern) if not p.name.startswith("."))
    if not paths:
        raise ShardError(f"{variant_dir}: no shard {pattern}")
    return paths


def _f32(col: pa.Array) -> F32:
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float32)


def _offsets(arr: pa.ListArray) -> I64:
    off = np.asarray(arr.offsets, dtype=np.int64)
    return off - off[0]


def read_refs(variant_dir: Path, splits: list[str] | None = None) -> Refs:
    """Every row of the variant's shards (all splits, or `splits`), in shard order."""
    paths = [p for s in (splits or [None]) for p in shard_paths(variant_dir, s)]  # type: ignore[list-item]
    tables, sources = [], []
    for p in paths:
        try:
            t = pq.read_table(p, columns=COLUMNS)
        except (pa.ArrowInvalid, KeyError, OSError) as e:
            raise ShardError(f"{p}: not a refaug proposals shard: {e}") from e
        tables.append(t)
        sources += [str(p)] * t.num_rows
    t = pa.concat_tables(tables).combine_chunks()
    props = t.column("proposals").chunk(0) if t.num_rows else pa.array([], t.schema.field("proposals").type)
    flat = props.flatten()
    boxes = np.stack([_f32(flat.field(k)) for k in ("xmin", "ymin", "xmax", "ymax")], axis=1)
    gt_col = t.column("gt_box").chunk(0) if t.num_rows else None
    gt = (
        np.stack([_f32(gt_col.field(k)) for k in ("xmin", "ymin", "xmax", "ymax")], axis=1)
        if gt_col is not None
        else np.zeros((0, 4), np.float32)
    )
    sents = pc.list_flatten(t.column("sentences")).combine_chunks().field("sent") if t.num_rows else None
    sent_off = _offsets(t.column("sentences").chunk(0)) if t.num_rows else np.zeros(1, np.int64)
    sent_list = sents.to_pylist() if sents is not None else []
    sentences = [sent_list[int(sent_off[i]) : int(sent_off[i + 1])] for i in range(t.num_rows)]
    for i, s in enumerate(sentences):
        if not s:
            raise ShardError(f"{sources[i]}: ref {t.column('ref_id')[i].as_py()} has no sentence")
    return Refs(
        ref_id=np.asarray(t.column("ref_id").to_numpy(), dtype=np.int64),
        file_name=t.column("file_name").to_pylist(),
        split=t.column("split").to_pylist(),
        width=np.asarray(t.column("image_width").to_numpy(), dtype=np.int32),
        height=np.asarray(t.column("image_height").to_numpy(), dtype=np.int32),
        sentences=sentences,
        gt=gt,
        prop_off=_offsets(props),
        prop_boxes=boxes.reshape(-1, 4),
        prop_scores=_f32(flat.field("score")),
        source=sources,
    )
