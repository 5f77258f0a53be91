"""`refaug-train`: fit, evaluate, report, zero-shot-check.

refaug-train fit --variant out/sample/detr --embeddings out/sample/detr/embeddings --head sf --out runs/sf
refaug-train fit ... --resume                       continue from the last epoch-NN.pt in --out
refaug-train evaluate --variant ... --embeddings ... --checkpoint runs/sf/epoch-20.pt --out runs/sf/eval
refaug-train evaluate --variant ... --embeddings ... --head zero-shot --out runs/zero-shot
refaug-train report runs/*/eval --out runs/report
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

import torch

from . import datasets as D
from .features import EmbeddingShards, FeatureSource
from .heads import RankingHead, ZeroShot
from .report import plot_log, write_tables
from .shards import ShardError, read_refs
from .train import FitConfig, evaluate, fit, load_head


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


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="refaug-train", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="train a head (a checkpoint and log.csv per epoch; --resume continues)")
    _data_args(f)
    f.add_argument("--head", choices=["sf", "flyp", "contex"], required=True)
    f.add_argument("--net", choices=["net1", "net2", "net3", "net4"], default="net1")
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--resume", action="store_true")
    f.add_argument("--train-split", default="train")
    f.add_argument("--val-split", default="val")
    for fld in fields(FitConfig):
        if fld.name in ("head", "net", "device", "progress"):
            continue
        flag = "--" + fld.name.replace("_", "-")
        if fld.type in ("bool",):
            f.add_argument(flag, action="store_true", default=None)
        else:
            kind = {"int": int, "float": float}.get(str(fld.type), str)
            f.add_argument(flag, type=kind, default=None, help="default: the research's (§5)")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    e = sub.add_parser("evaluate", help="§6 metrics of a checkpoint (or the zero-shot baseline) per split")
    _data_args(e)
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", type=Path)
    g.add_argument("--head", choices=["zero-shot"])
    e.add_argument("--splits", default="train,val,test")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--name", help="the head's name in the tables (default: from the checkpoint)")
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


def cmd_fit(args: argparse.Namespace) -> int:
    cfg = FitConfig.research(args.head, args.net)
    for fld in fields(FitConfig):
        v = getattr(args, fld.name, None)
        if v is not None and fld.name not in ("head", "net"):
            setattr(cfg, fld.name, v)
    cfg.device, cfg.progress = args.device, not args.quiet
    refs, src = read_refs(args.variant), _source(args)
    val_eval = D.ranking_eval(refs, src, args.val_split)
    if cfg.head == "flyp":
        train = D.contrastive(refs, src, args.train_split, cfg.train_limit)
        val: D.RankingDataset | D.ContrastiveDataset = D.contrastive(refs, src, args.val_split)
    else:
        train = D.ranking_train(refs, src, args.train_split, cfg.train_limit)
        val = val_eval
    if len(train) == 0:
        raise ShardError(f"{args.variant}: no {args.train_split} item for head {cfg.head}")
    _, state = fit(cfg, train, val, val_eval, args.out, resume=args.resume)
    plot_log(args.out / "log.csv", args.out)
    last = state.log[-1]
    print(f"fit: {state.epoch} epochs, {len(train)} items; last: " + json.dumps(last))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    refs, src = read_refs(args.variant), _source(args)
    model: RankingHead
    if args.checkpoint:
        model = load_head(args.checkpoint, args.device)
        c = torch.load(args.checkpoint, map_location="cpu", weights_only=False)["config"]
        name = args.name or (f"sf-{c['net']}" if c["head"] == "sf" else c["head"])
    else:
        model, name = ZeroShot(), args.name or "zero-shot"
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for split in args.splits.split(","):
        if split not in refs.split:
            continue
        ev = evaluate(model, D.ranking_eval(refs, src, split), device=args.device)
        rows.append({"head": name, "variant": args.variant.name, "split": split, **ev.summary})
        per_ref = {"ref_id": ev.ref_id, "pred": ev.pred, "iou": ev.iou, "cos": ev.cos, "ed": ev.ed}
        (args.out / f"{split}-per-ref.json").write_text(json.dumps(per_ref) + "\n")
        print(f"{name} {args.variant.name} {split}: " + json.dumps(ev.summary))
    (args.out / "metrics.json").write_text(json.dumps(rows, indent=1) + "\n")
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
    try:
        return {
            "fit": cmd_fit,
            "evaluate": cmd_evaluate,
            "report": cmd_report,
            "zero-shot-check": cmd_zero_shot_check,
        }[args.cmd](args)
    except (ShardError, FileNotFoundError) as e:
        print(f"refaug-train: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
