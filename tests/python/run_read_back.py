"""pyarrow reads what `refaug run` wrote on the bundled sample and finds the independent expectation.

Usage: run_read_back.py OUT_DIR tests/data/sample-expected.json
Called by tests/run.rs when the project's .venv exists. Checks, per variant: the dataset loads with
pyarrow.dataset (every shard), proposals is list<struct> with `element` children, one row per
expected ref, and every proposal within 1e-3 of the expectation (computed by
tools/make_sample_expected.py from Pillow, numpy and the libraries' rules, not by refaug).
"""
import json
import sys

import pyarrow as pa
import pyarrow.dataset as ds

out, expected_path = sys.argv[1], sys.argv[2]
expected = json.load(open(expected_path))
for variant, want_rows in expected.items():
    # manifest.json sits next to the shards: skip it, as the README says.
    table = ds.dataset(f"{out}/{variant}", format="parquet", exclude_invalid_files=True).to_table()
    proposals = table.schema.field("proposals").type
    assert pa.types.is_list(proposals) and pa.types.is_struct(proposals.value_type), proposals
    assert proposals.value_field.name == "element", proposals.value_field.name
    got = {r["ref_id"]: r for r in table.to_pylist()}
    assert sorted(got) == sorted(r["ref_id"] for r in want_rows), (variant, sorted(got))
    for w in want_rows:
        g = got[w["ref_id"]]
        assert g["image_id"] == w["image_id"] and g["split"] == w["split"], (variant, w["ref_id"])
        assert len(g["proposals"]) == len(w["proposals"]), (variant, w["ref_id"])
        for p, e in zip(g["proposals"], w["proposals"]):
            vals = [p["xmin"], p["ymin"], p["xmax"], p["ymax"], p["score"]]
            assert all(abs(a - b) <= 1e-3 for a, b in zip(vals, e[:5])), (variant, w["ref_id"], vals, e)
            assert p["class_id"] == e[5], (variant, w["ref_id"])
        assert abs(g["best_iou"] - w["best_iou"]) <= 1e-4, (variant, w["ref_id"])
    print(f"{variant}: {len(got)} rows as expected")
