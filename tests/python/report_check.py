"""Recompute every number of a refaug JSON report from the shards, independently of refaug.

Usage: report_check.py OUT_DIR REPORT.json  (run by tests/report.rs).

Reads each variant's manifest.json for its shard list, the shards with pyarrow, and recomputes
with numpy: refs, distinct images, mean/median proposals per ref, mean best IoU, recall at each
threshold (best_iou >= t, float32 against float32(t)), the research's training filter
(score > conf, width and height > min_size computed in float64, at least min_proposals left,
best remaining IoU > min_best_iou, float32 comparisons) and the proposals histogram and the
recall curve. Means are compared to 1e-12 relative (summation order differs), counts exactly.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

SPLIT_ORDER = ["train", "val", "validation", "test", "testA", "testB"]


def split_key(name):
    return (SPLIT_ORDER.index(name) if name in SPLIT_ORDER else len(SPLIT_ORDER), name)


def load(variant_dir):
    manifest = json.loads((variant_dir / "manifest.json").read_text())
    splits = {}
    for split in sorted(manifest["splits"], key=split_key):
        tables = [
            pq.read_table(variant_dir / s["file"])
            for s in manifest["splits"][split]["shards"]
        ]
        rows = [
            r
            for t in tables
            for r in t.select(
                ["image_id", "proposals", "proposal_iou", "best_iou"]
            ).to_pylist()
        ]
        splits[split] = rows
    return splits


def usable(row, o):
    kept = []
    for p, iou in zip(row["proposals"], row["proposal_iou"]):
        w = float(p["xmax"]) - float(p["xmin"])
        h = float(p["ymax"]) - float(p["ymin"])
        if (
            np.float32(p["score"]) > np.float32(o["train_conf"])
            and w > o["min_size"]
            and h > o["min_size"]
        ):
            kept.append(np.float32(iou))
    return (
        len(kept) >= o["min_proposals"]
        and len(kept) > 0
        and max(kept) > np.float32(o["min_best_iou"])
    )


def stats(name, rows, o, thresholds):
    n = len(rows)
    counts = np.array([len(r["proposals"]) for r in rows], dtype=np.int64)
    best = np.array([r["best_iou"] for r in rows], dtype=np.float32)
    flags = np.array([usable(r, o) for r in rows], dtype=bool)
    return {
        "split": name,
        "refs": n,
        "images": len({r["image_id"] for r in rows}),
        "mean_proposals": float(counts.mean()) if n else 0.0,
        "median_proposals": float(np.median(counts)) if n else 0.0,
        "mean_best_iou": float(best.astype(np.float64).mean()) if n else 0.0,
        "recall": [
            {"iou": t, "recall": float((best >= np.float32(t)).mean()) if n else 0.0}
            for t in o["recall_at"]
        ],
        "usable_refs": int(flags.sum()),
        "usable_share": float(flags.mean()) if n else 0.0,
        "proposal_histogram": np.bincount(counts).tolist() if n else [],
        "recall_curve": [
            float((best >= np.float32(t)).mean()) if n else 0.0 for t in thresholds
        ],
    }


def same(got, want, where):
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), (
            f"{where}: keys {sorted(got)} != {sorted(want)}"
        )
        for k in want:
            same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15), (
            f"{where}: {got!r} != {want!r}"
        )
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def main(out_dir, report_path):
    out = Path(out_dir)
    report = json.loads(Path(report_path).read_text())
    o = report["options"]
    thresholds = [i / 100 for i in range(101)]
    same(report["curve_thresholds"], thresholds, "curve_thresholds")
    # The data manifest's order, as the run's settings record it in every manifest; by name for
    # variants the settings do not list.
    manifests = {
        p.parent.name: json.loads(p.read_text()) for p in out.glob("*/manifest.json")
    }

    def position(name: str) -> tuple[int, str]:
        listed = [
            v.get("name")
            for v in manifests[name].get("settings", {}).get("variants", [])
        ]
        return (
            listed.index(name) if name in listed else len(manifests) + 1_000_000,
            name,
        )

    variants = sorted(manifests, key=position)
    assert [v["variant"] for v in report["variants"]] == variants, (
        [v["variant"] for v in report["variants"]],
        variants,
    )
    checked = 0
    for got in report["variants"]:
        splits = load(out / got["variant"])
        want_splits = [stats(s, rows, o, thresholds) for s, rows in splits.items()]
        same(got["splits"], want_splits, f"{got['variant']}.splits")
        all_rows = [r for rows in splits.values() for r in rows]
        same(got["all"], stats("all", all_rows, o, thresholds), f"{got['variant']}.all")
        checked += len(all_rows)
    print(
        f"ok: {len(variants)} variants, {checked} refs, every number of the report recomputed"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
