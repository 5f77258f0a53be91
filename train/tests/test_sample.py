"""Training on the bundled sample: refaug's own output on it (tests/data/sample/, three variants from the
stand-in detectors and the 16-d stand-in CLIP encoder; tools/make_train_sample.py copies it).

The research's settings do not fit 53 refs and stand-in models, so each test states what it changes: batch
8 (the research's 512/1024 would be one step per epoch); for H1/H3 the training filter's best-IoU threshold
lowered from 0.5 to 0 (with 0.5 the stand-in detectors leave 5, 0 and 0 of the 32 train refs) and a larger
learning rate, so that a few epochs move the loss; for H2 the L2-normalised loss (the research's
unnormalised one diverges on the stand-in embeddings)."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from refaug_train import datasets as D
from refaug_train.cli import main
from refaug_train.features import EmbeddingShards
from refaug_train.filters import RESEARCH_FILTER, box_iou
from refaug_train.shards import read_refs
from refaug_train.train import FitConfig, fit

SAMPLE = Path(__file__).parent / "data" / "sample"
VARIANTS = ["detr", "fasterrcnn", "yolo"]


def variant(name):
    return read_refs(SAMPLE / name), EmbeddingShards(SAMPLE / name / "embeddings")


def test_the_research_filter_on_the_sample():
    """Training items with the research's threshold and with 0, counted here from the raw proposals."""
    for name, research in (("yolo", 5), ("detr", 0), ("fasterrcnn", 0)):
        refs, src = variant(name)
        train = [i for i in range(len(refs)) if refs.split[i] == "train"]
        assert len(train) == 32
        assert len(D.ranking_train(refs, src, "train")) == research
        best = []
        for i in train:
            b, s = refs.proposals(i)
            keep = [
                j for j in range(len(s)) if s[j] > 0.25 and b[j, 2] - b[j, 0] > 16 and b[j, 3] - b[j, 1] > 16
            ]
            assert keep == RESEARCH_FILTER.kept(b, s)
            if len(keep) >= 2:
                best.append(float(box_iou(b[keep], refs.gt[i]).max()))
        assert sum(x > 0.5 for x in best) == research
        assert len(D.ranking_train(refs, src, "train", best_iou_above=0.0)) == sum(x > 0 for x in best)


def sample_fit(head, name, out, **kw):
    refs, src = variant(name)
    base = {"head": head, "epochs": 5, "batch_size": 8, "weight_decay": 1e-6, "progress": False}
    cfg = FitConfig(**{**base, **kw})
    if head == "flyp":
        train, val = D.contrastive(refs, src, "train"), D.contrastive(refs, src, "val")
    else:
        train = D.ranking_train(refs, src, "train", best_iou_above=cfg.best_iou_above)
        val = D.ranking_eval(refs, src, "val")
    return fit(cfg, train, val, D.ranking_eval(refs, src, "val"), out), len(train)


@pytest.mark.parametrize(
    ("head", "name", "kw"),
    [
        ("flyp", "yolo", {"normalize": True}),
        ("sf", "yolo", {"best_iou_above": 0.0, "lr": 0.5}),
        ("sf", "fasterrcnn", {"best_iou_above": 0.0, "lr": 0.5}),
        ("contex", "yolo", {"best_iou_above": 0.0, "lr": 0.05}),
        ("contex", "detr", {"best_iou_above": 0.0, "lr": 0.05}),
    ],
)
def test_training_on_the_sample_lowers_the_loss(tmp_path, head, name, kw):
    (_, state), n = sample_fit(head, name, tmp_path / "a", **kw)
    assert n >= 17
    losses = [r["train_loss"] for r in state.log[1:]]
    assert len(losses) == 5
    assert losses[-1] < 0.95 * losses[0], losses
    if head == "flyp":  # the contrastive validation loss too (the ranking ones: 10 val refs, too few)
        assert state.log[-1]["val_loss"] < state.log[0]["val_loss"]
    # one seed, one result: a second run gives identical weights
    (model_b, _), _ = sample_fit(head, name, tmp_path / "b", **kw)
    a = torch.load(tmp_path / "a" / "epoch-05.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], v) for k, v in model_b.state_dict().items())


def test_grid_trains_every_head_on_every_variant(tmp_path):
    out = tmp_path / "sample"
    shutil.copytree(SAMPLE, out)
    argv = ["grid", str(out), "--epochs", "2", "--batch-size", "8", "--best-iou-above", "0", "--quiet"]
    assert main([*argv, "--normalize", "--splits", "val,test"]) == 0
    runs = out / "runs"
    rows = json.loads((runs / "report" / "results.json").read_text())
    heads = ["contex", "flyp", "sf-net1", "zero-shot"]
    assert [(r["head"], r["variant"], r["split"]) for r in rows] == [
        (h, v, s) for h in heads for v in VARIANTS for s in ("test", "val")
    ]
    assert all(r["n_refs"] == {"val": 10, "test": 11}[r["split"]] for r in rows)
    md = (runs / "report" / "results.md").read_text().splitlines()
    assert len(md) == 2 + len(rows)
    for f in ("results.csv", "loss.png", "accuracy.png"):
        assert (runs / "report" / f).stat().st_size > 0
    for v in VARIANTS:
        for h in heads[:3]:
            log = (runs / v / h / "log.csv").read_text().splitlines()
            assert len(log) == 1 + 3  # header, epochs 0..2
            assert (runs / v / h / "epoch-02.pt").exists()
            assert json.loads((runs / v / h / "config.json").read_text())["best_iou_above"] == 0.0
    # the zero-shot rows are what `evaluate --head zero-shot` writes for the variant
    assert (
        main(
            [
                "evaluate",
                "--variant",
                str(out / "yolo"),
                "--head",
                "zero-shot",
                "--splits",
                "val",
                "--out",
                str(tmp_path / "z"),
            ]
        )
        == 0
    )
    z = json.loads((tmp_path / "z" / "metrics.json").read_text())[0]
    assert z == next(
        r for r in rows if r["head"] == "zero-shot" and r["variant"] == "yolo" and r["split"] == "val"
    )


def test_grid_with_the_research_filter_skips_what_it_leaves_empty(tmp_path, capsys):
    out = tmp_path / "sample"
    shutil.copytree(SAMPLE, out)
    argv = ["grid", str(out), "--heads", "sf", "--epochs", "1", "--batch-size", "8", "--splits", "val"]
    assert main([*argv, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "skipped sf-net1 on detr" in err and "skipped sf-net1 on fasterrcnn" in err
    rows = json.loads((out / "runs" / "report" / "results.json").read_text())
    assert sorted((r["head"], r["variant"]) for r in rows) == [
        ("sf-net1", "yolo"),
        *(("zero-shot", v) for v in VARIANTS),
    ]
    md = (out / "runs" / "report" / "results.md").read_text()
    assert "- sf-net1 on detr: not trained" in md and "- sf-net1 on fasterrcnn: not trained" in md
    assert (out / "runs" / "report" / "loss.png").exists()
