"""Read an embedding shard that lists an unreadable image with the real clients.

Usage: embed_nulls_check.py EMBEDDING_SHARD PROPOSAL_SHARD  (run by tests/embed_run.rs).

- pyarrow: one row per proposal row, same ref_ids in the same order; the refs that
  `refaug.image_failures` lists have null `gt_embedding`, `image_embedding`, `proposal_index` and
  `proposal_embeddings` and still their sentence embeddings; every other row has vectors of the
  dimension `refaug.encoder` records;
- Hugging Face `datasets` loads the shard (offline) with the features of its `huggingface`
  metadata: vectors are `List(Value("float32"), length=D)`, and the rows equal pyarrow's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import datasets
import pyarrow.parquet as pq

IMAGE_SIDE = [
    "gt_embedding",
    "image_embedding",
    "proposal_index",
    "proposal_embeddings",
]


def main() -> None:
    emb_path, src_path = sys.argv[1:3]
    table = pq.read_table(emb_path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    failures = json.loads(meta["refaug.image_failures"])
    dim = json.loads(meta["refaug.encoder"])["dim"]
    failed = {r for f in failures for r in f["ref_ids"]}
    assert failed, failures
    src = pq.read_table(src_path, columns=["ref_id", "sentences"]).to_pylist()
    rows = table.to_pylist()
    assert [r["ref_id"] for r in rows] == [r["ref_id"] for r in src]
    for row, s in zip(rows, src, strict=True):
        assert len(row["sentence_embeddings"]) == len(s["sentences"]), row["ref_id"]
        if row["ref_id"] in failed:
            assert all(row[c] is None for c in IMAGE_SIDE), row["ref_id"]
        else:
            assert (
                len(row["gt_embedding"]) == dim and len(row["image_embedding"]) == dim
            )
            assert all(len(v) == dim for v in row["proposal_embeddings"])
    print(
        f"pyarrow: {len(rows)} rows, refs {sorted(failed)} with null image embeddings"
    )

    features = datasets.Features.from_dict(
        json.loads(meta["huggingface"])["info"]["features"]
    )
    assert features["gt_embedding"] == datasets.List(
        datasets.Value("float32"), length=dim
    )
    with tempfile.TemporaryDirectory() as cache:
        ds = datasets.load_dataset(
            "parquet", data_files=emb_path, split="train", cache_dir=cache
        )
        assert ds.features == features, (ds.features, features)
        assert ds.to_list() == rows
    print(f"datasets {datasets.__version__}: loads the shard with D = {dim} vectors")


if __name__ == "__main__":
    main()
