"""`refaug-train`: fit, evaluate, report, zero-shot-check.

refaug-train fit --variant out/sample/detr --embeddings out/sample/detr/embeddings --head sf --out runs/sf
refaug-train fit ... --resume                       continue from the last epoch-NN.pt in --out
refaug-train evaluate --variant ... --embeddings ... --checkpoint runs/sf/epoch-20.pt --out runs/sf/eval
refaug-train evaluate --variant ... --embeddings ... --head zero-shot --out runs/zero-shot
refaug-train report runs/*/eval --out runs/report
refaug-train grid out/sample --epochs 5            every head on every variant, beside zero-shot, + report
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from . import datasets as D
from .features import EmbeddingShards, FeatureSource
from .heads import HeadKind, RankingHead, SfNet, ZeroShot
from .report import plot_log, plot_runs, write_tables
from .shards import Refs, ShardError, read_refs
from .train import DeviceError, FitConfig, evaluate, fit, load_head

HEADS = ["sf", "flyp", "contex"]


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", type=Path, required=True, help="a variant folder of proposal shards")
    p.add_argument("--embeddings", type=Path, help="its embedding shards (default: VARIANT/embeddings)")
    p.add_argument(
        "--images",
        type=Path,
        help="embed live instead: the images folder (file_name is relative to it), with the two encoders",
    )
    p.add_argument("--image-model", type=Path, help="CLIP image encoder (ONNX: image -> embedding)")
    p.add_argument("--text-model", type=Path, help="CLIP text encoder (ONNX: tokens -> embedding)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's, = cores)")


RESEARCH_DEFAULT = "default: the research's (§5)"
FLAG_HELP = {
    "normalize": "FLYP: L2-normalise the features in the contrastive loss (the research did not)",
    "per_epoch_optimizer": "re-create the optimizer every epoch, as the research's loop did",
    "train_limit": "the first N training items in file order (default: the research's: H1 5120, else all)",
    "best_iou_above": "training filter for H1/H3: best IoU over the kept proposals above this (default 0.5)",
    "bf16": "train under bfloat16 autocast (faster on AVX-512 BF16 CPUs; not the research's arithmetic)",
    "augment": "FLYP's augmented variant: M views per ref each epoch (needs --images; default 0: none)",
}


def _fit_args(p: argparse.ArgumentParser) -> None:
    """The splits, every FitConfig field but head/net/device/progress as a flag (default: the research's,
    §5), and --quiet."""
    p.add_argument("--train-split", default="train")
    p.add_argument("--val-split", default="val")
    for fld in fields(FitConfig):
        if fld.name in ("head", "net", "device", "progress"):
            continue
        flag = "--" + fld.name.replace("_", "-")
        if fld.type in ("bool",):
            p.add_argument(flag, action="store_true", default=None, help=FLAG_HELP.get(fld.name))
        else:
            kind = {"int": int, "float": float}.get(str(fld.type), str)
            p.add_argument(flag, type=kind, default=None, help=FLAG_HELP.get(fld.name, RESEARCH_DEFAULT))
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="refaug-train", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="train a head (a checkpoint and log.csv per epoch; --resume continues)")
    _data_args(f)
    f.add_argument("--head", choices=["sf", "flyp", "contex"], required=True)
    f.add_argument("--net", choices=["net1", "net2", "net3", "net4"], default="net1")
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--resume", action="store_true")
    _fit_args(f)
    e = sub.add_parser("evaluate", help="§6 metrics of a checkpoint (or the zero-shot baseline) per split")
    _data_args(e)
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", type=Path)
    g.add_argument("--head", choices=["zero-shot"])
    e.add_argument("--splits", default="train,val,test")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--name", help="the head's name in the tables (default: from the checkpoint)")
    gr = sub.add_parser(
        "grid",
        help="fit every head on every variant, evaluate each beside the zero-shot baseline, report",
    )
    gr.add_argument(
        "output", type=Path, help="refaug's output folder (variants: its folders with embeddings/)"
    )
    gr.add_argument("--variants", help="comma-separated variant names (default: every one with embeddings/)")
    gr.add_argument("--heads", default=",".join(HEADS), help="comma-separated, of sf, flyp, contex")
    gr.add_argument("--net", choices=["net1", "net2", "net3", "net4"], default="net1")
    gr.add_argument("--runs", type=Path, help="where the runs go (default: OUTPUT/runs)")
    gr.add_argument("--splits", default="train,val,test", help="evaluated splits")
    gr.add_argument("--resume", action="store_true", help="continue each run from its last checkpoint")
    gr.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    gr.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's, = cores)")
    _fit_args(gr)
    r = sub.add_parser("report", help="results tables (md, csv, json) from evaluate outputs")
    r.add_argument("evals", type=Path, nargs="+", help="folders written by evaluate")
    r.add_argument("--out", type=Path, required=True)
    z = sub.add_parser(
        "zero-shot-check",
        help="this package's evaluation on the reference's embeddings vs its zero_shot.json",
    )
    z.add_argument("--reference", type=Path, default=Path("../shared/reference"))
    z.add_argument("--dataset", default="public-24")
    z.add_argument("--detector", default="yolov8n-cal")
    z.add_argument(
        "--source",
        choices=["embeddings", "images"],
        default="embeddings",
        help="the reference's embeddings, or decode + crop + the CLIP ONNX encoders of --models live",
    )
    z.add_argument("--models", type=Path, default=Path("../shared/models"))
    z.add_argument("--tolerance", type=float, default=None, help="default 1e-6 (embeddings), 1e-5 (images)")
    return ap


def _source(args: argparse.Namespace) -> FeatureSource:
    if args.images is None:
        return EmbeddingShards(args.embeddings or args.variant / "embeddings")
    if args.image_model is None or args.text_model is None:
        raise ShardError("--images needs --image-model and --text-model")
    from .images import ImageFeatures

    return ImageFeatures(args.images, args.image_model, args.text_model)


class NoTrainingItems(ShardError):
    """The training filter leaves no item of the training split for a head."""


def _config(args: argparse.Namespace, head: HeadKind, net: SfNet) -> FitConfig:
    """The research's config for `head` (§5), with the flags given on the command line over it."""
    cfg = FitConfig.research(head, net)
    for fld in fields(FitConfig):
        v = getattr(args, fld.name, None)
        if v is not None and fld.name not in ("head", "net", "device", "progress"):
            setattr(cfg, fld.name, v)
    cfg.device, cfg.progress = args.device, not args.quiet
    return cfg


def run_name(cfg: FitConfig) -> str:
    """A run's head in the tables: sf-netN, flyp, contex."""
    return f"sf-{cfg.net}" if cfg.head == "sf" else cfg.head


def fit_run(
    cfg: FitConfig,
    variant: Path,
    refs: Refs,
    src: FeatureSource,
    out: Path,
    resume: bool,
    train_split: str = "train",
    val_split: str = "val",
) -> int:
    """Fit `cfg.head` on one variant: checkpoints, log.csv, loss.png, accuracy.png in `out`; the number of
    training items."""
    train: D.Packed[Any]
    val: D.Packed[Any] | None = None  # the validation loss's items; ranking heads: val_eval's
    if cfg.augment and cfg.head != "flyp":
        raise ShardError(
            f"--augment {cfg.augment}: only the FLYP head (--head flyp) has an augmented variant"
        )
    if cfg.augment:
        from .augment import augmented
        from .images import ImageFeatures

        if not isinstance(src, ImageFeatures):
            raise ShardError(
                f"--augment {cfg.augment}: the views change every epoch, so they need the images source "
                "(--images DIR --image-model M --text-model M), not precomputed embeddings"
            )
        train = augmented(refs, src, train_split, cfg.augment, cfg.train_limit)
        val = D.contrastive(refs, src, val_split)
    elif cfg.head == "flyp":
        train = D.contrastive(refs, src, train_split, cfg.train_limit)
        val = D.contrastive(refs, src, val_split)
    else:
        train = D.ranking_train(refs, src, train_split, cfg.train_limit, best_iou_above=cfg.best_iou_above)
    if len(train) == 0:
        raise NoTrainingItems(
            f"{variant}: no {train_split} item for head {cfg.head} (best IoU > {cfg.best_iou_above} after "
            "the filter; --best-iou-above lowers the threshold)"
        )
    val_eval = D.ranking_eval(refs, src, val_split)
    _, state = fit(cfg, train, val if val is not None else val_eval, val_eval, out, resume=resume)
    plot_log(out / "log.csv", out)
    print(f"{variant.name} {run_name(cfg)}: {state.epoch} epochs, {len(train)} items; last: {state.log[-1]}")
    return len(train)


def evaluate_run(
    model: RankingHead,
    name: str,
    variant: Path,
    refs: Refs,
    src: FeatureSource,
    splits: str,
    out: Path,
    device: str,
) -> list[dict[str, object]]:
    """§6 metrics of `model` per split: `out/metrics.json` (rows of the results table) and per-ref picks."""
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    for split in splits.split(","):
        if split not in refs.split:
            continue
        ev = evaluate(model, D.ranking_eval(refs, src, split), device=device)
        rows.append({"head": name, "variant": variant.name, "split": split, **ev.summary})
        per_ref = {"ref_id": ev.ref_id, "pred": ev.pred, "iou": ev.iou, "cos": ev.cos, "ed": ev.ed}
        (out / f"{split}-per-ref.json").write_text(json.dumps(per_ref) + "\n")
        print(f"{name} {variant.name} {split}: " + json.dumps(ev.summary))
    (out / "metrics.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def cmd_fit(args: argparse.Namespace) -> int:
    cfg = _config(args, args.head, args.net)
    fit_run(
        cfg,
        args.variant,
        read_refs(args.variant),
        _source(args),
        args.out,
        args.resume,
        args.train_split,
        args.val_split,
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    refs, src = read_refs(args.variant), _source(args)
    model: RankingHead
    if args.checkpoint:
        model = load_head(args.checkpoint, args.device)
        c = torch.load(args.checkpoint, map_location="cpu", weights_only=False)["config"]
        name = args.name or run_name(FitConfig(**c))
    else:
        model, name = ZeroShot(), args.name or "zero-shot"
    evaluate_run(model, name, args.variant, refs, src, args.splits, args.out, args.device)
    return 0


def grid_variants(output: Path, names: str | None) -> list[Path]:
    """The variants of refaug's output folder to train on: `names`, or every folder with embeddings/."""
    if names:
        variants = [output / n for n in names.split(",")]
        for v in variants:
            if not (v / "embeddings").is_dir():
                raise ShardError(f"{v}: no embeddings/ folder (run `refaug embed` first)")
        return variants
    variants = sorted(p.parent for p in output.glob("*/embeddings") if p.is_dir())
    if not variants:
        raise ShardError(f"{output}: no variant with an embeddings/ folder (run `refaug embed` first)")
    return variants


def cmd_grid(args: argparse.Namespace) -> int:
    """For each variant: the zero-shot baseline, then each head fitted from the embeddings and evaluated on
    its last epoch; then the results table of every (head, variant, split) and plots of every run."""
    heads = args.heads.split(",")
    for h in heads:
        if h not in HEADS:
            raise ShardError(f"--heads: {h!r} is not one of {', '.join(HEADS)}")
    runs = args.runs or args.output / "runs"
    rows: list[dict[str, object]] = []
    logs: dict[tuple[str, str], Path] = {}
    skipped: list[str] = []
    for variant in grid_variants(args.output, args.variants):
        refs, src = read_refs(variant), EmbeddingShards(variant / "embeddings")
        rows += evaluate_run(
            ZeroShot(),
            "zero-shot",
            variant,
            refs,
            src,
            args.splits,
            runs / variant.name / "zero-shot",
            args.device,
        )
        for head in heads:
            cfg = _config(args, head, args.net)  # type: ignore[arg-type]
            name, out = run_name(cfg), runs / variant.name / run_name(cfg)
            try:
                fit_run(cfg, variant, refs, src, out, args.resume, args.train_split, args.val_split)
            except NoTrainingItems as e:
                print(f"refaug-train grid: skipped {name} on {variant.name}: {e}", file=sys.stderr)
                skipped.append(f"{name} on {variant.name}: not trained ({e})")
                continue
            model = load_head(out / f"epoch-{cfg.epochs:02d}.pt", args.device)
            rows += evaluate_run(model, name, variant, refs, src, args.splits, out / "eval", args.device)
            logs[variant.name, name] = out / "log.csv"
    written = write_tables(rows, runs / "report", notes=skipped)
    for p in [*written, *(plot_runs(logs, runs / "report") if logs else [])]:
        print(p)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    rows = [r for d in args.evals for r in json.loads((d / "metrics.json").read_text())]
    for p in write_tables(rows, args.out):
        print(p)
    return 0


def cmd_zero_shot_check(args: argparse.Namespace) -> int:
    from .zero_shot_check import run

    source = None
    if args.source == "images":
        from .images import ImageFeatures

        source = ImageFeatures(
            args.reference / args.dataset / "images",
            args.models / "clip_rn50_small_image.onnx",
            args.models / "clip_rn50_small_text.onnx",
        )
    tol = args.tolerance or (1e-6 if source is None else 1e-5)
    result = run(args.reference, args.dataset, args.detector, tol, source)
    print("\n".join(result.lines))
    return 0 if result.passed else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    try:
        return {
            "fit": cmd_fit,
            "evaluate": cmd_evaluate,
            "report": cmd_report,
            "grid": cmd_grid,
            "zero-shot-check": cmd_zero_shot_check,
        }[args.cmd](args)
    except (ShardError, DeviceError, FileNotFoundError) as e:
        print(f"refaug-train: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
