"""Training and evaluation loops (`training-research.md` §5, §6).

Seeded and reproducible on the CPU: `torch.manual_seed(seed)`, `random.seed(seed)` and the train loader's
generator seeded with it (§5); checkpoints hold the model, the optimizer and every random state, so `resume`
continues exactly where an uninterrupted run would be. One optimizer for the run by default; the research
re-created it at every epoch (Adam moments and SGD momentum reset), `per_epoch_optimizer=True` does that.
`bf16=True` runs the training forward under `torch.autocast(bfloat16)` (matmuls in bfloat16; weights,
gradients, norms and the loss's softmax in float32): faster on CPUs with AVX-512 BF16, not the research's
arithmetic, so off by default; evaluation is always float32.
"""

from __future__ import annotations

import csv
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .datasets import (
    Packed,
    PairBatch,
    RankingBatch,
    RankingDataset,
    ViewsBatch,
    unbatched,
)
from .filters import BEST_IOU_ABOVE, box_iou
from .heads import ClipFlyp, HeadKind, RankingHead, SfNet, clip_loss, make_head, ranking_loss
from .metrics import summarize

OptimizerKind = Literal["sgd", "adam", "adadelta"]


@dataclass
class FitConfig:
    head: HeadKind = "sf"
    net: SfNet = "net1"
    dropout: float = 0.5
    normalize: bool = False
    epochs: int = 20
    batch_size: int = 512
    optimizer: OptimizerKind = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.01
    seed: int = 42
    per_epoch_optimizer: bool = False
    train_limit: int = -1
    best_iou_above: float = BEST_IOU_ABOVE
    bf16: bool = False
    augment: int = 0
    device: str = "cpu"
    progress: bool = True

    @staticmethod
    def research(head: HeadKind, net: SfNet = "net1") -> FitConfig:
        """§5's settings: H1 net1/2/4 SGD(.01, .9, wd .01 as in the report cells), net3 Adadelta(.0015),
        batch 512 on the first 5,120 training items, 20 epochs; H2 "solve overfitting" (the best reported:
        dropout .5, SGD(.01, .9, 1e-6), batch 1024, 50 epochs); H3 SGD(.01, .9, 1e-6), batch 4, 50 epochs."""
        if head == "sf":
            if net == "net3":
                return FitConfig("sf", net, optimizer="adadelta", lr=0.0015, train_limit=5120)
            return FitConfig("sf", net, train_limit=5120)
        if head == "flyp":
            return FitConfig("flyp", dropout=0.5, epochs=50, batch_size=1024, weight_decay=1e-6)
        if head == "contex":
            return FitConfig("contex", epochs=50, batch_size=4, weight_decay=1e-6)
        raise ValueError(f"head {head!r} is not trained")


def make_optimizer(cfg: FitConfig, params: Any) -> torch.optim.Optimizer:
    """Over every parameter (weights, biases, logit_scale), weight decay on all of them (§5). SGD and Adam
    use torch's fused kernels (the same update in one pass over each tensor: half the time of the
    per-tensor loop for a 1024x1024 weight on this CPU); Adadelta has none."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=True
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


class DeviceError(RuntimeError):
    """A --device that torch cannot use here."""


def torch_device(name: str) -> torch.device:
    """`cpu`, `cuda` or `cuda:N`; a CUDA device torch does not see is an error, never a silent CPU run."""
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise DeviceError(f"--device {name}: only cpu, cuda and cuda:N are supported") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {name}: torch {torch.__version__} sees no CUDA GPU here "
                "(torch.cuda.is_available() is False); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise DeviceError(f"--device {name}: only cpu, cuda and cuda:N are supported")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    return torch.Generator().manual_seed(seed)


def _loader(ds: Packed[Any], batch: int, gen: torch.Generator | None) -> DataLoader:
    return DataLoader(ds, batch_size=batch, shuffle=gen is not None, generator=gen, collate_fn=unbatched)


def _ranking_loss(model: nn.Module, b: RankingBatch, dev: torch.device) -> torch.Tensor:
    logits = model(b.crops.to(dev), b.crop_mask.to(dev), b.sents.to(dev), b.sent_mask.to(dev))
    return ranking_loss(logits, b.target.to(dev))


def _pair_loss(model: ClipFlyp, b: PairBatch, dev: torch.device) -> torch.Tensor:
    return clip_loss(*model.embed_pairs(b.img.to(dev), b.txt.to(dev)))


def _views_loss(model: ClipFlyp, b: ViewsBatch, dev: torch.device) -> torch.Tensor:
    """§4.2d: the B x m views embedded at once, then the mean over the m slices of ClipLoss (B x B each)."""
    bsz, m, d = b.img.shape
    img_z, txt_z, scale = model.embed_pairs(b.img.to(dev).reshape(-1, d), b.txt.to(dev).reshape(-1, d))
    img_z, txt_z = img_z.reshape(bsz, m, -1), txt_z.reshape(bsz, m, -1)
    return torch.stack([clip_loss(img_z[:, j], txt_z[:, j], scale) for j in range(m)]).mean()


def batch_loss(model: nn.Module, b: RankingBatch | PairBatch | ViewsBatch, dev: torch.device) -> torch.Tensor:
    if isinstance(b, PairBatch | ViewsBatch):
        assert isinstance(model, ClipFlyp)
        return _pair_loss(model, b, dev) if isinstance(b, PairBatch) else _views_loss(model, b, dev)
    return _ranking_loss(model, b, dev)


@torch.no_grad()
def mean_loss(model: nn.Module, ds: Packed[Any], batch: int, dev: torch.device) -> float:
    """Mean of the batch losses, unshuffled (the research's test_step)."""
    model.eval()
    losses = [float(batch_loss(model, b, dev)) for b in _loader(ds, batch, None)]
    return float(np.mean(losses)) if losses else float("nan")


@dataclass
class Evaluation:
    summary: dict[str, float]
    ref_id: list[int]
    pred: list[int]
    iou: list[float]
    cos: list[float]
    ed: list[float]
    n_fallback: int = 0


@torch.no_grad()
def evaluate(model: RankingHead, ds: RankingDataset, batch: int = 1024, device: str = "cpu") -> Evaluation:
    """§6 eval_step: pred = first argmax of the head's logits; IoU of the predicted box with the ground truth;
    cosine and Euclidean distance between the frozen embeddings of the ground-truth and predicted crops."""
    dev = torch_device(device)
    model.eval()
    model.to(dev)
    preds, ious, coss, eds = [], [], [], []
    for b in _loader(ds, batch, None):
        logits = model(b.crops.to(dev), b.crop_mask.to(dev), b.sents.to(dev), b.sent_mask.to(dev)).cpu()
        pred = torch.argmax(logits, dim=1)  # first maximum
        rows = torch.arange(len(pred))
        boxes, _ = ds.boxes.pad(b.index)
        ious.append(box_iou(boxes[rows, pred].numpy(), ds.gt_box[b.index].numpy()))
        pred_z, gt_z = b.crops[rows, pred], ds.gt_emb[b.index]
        coss.append(F.cosine_similarity(gt_z, pred_z, dim=-1).numpy())
        eds.append(torch.linalg.vector_norm(gt_z - pred_z, dim=-1).numpy())
        preds.append(pred.numpy())
    cat = [np.concatenate(x) if x else np.zeros(0, np.float32) for x in (preds, ious, coss, eds)]
    summary = summarize(cat[1], cat[2], cat[3])
    summary["n_fallback"] = float(int(ds.fallback.sum()))
    return Evaluation(
        summary,
        ds.ref_id.tolist(),
        [int(p) for p in cat[0]],
        cat[1].tolist(),
        cat[2].tolist(),
        cat[3].tolist(),
        int(ds.fallback.sum()),
    )


LOG_FIELDS = ["epoch", "train_loss", "val_loss", "val_acc@0.5", "val_mIoU", "seconds"]


@dataclass
class RunState:
    epoch: int = 0
    log: list[dict[str, float]] = field(default_factory=list)


def checkpoint_path(out: Path, epoch: int) -> Path:
    return out / f"epoch-{epoch:02d}.pt"


def latest_checkpoint(out: Path) -> Path | None:
    cks = sorted(out.glob("epoch-*.pt"))
    return cks[-1] if cks else None


def _write_log(out: Path, log: list[dict[str, float]]) -> None:
    tmp = out / ".log.csv.tmp"
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        w.writeheader()
        for row in log:
            w.writerow(row)
    tmp.replace(out / "log.csv")


def _save(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def fit(
    cfg: FitConfig,
    train_ds: Packed[Any],
    val_ds: Packed[Any] | None,
    val_eval: RankingDataset | None,
    out: Path,
    resume: bool = False,
) -> tuple[RankingHead, RunState]:
    """Train `cfg.head`; after each epoch: validation loss, validation acc@0.5 and mIoU (on `val_eval`), a
    checkpoint `epoch-NN.pt` and `log.csv`. Epoch 0 is the evaluation before training (§5 loop step 1)."""
    dev = torch_device(cfg.device)
    out.mkdir(parents=True, exist_ok=True)
    gen = seed_everything(cfg.seed)
    model = make_head(cfg.head, train_ds.dim, cfg.net, cfg.dropout, cfg.normalize).to(dev)
    opt = make_optimizer(cfg, model.parameters())
    state = RunState()
    ck = latest_checkpoint(out) if resume else None
    if ck is not None:
        payload = torch.load(ck, map_location=dev, weights_only=False)
        model.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["torch_rng"])
        gen.set_state(payload["loader_rng"])
        random.setstate(payload["python_rng"])
        state = RunState(payload["epoch"], payload["log"])
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1) + "\n")

    def validate(epoch: int, train_loss: float, seconds: float) -> None:
        row: dict[str, float] = {"epoch": epoch, "train_loss": train_loss, "seconds": seconds}
        row["val_loss"] = (
            mean_loss(model, val_ds, cfg.batch_size, dev) if val_ds is not None else float("nan")
        )
        if val_eval is not None:
            s = evaluate(model, val_eval, max(cfg.batch_size, 256), cfg.device).summary
            row["val_acc@0.5"], row["val_mIoU"] = s["acc@0.5"], s["mIoU"]
        state.log.append(row)

    if state.epoch == 0 and not state.log:
        validate(0, float("nan"), 0.0)
    loader = _loader(train_ds, cfg.batch_size, gen)
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        if cfg.per_epoch_optimizer:
            opt = make_optimizer(cfg, model.parameters())
        model.train()
        t0, total, n = time.perf_counter(), 0.0, 0
        for b in tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", disable=not cfg.progress, leave=False):
            opt.zero_grad()
            with torch.autocast(dev.type, torch.bfloat16, enabled=cfg.bf16):
                loss = batch_loss(model, b, dev)
            loss.backward()
            opt.step()
            if isinstance(model, ClipFlyp):
                model.clamp_()
            total += loss.item() * len(b.index)
            n += len(b.index)
        validate(epoch, total / max(n, 1), time.perf_counter() - t0)
        state.epoch = epoch
        _save(
            checkpoint_path(out, epoch),
            {
                "config": asdict(cfg),
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "loader_rng": gen.get_state(),
                "python_rng": random.getstate(),
                "log": state.log,
            },
        )
        _write_log(out, state.log)
    _write_log(out, state.log)
    return model, state


def load_head(path: Path, device: str = "cpu") -> RankingHead:
    """The model of a checkpoint written by `fit`."""
    payload = torch.load(path, map_location=torch_device(device), weights_only=False)
    c = payload["config"]
    sd = payload["model"]
    dim = _dim_of(sd)
    model = make_head(c["head"], dim, c["net"], c["dropout"], c["normalize"])
    model.load_state_dict(sd)
    return model


def _dim_of(sd: dict[str, torch.Tensor]) -> int:
    for k in ("img_head.1.weight", "img_head.2.weight", "attn.out_proj.weight"):
        if k in sd:
            return int(sd[k].shape[1])
    raise ValueError("checkpoint: cannot tell the embedding size")
