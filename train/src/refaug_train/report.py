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


def write_tables(rows: list[dict[str, Any]], out: Path, notes: list[str] | None = None) -> list[Path]:
    """`results.md`, `results.csv`, `results.json` in `out` (rows: head, variant, split, n_refs, metrics);
    `notes` (e.g. the runs a grid skipped) follow the Markdown table."""
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
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    return [out / "results.md", out / "results.csv", out / "results.json"]


def _read_log(log_csv: Path) -> list[dict[str, str]]:
    with log_csv.open() as f:
        return list(csv.DictReader(f))


def _column(rows: list[dict[str, str]], name: str) -> tuple[list[int], list[float]]:
    pts = [(int(r["epoch"]), float(r[name])) for r in rows if r.get(name) not in (None, "", "nan")]
    return [p[0] for p in pts], [p[1] for p in pts]


def _plot(path: Path, lines: list[tuple[str, tuple[list[int], list[float]], str]], ylabel: str) -> Path:
    """One PNG: a line per (label, (epochs, values), style)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (x, y), style in lines:
        if x:
            ax.plot(x, y, style, marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_log(log_csv: Path, out: Path) -> list[Path]:
    """A run's `loss.png` (train and validation loss per epoch) and `accuracy.png` (validation acc@0.5,
    mIoU)."""
    rows = _read_log(log_csv)
    return [
        _plot(out / "loss.png", [(s, _column(rows, s), "-") for s in ("train_loss", "val_loss")], "loss"),
        _plot(
            out / "accuracy.png",
            [(s, _column(rows, s), "-") for s in ("val_acc@0.5", "val_mIoU")],
            "validation",
        ),
    ]


def plot_runs(logs: dict[tuple[str, str], Path], out: Path) -> list[Path]:
    """Several runs side by side, one panel per variant, one colour per head: `loss.png` (train loss solid,
    validation loss dashed) and `accuracy.png` (validation acc@0.5 solid, mIoU dashed), from each run's
    log.csv; `logs` maps (variant, head) to it."""
    out.mkdir(parents=True, exist_ok=True)
    rows = {key: _read_log(p) for key, p in logs.items()}
    variants = sorted({v for v, _ in rows})
    heads = sorted({h for _, h in rows})
    colour = {h: f"C{i}" for i, h in enumerate(heads)}
    paths = []
    for name, (solid, dashed), ylabel in (
        ("loss.png", ("train_loss", "val_loss"), "loss (solid: train, dashed: validation)"),
        ("accuracy.png", ("val_acc@0.5", "val_mIoU"), "validation (solid: acc@0.5, dashed: mIoU)"),
    ):
        fig, axes = plt.subplots(1, len(variants), figsize=(4.5 * len(variants), 4), squeeze=False)
        for ax, v in zip(axes[0], variants, strict=True):
            for (rv, h), r in rows.items():
                if rv != v:
                    continue
                for col, style in ((solid, "-"), (dashed, "--")):
                    x, y = _column(r, col)
                    label = h if style == "-" else None
                    ax.plot(x, y, style, color=colour[h], marker="o", markersize=3, label=label)
            ax.set_title(v)
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize="small")
        axes[0][0].set_ylabel(ylabel)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)
    return paths
