"""Read a refaug shard with pyarrow and check it against a JSON dump of the rows it holds.

Usage: read_back.py SHARD.parquet ROWS.json  (run by tests/write.rs `pyarrow_reads_the_shard`).

Checks, independently of the Rust reader: the column types as pyarrow sees them (lists of
structs, list children named `element` as the Parquet spec says), nullability, the `huggingface`
and schema-version metadata, and every value. float32 values are compared after rounding the JSON
number to float32, which is exact: the JSON holds the shortest decimal that round-trips the f32.
"""

import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BOX = [
    ("xmin", pa.float32()),
    ("ymin", pa.float32()),
    ("xmax", pa.float32()),
    ("ymax", pa.float32()),
]


def field(name, type_, nullable=False):
    return pa.field(name, type_, nullable=nullable)


def list_of(type_):
    return pa.list_(pa.field("element", type_, nullable=False))


EXPECTED = pa.schema(
    [
        field("ref_id", pa.int64()),
        field("ann_id", pa.int64()),
        field("image_id", pa.int64()),
        field("file_name", pa.string()),
        field("split", pa.string()),
        field("category_id", pa.int32()),
        field("category_name", pa.string()),
        field("image_width", pa.int32()),
        field("image_height", pa.int32()),
        field(
            "sentences",
            list_of(
                pa.struct(
                    [
                        field("sent_id", pa.int64()),
                        field("sent", pa.string()),
                        field("raw", pa.string()),
                        field("tokens", list_of(pa.string())),
                    ]
                )
            ),
        ),
        field("gt_box", pa.struct([field(n, t) for n, t in BOX])),
        field(
            "proposals",
            list_of(
                pa.struct(
                    [field(n, t) for n, t in BOX]
                    + [
                        field("score", pa.float32()),
                        field("class_id", pa.int32()),
                        field("label", pa.string()),
                    ]
                )
            ),
        ),
        field("proposal_iou", list_of(pa.float32())),
        field("best_index", pa.int32(), nullable=True),
        field("best_iou", pa.float32()),
    ]
)


def same(arrow_type, got, want, where):
    """Compare a pyarrow Python value with a JSON value, guided by the arrow type."""
    if want is None or got is None:
        assert got is None and want is None, f"{where}: {got!r} != {want!r}"
    elif pa.types.is_float32(arrow_type):
        assert np.float32(got) == np.float32(want), f"{where}: {got!r} != {want!r}"
    elif pa.types.is_list(arrow_type):
        assert len(got) == len(want), f"{where}: {len(got)} items, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            same(arrow_type.value_type, g, w, f"{where}[{i}]")
    elif pa.types.is_struct(arrow_type):
        assert sorted(got) == sorted(want), (
            f"{where}: keys {sorted(got)} != {sorted(want)}"
        )
        for child in arrow_type:
            same(child.type, got[child.name], want[child.name], f"{where}.{child.name}")
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != {want!r}"


def main(shard, dump):
    table = pq.read_table(shard)
    schema = table.schema
    assert schema.remove_metadata().equals(EXPECTED), (
        f"schema:\n{schema}\nexpected:\n{EXPECTED}"
    )
    proposals = schema.field("proposals").type
    assert pa.types.is_list(proposals) and pa.types.is_struct(proposals.value_type)
    assert proposals.value_field.name == "element"

    # The Parquet-level names too, as other readers (DuckDB, Spark) see them.
    parquet_schema = pq.ParquetFile(shard).schema
    paths = [parquet_schema.column(i).path for i in range(len(parquet_schema))]
    assert "proposals.list.element.label" in paths, paths
    assert not any(".item" in p for p in paths), paths

    metadata = schema.metadata
    assert metadata[b"refaug.schema_version"] == b"2.0.0", metadata
    features = json.loads(metadata[b"huggingface"])["info"]["features"]
    assert list(features) == EXPECTED.names, list(features)
    assert isinstance(features["proposals"], list) and isinstance(
        features["proposals"][0], dict
    )
    assert features["proposals"][0]["label"] == {"dtype": "string", "_type": "Value"}

    with open(dump, encoding="utf-8") as f:
        want_rows = json.load(f)
    got_rows = table.to_pylist()
    assert len(got_rows) == len(want_rows), (len(got_rows), len(want_rows))
    for i, (got, want) in enumerate(zip(got_rows, want_rows)):
        # Column order is the schema's (checked above); the JSON dump's keys are sorted.
        assert sorted(got) == sorted(want), (
            f"row {i}: columns {sorted(got)} != {sorted(want)}"
        )
        for column in EXPECTED:
            same(
                column.type,
                got[column.name],
                want[column.name],
                f"row {i} {column.name}",
            )
    print(f"ok: {len(got_rows)} rows, {len(EXPECTED)} columns")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
