"""What `--bf16` (bfloat16 autocast in the training forward) does to the results, beside its speed.

    .venv/bin/python train/benches/bf16_effect.py [--train 4096] [--val 1024] [--dim 256] [--epochs 10]

On a synthetic variant (`refaug_train.synthetic.make_variant`: a learnable map between crop and sentence
embeddings, zero-shot near chance), H1 and H2 are each fitted twice with one seed, float32 and bf16, and
both are evaluated in float32 on the validation split. Prints one Markdown row per head and precision:
the last training loss, validation acc@0.5 and mIoU, and the largest weight difference between the two runs.
A measurement, not a test: the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from refaug_train import datasets as D
from refaug_train.features import EmbeddingShards
from refaug_train.shards import read_refs
from refaug_train.synthetic import make_variant
from refaug_train.train import FitConfig, evaluate, fit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=4096)
    ap.add_argument("--val", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--noise", type=float, default=1.0, help="make_variant's noise (harder: higher)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        v = make_variant(Path(tmp) / "v", {"train": a.train, "val": a.val}, dim=a.dim, noise=a.noise)
        refs, src = read_refs(v), EmbeddingShards(v / "embeddings")
        val_eval = D.ranking_eval(refs, src, "val")
        print(
            f"synthetic variant: {a.train} train / {a.val} val refs, D = {a.dim}, noise {a.noise}, "
            f"{a.epochs} epochs; lr 0.1, FLYP L2-normalised (unnormalised it diverges on these)"
        )
        print("| head | precision | last train loss | val acc@0.5 | val mIoU | max weight diff |")
        print("|---|---|---:|---:|---:|---:|")
        for head in ("sf", "flyp"):
            if head == "flyp":
                train, val = D.contrastive(refs, src, "train"), D.contrastive(refs, src, "val")
            else:
                train, val = D.ranking_train(refs, src, "train"), val_eval
            weights = {}
            for bf16 in (False, True):
                cfg = FitConfig.research(head)
                cfg.epochs, cfg.progress, cfg.bf16, cfg.train_limit, cfg.lr = a.epochs, False, bf16, -1, 0.1
                cfg.normalize = head == "flyp"
                model, state = fit(cfg, train, val, None, Path(tmp) / f"{head}-{bf16}")
                weights[bf16] = model.state_dict()
                s = evaluate(model, val_eval).summary
                diff = (
                    max(float((weights[True][k] - weights[False][k]).abs().max()) for k in weights[True])
                    if bf16
                    else 0.0
                )
                print(
                    f"| {head} | {'bf16' if bf16 else 'fp32'} | {state.log[-1]['train_loss']:.4f} | "
                    f"{s['acc@0.5']:.4f} | {s['mIoU']:.4f} | {diff:.2e} |"
                )


if __name__ == "__main__":
    main()
