"""Results tables (Markdown, CSV, JSON) per head x variant x split, and loss/accuracy plots per run."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

METRICS = ["acc@0.3", "acc@0.5", "acc@0.7", "mIoU", "mCos", "mED"]
KEYS = ["head", "variant", "split", "n_refs", "n_fallback"]


def write_tables(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """`results.md`, `results.csv`, `results.json` in `out` (rows: head, variant, split, n_refs, metrics)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r["head"], r["variant"], r["split"]))
    cols = KEYS + METRICS
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    with (out / "results.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [str(r[k]) if k in ("head", "variant", "split") else f"{int(r[k])}" for k in KEYS]
        cells += [f"{r[m]:.4f}" for m in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    return [out / "results.md", out / "results.csv", out / "results.json"]


def plot_log(log_csv: Path, out: Path) -> list[Path]:
    """`loss.png` (train and validation loss per epoch) and `accuracy.png` (validation acc@0.5, mIoU)."""
    with log_csv.open() as f:
        rows = list(csv.DictReader(f))

    def col(name: str) -> tuple[list[int], list[float]]:
        pts = [(int(r["epoch"]), float(r[name])) for r in rows if r.get(name) not in (None, "", "nan")]
        return [p[0] for p in pts], [p[1] for p in pts]

    paths = []
    for name, series, ylabel in (
        ("loss.png", ["train_loss", "val_loss"], "loss"),
        ("accuracy.png", ["val_acc@0.5", "val_mIoU"], "validation"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4))
        for s in series:
            x, y = col(s)
            if x:
                ax.plot(x, y, marker="o", label=s)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)
    return paths
