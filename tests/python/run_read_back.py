"""pyarrow reads what `refaug run` wrote on the bundled sample and finds the independent expectation.

Usage: run_read_back.py OUT_DIR tests/data/sample-expected.json ANNOTATIONS_DIR
Called by tests/run.rs when the project's .venv exists. Checks, per variant: the dataset loads with
pyarrow.dataset (every shard), proposals is list<struct> with `element` children, one row per
expected ref, and every proposal within 1e-3 of the expectation (computed by
tools/make_sample_expected.py from Pillow, numpy and the libraries' rules, not by refaug).
The ids, file name, category, image size, sentences, ground-truth box and proposal labels are
checked against the sources themselves, read here with Python's own json and pickle.
"""

import json
import pickle
import sys

import pyarrow as pa
import pyarrow.dataset as ds

out, expected_path, annotations = sys.argv[1], sys.argv[2], sys.argv[3]
with open(expected_path) as f:
    expected = json.load(f)

with open(f"{annotations}/instances.json") as f:
    instances = json.load(f)
images = {i["id"]: i for i in instances["images"]}
anns = {a["id"]: a for a in instances["annotations"]}
categories = {c["id"]: c["name"] for c in instances["categories"]}
# COCO-80 (YOLO class indices): the categories in id order; COCO-91: by id, "N/A" for unused ids
# and torchvision's "__background__" for id 0 (refaug's one COCO-91 table; DETR's id2label says
# "N/A" there).
coco80 = [categories[k] for k in sorted(categories)]
with open(f"{annotations}/refs(umd).p", "rb") as f:
    refs = {r["ref_id"]: r for r in pickle.load(f, encoding="latin1")}


def text(v: object) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def check_source_fields(variant: str, g: dict) -> None:
    r = refs[g["ref_id"]]
    image = images[r["image_id"]]
    x, y, w, h = anns[r["ann_id"]]["bbox"]
    want = {
        "ann_id": r["ann_id"],
        "file_name": image["file_name"],
        "category_id": r["category_id"],
        "category_name": categories[r["category_id"]],
        "image_width": image["width"],
        "image_height": image["height"],
    }
    for key, value in want.items():
        assert g[key] == value, (variant, g["ref_id"], key, g[key], value)
    sentences = [
        {
            "sent_id": s["sent_id"],
            "sent": text(s["sent"]),
            "raw": text(s["raw"]),
            "tokens": [text(t) for t in s["tokens"]],
        }
        for s in r["sentences"]
    ]
    assert g["sentences"] == sentences, (
        variant,
        g["ref_id"],
        g["sentences"],
        sentences,
    )
    gt = g["gt_box"]
    # float32 of the f64 sums: within float32 rounding of the exact corners.
    for got, exact in zip(
        [gt["xmin"], gt["ymin"], gt["xmax"], gt["ymax"]], [x, y, x + w, y + h]
    ):
        assert abs(got - exact) <= 1e-6 * max(1.0, abs(exact)), (
            variant,
            g["ref_id"],
            gt,
        )
    for p in g["proposals"]:
        c = p["class_id"]
        label = (
            coco80[c]
            if variant == "yolo"
            else categories.get(c, "__background__" if c == 0 else "N/A")
        )
        assert p["label"] == label, (variant, g["ref_id"], c, p["label"], label)


for variant, want_rows in expected.items():
    # manifest.json sits next to the shards: skip it, as the README says.
    table = ds.dataset(
        f"{out}/{variant}", format="parquet", exclude_invalid_files=True
    ).to_table()
    proposals = table.schema.field("proposals").type
    assert pa.types.is_list(proposals) and pa.types.is_struct(proposals.value_type), (
        proposals
    )
    assert proposals.value_field.name == "element", proposals.value_field.name
    got = {r["ref_id"]: r for r in table.to_pylist()}
    assert sorted(got) == sorted(r["ref_id"] for r in want_rows), (variant, sorted(got))
    for w in want_rows:
        g = got[w["ref_id"]]
        assert g["image_id"] == w["image_id"] and g["split"] == w["split"], (
            variant,
            w["ref_id"],
        )
        assert len(g["proposals"]) == len(w["proposals"]), (variant, w["ref_id"])
        for p, e in zip(g["proposals"], w["proposals"]):
            vals = [p["xmin"], p["ymin"], p["xmax"], p["ymax"], p["score"]]
            assert all(abs(a - b) <= 1e-3 for a, b in zip(vals, e[:5])), (
                variant,
                w["ref_id"],
                vals,
                e,
            )
            assert p["class_id"] == e[5], (variant, w["ref_id"])
        assert abs(g["best_iou"] - w["best_iou"]) <= 1e-4, (variant, w["ref_id"])
        check_source_fields(variant, g)
    print(f"{variant}: {len(got)} rows as expected")
