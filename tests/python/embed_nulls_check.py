"""Read an embedding shard that lists an unreadable image with the real clients.

Usage: embed_nulls_check.py EMBEDDING_SHARD PROPOSAL_SHARD  (run by tests/embed_run.rs).

- pyarrow: one row per proposal row, same ref_ids in the same order; the refs that
  `refaug.image_failures` lists have null `gt_embedding`, `image_embedding`, `proposal_index` and
  `proposal_embeddings` and still their sentence embeddings; every other row has vectors of the
  dimension `refaug.encoder` records;
- the training module's reader (`refaug_train`, installed in `.venv` by the set-up) reads every other
  ref and refuses a listed one with an error naming the shard, the ref, the image file and the reason;
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
    check_training_reader(emb_path, src_path, failures)


def check_training_reader(emb_path: str, src_path: str, failures: list[dict]) -> None:
    from pathlib import Path

    from refaug_train.features import EmbeddingShards
    from refaug_train.shards import ShardError, read_refs

    # Only the two shards at hand: a folder holding exactly them.
    with tempfile.TemporaryDirectory() as tmp:
        variant, emb = Path(tmp), Path(tmp) / "embeddings"
        emb.mkdir()
        (variant / Path(src_path).name).symlink_to(Path(src_path).resolve())
        (emb / Path(emb_path).name).symlink_to(Path(emb_path).resolve())
        refs, src = read_refs(variant), EmbeddingShards(emb)
        reason = {r: f for f in failures for r in f["ref_ids"]}
        for i, rid in enumerate(refs.ref_id.tolist()):
            if rid not in reason:
                src.features(refs, i, [])
                continue
            try:
                src.features(refs, i, [])
            except ShardError as e:
                msg = str(e)
                f = reason[rid]
                for part in (
                    Path(emb_path).name,
                    f"ref {rid}",
                    f["file_name"],
                    f["reason"],
                ):
                    assert part in msg, (part, msg)
            else:
                raise AssertionError(
                    f"ref {rid}: the training reader read a ref without image embeddings"
                )
    print(
        f"refaug_train: refuses refs {sorted(reason)} naming the image and the reason"
    )


if __name__ == "__main__":
    main()
