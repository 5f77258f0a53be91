"""Synthetic variants (proposal shard + embedding shard) for tests, the demo and the benchmark.

Each ref has a ground-truth box, `k` proposals of which one overlaps it (IoU > 0.5) and the rest are random,
and embeddings where the overlapping proposal's crop is close to the ground-truth crop and the sentences are
a fixed random linear map of the ground-truth crop plus noise: zero-shot cosine ranking is near chance, a
trained head can learn the map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .features import write_embedding_shard
from .filters import RESEARCH_FILTER

BOX = pa.struct([(k, pa.float32()) for k in ("xmin", "ymin", "xmax", "ymax")])
PROPOSAL = pa.struct(
    [(k, pa.float32()) for k in ("xmin", "ymin", "xmax", "ymax", "score")]
    + [("class_id", pa.int32()), ("label", pa.string())]
)
SENTENCE = pa.struct(
    [("sent_id", pa.int64()), ("sent", pa.string()), ("raw", pa.string()), ("tokens", pa.list_(pa.string()))]
)
PROPOSALS_SCHEMA = pa.schema(
    [
        ("ref_id", pa.int64()),
        ("ann_id", pa.int64()),
        ("image_id", pa.int64()),
        ("file_name", pa.string()),
        ("split", pa.string()),
        ("category_id", pa.int32()),
        ("category_name", pa.string()),
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("sentences", pa.list_(SENTENCE)),
        ("gt_box", BOX),
        ("proposals", pa.list_(PROPOSAL)),
    ]
)


def proposal_row(
    ref_id: int,
    split: str,
    gt: list[float],
    proposals: list[tuple[list[float], float]],
    sentences: list[str],
    size: tuple[int, int] = (640, 480),
) -> dict[str, object]:
    """One row of the proposals contract's columns that the readers use (plus ids, category)."""
    return {
        "ref_id": ref_id,
        "ann_id": ref_id,
        "image_id": ref_id,
        "file_name": f"img{ref_id}.jpg",
        "split": split,
        "category_id": 1,
        "category_name": "person",
        "image_width": size[0],
        "image_height": size[1],
        "sentences": [
            {"sent_id": ref_id * 10 + j, "sent": s, "raw": s, "tokens": s.split()}
            for j, s in enumerate(sentences)
        ],
        "gt_box": dict(zip(("xmin", "ymin", "xmax", "ymax"), gt, strict=True)),
        "proposals": [
            {
                **dict(zip(("xmin", "ymin", "xmax", "ymax"), b, strict=True)),
                "score": sc,
                "class_id": 0,
                "label": "x",
            }
            for b, sc in proposals
        ],
    }


def write_proposal_shard(path: Path, rows: list[dict[str, object]]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=PROPOSALS_SCHEMA), path)


def make_variant(
    folder: Path,
    splits: dict[str, int],
    k: int = 10,
    dim: int = 16,
    sentences: int = 2,
    seed: int = 0,
    noise: float = 0.3,
) -> Path:
    """`folder/<split>-00000-of-00001.parquet` and `folder/embeddings/<split>.parquet` for each split."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)).astype(np.float32) / np.sqrt(dim)
    (folder / "embeddings").mkdir(parents=True, exist_ok=True)
    ref_id = 0
    for split, n in splits.items():
        prows, erows = [], []
        for _ in range(n):
            x0, y0 = rng.uniform(0, 300, 2)
            gt = [float(x0), float(y0), float(x0 + rng.uniform(60, 300)), float(y0 + rng.uniform(60, 160))]
            props: list[tuple[list[float], float]] = []
            good = int(rng.integers(k))
            for j in range(k):
                if j == good:
                    w, h = gt[2] - gt[0], gt[3] - gt[1]
                    b = [gt[0] + 0.05 * w, gt[1], gt[2], gt[3] - 0.05 * h]
                else:
                    bx, by = rng.uniform(0, 500, 2)
                    b = [
                        float(bx),
                        float(by),
                        float(min(bx + rng.uniform(20, 140), 640)),
                        float(min(by + 60, 480)),
                    ]
                props.append((b, float(rng.uniform(0.3, 1.0))))
            sents = [f"ref {ref_id} sentence {j}" for j in range(sentences)]
            prows.append(proposal_row(ref_id, split, gt, props, sents))
            gt_z = rng.standard_normal(dim).astype(np.float32)
            boxes = np.array([p[0] for p in props], np.float32)
            scores = np.array([p[1] for p in props], np.float32)
            kept = RESEARCH_FILTER.kept(boxes, scores)
            crop_z = [
                gt_z + noise * rng.standard_normal(dim).astype(np.float32)
                if j == good
                else rng.standard_normal(dim).astype(np.float32)
                for j in kept
            ]
            sent_z = [mix @ gt_z + noise * rng.standard_normal(dim).astype(np.float32) for _ in sents]
            erows.append(
                {
                    "ref_id": ref_id,
                    "gt_embedding": gt_z.tolist(),
                    "image_embedding": rng.standard_normal(dim).astype(np.float32).tolist(),
                    "proposal_index": kept,
                    "proposal_embeddings": [c.tolist() for c in crop_z],
                    "sentence_embeddings": [s.tolist() for s in sent_z],
                }
            )
            ref_id += 1
        write_proposal_shard(folder / f"{split}-00000-of-00001.parquet", prows)
        write_embedding_shard(folder / "embeddings" / f"{split}.parquet", erows)
    return folder
