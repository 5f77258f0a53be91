"""Check a folder made by `refaug publish` with the real clients.

Usage: publish_check.py DIR CACHE_DIR  (run by tests/publish.rs).

- SHA256SUMS lists every other file with its sha256 (hashlib);
- the card's YAML front matter (PyYAML): configs with one `default`, data_files globs that match
  the shards; `dataset_info` features equal to the shards' `huggingface` features
  (datasets' own YAML parser); num_examples / num_bytes / sizes consistent with the files;
- pyarrow reads every shard;
- Hugging Face `datasets` loads every config from the folder (offline), with the card's split
  sizes verified, and the rows equal pyarrow's;
- DuckDB counts the rows of each config;
- an embeddings config (`<variant>-embeddings`, from `refaug embed`) has the shard names of its
  variant's config, split for split, and vectors of one fixed length;
- mlcroissant validates croissant.json and reads the records of each variant's record set
  (the embeddings configs have none).
Prints one line per check.
"""

import glob
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import datasets
import duckdb
import pyarrow.parquet as pq
import yaml

EMBEDDINGS_SUFFIX = "-embeddings"


def main(folder, cache_dir):
    root = Path(folder)
    # SHA256SUMS
    listed = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    files = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name != "SHA256SUMS"
    )
    assert sorted(listed) == files, (sorted(listed), files)
    for name, digest in listed.items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest, name
    print(f"SHA256SUMS: {len(listed)} files ok")

    card = (root / "README.md").read_text()
    assert card.startswith("---\n"), card[:50]
    front = yaml.safe_load(card.split("---\n", 2)[1])
    configs = front["configs"]
    assert [c.get("default", False) for c in configs] == [True] + [False] * (
        len(configs) - 1
    )
    assert front["license"] == "other" and (root / front["license_link"]).is_file()
    infos = {i["config_name"]: i for i in front["dataset_info"]}
    for config in configs:
        name = config["config_name"]
        info = infos[name]
        splits = {s["name"]: s for s in info["splits"]}
        total_download = 0
        for data_file in config["data_files"]:
            shards = sorted(glob.glob(str(root / data_file["path"])))
            assert shards, data_file
            rows = sum(pq.ParquetFile(s).metadata.num_rows for s in shards)
            nbytes = sum(
                pq.ParquetFile(s).metadata.row_group(i).total_byte_size
                for s in shards
                for i in range(pq.ParquetFile(s).metadata.num_row_groups)
            )
            total_download += sum(os.path.getsize(s) for s in shards)
            split = splits[data_file["split"]]
            assert split["num_examples"] == rows, (name, split, rows)
            assert split["num_bytes"] == nbytes, (name, split, nbytes)
            for s in shards:
                pq.read_table(s)  # every shard reads
        assert info["download_size"] == total_download, (
            info["download_size"],
            total_download,
        )
        assert info["dataset_size"] == sum(s["num_bytes"] for s in info["splits"])
        card_features = datasets.Features._from_yaml_list(info["features"])
        first = min(glob.glob(str(root / config["data_files"][0]["path"])))
        meta = json.loads(pq.read_schema(first).metadata[b"huggingface"])
        file_features = datasets.Features.from_dict(meta["info"]["features"])
        assert card_features == file_features, (card_features, file_features)
        print(f"card {name}: splits {sorted(splits)}, features match the shards")

        ds = datasets.load_dataset(str(root), name, cache_dir=cache_dir)
        assert sorted(ds) == sorted(splits), (sorted(ds), sorted(splits))
        assert ds[data_file["split"]].features == file_features
        for split_name, split in splits.items():
            assert ds[split_name].num_rows == split["num_examples"]
            path = next(
                d["path"] for d in config["data_files"] if d["split"] == split_name
            )
            table = pq.ParquetDataset(sorted(glob.glob(str(root / path)))).read()
            assert ds[split_name].to_list() == table.to_pylist(), (name, split_name)
        print(
            f"datasets {datasets.__version__} loads {name}: "
            + ", ".join(f"{k}={v.num_rows}" for k, v in ds.items())
        )

        count = duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{root}/data/{name}/*.parquet')"
        ).fetchall()[0][0]
        assert count == sum(s["num_examples"] for s in info["splits"]), count
        print(f"duckdb {duckdb.__version__}: {name} has {count} rows")

    names = {c["config_name"] for c in configs}
    for name in sorted(n for n in names if n.endswith(EMBEDDINGS_SUFFIX)):
        variant = name.removesuffix(EMBEDDINGS_SUFFIX)
        assert variant in names, (name, sorted(names))
        own = sorted(p.name for p in (root / "data" / name).glob("*.parquet"))
        of_variant = sorted(p.name for p in (root / "data" / variant).glob("*.parquet"))
        assert own == of_variant, (name, own, of_variant)
        vector = datasets.Features._from_yaml_list(infos[name]["features"])[
            "gt_embedding"
        ]
        assert isinstance(vector, datasets.List) and vector.length > 0, vector
        print(f"{name}: the shards of {variant}, vectors of length {vector.length}")

    # The card's SQL examples run as written, from the folder.
    cwd = os.getcwd()
    os.chdir(root)
    try:
        blocks = [b.split("```", 1)[0] for b in card.split("```sql\n")[1:]]
        assert len(blocks) == 2, blocks
        for query in blocks:
            rows = duckdb.sql(query).fetchall()
            assert rows, query
    finally:
        os.chdir(cwd)
    print(f"duckdb: the card's {len(blocks)} SQL examples run")

    import mlcroissant as mlc

    dataset = mlc.Dataset(jsonld=str(root / "croissant.json"))
    for config in configs:
        name = config["config_name"]
        records = list(dataset.records(record_set=name))
        expected = sum(s["num_examples"] for s in infos[name]["splits"])
        assert len(records) == expected, (name, len(records), expected)
        first = records[0]
        if name.endswith(EMBEDDINGS_SUFFIX):
            # The embeddings' records, ref for ref, equal the shards read by pyarrow.
            table = pq.read_table(root / "data" / name).sort_by("ref_id").to_pylist()
            by_ref = {r["ref_id"]: r for r in table}
            for rec in records:
                row = by_ref[rec[f"{name}/ref_id"]]
                for col in ("gt_embedding", "image_embedding"):
                    got = rec[f"{name}/{col}"]
                    got = None if got is None else [float(x) for x in got]
                    assert got == row[col], (name, col, row["ref_id"])
            print(
                f"mlcroissant: {name} has {len(records)} records, vectors equal pyarrow's"
            )
            continue
        assert f"{name}/ref_id" in first and f"{name}/proposals" in first, sorted(first)
        print(f"mlcroissant: {name} has {len(records)} records")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
