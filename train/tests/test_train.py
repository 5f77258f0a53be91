"""Training lowers the loss, is reproducible with one seed, resumes exactly; evaluation recomputed
independently (per ref, in plain numpy)."""

import csv
import math

import numpy as np
import pytest
import torch

from refaug_train import datasets as D
from refaug_train.heads import ClipSf, ZeroShot
from refaug_train.train import FitConfig, evaluate, fit, load_head


def views(synthetic):
    _, refs, src = synthetic
    return D.ranking_train(refs, src, "train"), D.ranking_eval(refs, src, "val")


def cfg(head, **kw):
    base = {"head": head, "epochs": 4, "batch_size": 32, "lr": 0.1, "weight_decay": 1e-6, "progress": False}
    base.update(kw)
    return FitConfig(**base)


@pytest.mark.parametrize("head", ["sf", "contex"])
def test_ranking_heads_lower_the_loss(synthetic, tmp_path, head):
    train, val = views(synthetic)
    _, state = fit(cfg(head, lr=0.5 if head == "sf" else 0.05), train, val, val, tmp_path)
    losses = [r["train_loss"] for r in state.log[1:]]
    assert losses[-1] < losses[0]
    assert state.log[-1]["val_loss"] < state.log[0]["val_loss"]
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.glob("epoch-*.pt")) == [f"epoch-0{i}.pt" for i in range(1, 5)]


def test_flyp_lowers_the_contrastive_loss(synthetic, tmp_path):
    _, refs, src = synthetic
    train, val = D.contrastive(refs, src, "train"), D.contrastive(refs, src, "val")
    _, state = fit(
        cfg("flyp", dropout=0.1, optimizer="adam", lr=1e-2),
        train,
        val,
        D.ranking_eval(refs, src, "val"),
        tmp_path,
    )
    assert state.log[-1]["train_loss"] < state.log[1]["train_loss"]
    assert state.log[-1]["val_loss"] < state.log[0]["val_loss"]


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("head", ["sf", "flyp"])
def test_one_seed_gives_identical_weights_and_resume_equals_an_uninterrupted_run(synthetic, tmp_path, head):
    _, refs, src = synthetic
    if head == "flyp":
        train, val = D.contrastive(refs, src, "train"), D.contrastive(refs, src, "val")
    else:
        train, val = views(synthetic)
    c = cfg(head, dropout=0.5)
    a, _ = fit(c, train, val, None, tmp_path / "a")
    b, _ = fit(c, train, val, None, tmp_path / "b")
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # another seed gives other weights
    d, _ = fit(cfg(head, dropout=0.5, seed=7), train, val, None, tmp_path / "d")
    assert not all(torch.equal(wa[k], weights(d)[k]) for k in wa)
    # 2 epochs, then resume to 4 == 4 straight
    fit(cfg(head, dropout=0.5, epochs=2), train, val, None, tmp_path / "r")
    r, state = fit(c, train, val, None, tmp_path / "r", resume=True)
    wr = weights(r)
    assert all(torch.equal(wa[k], wr[k]) for k in wa)
    assert [row["epoch"] for row in state.log] == [0, 1, 2, 3, 4]
    loaded = load_head(tmp_path / "a" / "epoch-04.pt")
    assert all(torch.equal(wa[k], loaded.state_dict()[k]) for k in wa)


def test_per_epoch_optimizer_changes_the_run(synthetic, tmp_path):
    train, val = views(synthetic)
    a, _ = fit(cfg("sf"), train, val, None, tmp_path / "a")
    b, _ = fit(cfg("sf", per_epoch_optimizer=True), train, val, None, tmp_path / "b")
    assert not torch.equal(weights(a)["img_head.1.weight"], weights(b)["img_head.1.weight"])


def independent_eval(model, ds):
    """Per ref, unbatched, numpy: argmax of the head's scores, IoU, cosine and distance by the formulas."""
    ious, coss, eds = [], [], []
    model.eval()
    for i in range(len(ds)):
        a, b = int(ds.crops.offsets[i]), int(ds.crops.offsets[i + 1])
        crops = ds.crops.values[a:b]
        s0, s1 = int(ds.sents.offsets[i]), int(ds.sents.offsets[i + 1])
        sents = ds.sents.values[s0:s1]
        with torch.no_grad():
            scores = model(
                crops[None],
                torch.ones(1, b - a, dtype=torch.bool),
                sents[None],
                torch.ones(1, s1 - s0, dtype=torch.bool),
            )[0]
        p = int(np.argmax(scores.numpy()))
        box = ds.boxes.values[a + p].double().numpy()
        gt = ds.gt_box[i].double().numpy()
        iw = max(0.0, min(box[2], gt[2]) - max(box[0], gt[0]))
        ih = max(0.0, min(box[3], gt[3]) - max(box[1], gt[1]))
        union = (box[2] - box[0]) * (box[3] - box[1]) + (gt[2] - gt[0]) * (gt[3] - gt[1]) - iw * ih
        ious.append(iw * ih / union)
        z, g = crops[p].double().numpy(), ds.gt_emb[i].double().numpy()
        coss.append(z @ g / (np.linalg.norm(z) * np.linalg.norm(g)))
        eds.append(np.linalg.norm(z - g))
    ious = np.array(ious)
    return {
        "acc@0.3": np.mean(ious >= 0.3),
        "acc@0.5": np.mean(ious >= 0.5),
        "acc@0.7": np.mean(ious >= 0.7),
        "mIoU": ious.mean(),
        "mCos": np.mean(coss),
        "mED": np.mean(eds),
    }


@pytest.mark.parametrize("model", [ZeroShot(), ClipSf("net1", 16)])
def test_evaluation_recomputed_independently(synthetic, model):
    torch.manual_seed(3)
    _, val = views(synthetic)
    got = evaluate(model, val, batch=7).summary
    want = independent_eval(model, val)
    assert got["n_refs"] == len(val)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-5), k
    assert not math.isnan(got["mIoU"])


def test_bf16_trains_close_to_float32_but_not_identically(synthetic, tmp_path):
    train, val = views(synthetic)
    a, _ = fit(cfg("sf", lr=0.5), train, val, None, tmp_path / "a")
    b, state = fit(cfg("sf", lr=0.5, bf16=True), train, val, None, tmp_path / "b")
    losses = [r["train_loss"] for r in state.log[1:]]
    assert losses[-1] < losses[0]
    wa, wb = weights(a), weights(b)
    assert not all(torch.equal(wa[k], wb[k]) for k in wa)  # the flag reaches the forward
    assert all(torch.allclose(wa[k], wb[k], atol=0.05) for k in wa)
    for v in wb.values():
        assert v.dtype == torch.float32  # master weights stay float32
