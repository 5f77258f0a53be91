"""Epoch time of H1 (ClipSf net1) and H2 (FLYP) from embeddings at RefCOCOg scale (synthetic tensors).

    .venv/bin/python train/benches/epoch_time.py [--refs 42226] [--kept 10] [--sentences 2] [--epochs 1]
        [--bf16] [--threads N] [--heads h1,h1-research,h2]

The packed datasets are built directly (D = 1024, float32): `refs` training items with `kept` candidate
crops and `sentences` sentences each, the research's batch sizes (H1 512, H2 1024) and optimizers (§5). Prints
one Markdown row per head: the wall time of the training epoch (forward, backward, step), without the
validation pass, its process CPU time (all threads; on a machine shared with other work the wall time grows,
the CPU time much less), and the whole `fit` call. `--bf16`: the training forward under bfloat16 autocast.
Timing only: the numbers go to BENCHMARKS.md, no test asserts them.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from refaug_train.datasets import ContrastiveDataset, Ragged, RankingDataset
from refaug_train.train import FitConfig, fit


def ranking_set(n: int, k: int, s: int, d: int) -> RankingDataset:
    g = torch.Generator().manual_seed(0)
    crops = Ragged(torch.randn(n * k, d, generator=g), torch.arange(n + 1) * k)
    sents = Ragged(torch.randn(n * s, d, generator=g), torch.arange(n + 1) * s)
    boxes = Ragged(torch.zeros(n * k, 4), torch.arange(n + 1) * k)
    target = torch.randint(0, k, (n,), generator=g)
    return RankingDataset(
        torch.arange(n),
        crops,
        sents,
        target,
        boxes,
        torch.zeros(n, 4),
        torch.zeros(n, d),
        torch.zeros(n, dtype=torch.bool),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--refs", type=int, default=42226)
    ap.add_argument("--kept", type=int, default=10)
    ap.add_argument("--sentences", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast in the training forward")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--heads", default="h1,h1-research,h2", help="which rows (h1, h1-research, h2)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/refaug-train-bench"))
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    d = 1024
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, device {a.device}, bf16 {a.bf16}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| head | items | batch | epoch (s) | CPU (s) | items/s |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = {
        "h1": ("H1 ClipSf net1, all train refs", FitConfig.research("sf"), a.refs),
        "h1-research": ("H1 ClipSf net1, the research's 5,120 items", FitConfig.research("sf"), 5120),
        "h2": ("H2 FLYP (dropout .5)", FitConfig.research("flyp"), a.refs),
    }
    for key in a.heads.split(","):
        name, cfg, n = rows[key]
        cfg.epochs, cfg.progress, cfg.device, cfg.train_limit = a.epochs, False, a.device, -1
        cfg.bf16 = a.bf16
        if cfg.head == "flyp":
            g = torch.Generator().manual_seed(0)
            ds: RankingDataset | ContrastiveDataset = ContrastiveDataset(
                torch.arange(n), torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
            )
        else:
            ds = ranking_set(n, a.kept, a.sentences, d)
        t0, c0 = time.perf_counter(), time.process_time()
        _, state = fit(cfg, ds, None, None, a.out / cfg.head / str(n))
        total, cpu = time.perf_counter() - t0, (time.process_time() - c0) / a.epochs
        epoch = sum(r["seconds"] for r in state.log[1:]) / a.epochs
        print(
            f"| {name} | {n} | {cfg.batch_size} | {epoch:.1f} | {cpu:.1f} | {n / epoch:.0f} |"
            f"  (whole fit call, checkpoint included: {total:.1f} s)"
        )


if __name__ == "__main__":
    main()
