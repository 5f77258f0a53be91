"""H2's augmented variant (§4.2d): the research's per-ref views, the loss over the m slices, and a seeded,
reproducible fit on the bundled sample's images with the stand-in CLIP encoders (tests/data/models)."""

import random
from pathlib import Path

import pytest
import torch

from refaug_train.augment import TEMPLATES, views
from refaug_train.cli import main
from refaug_train.datasets import ViewsBatch
from refaug_train.heads import ClipFlyp, clip_loss
from refaug_train.train import batch_loss

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).parent / "data" / "sample"
IMAGES = ROOT / "sample" / "refcocog" / "images"
MODELS = ROOT / "tests" / "data" / "models"


def crop():
    return torch.randint(0, 256, (3, 40, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))


def test_views_with_fewer_sentences_than_m_add_templated_ones():
    random.seed(0)
    torch.manual_seed(0)
    c = crop()
    images, texts = views(c, ["the red car"], 2)
    assert len(images) == 2 and sum(torch.equal(im, c) for im in images) >= 1
    assert all(im.dtype == torch.uint8 and im.shape == c.shape for im in images)
    assert "the red car" in texts
    other = next(t for t in texts if t != "the red car")
    assert other in [t.format("the red car") for t in TEMPLATES]


def test_views_with_enough_sentences_sample_real_ones_and_are_seeded():
    sents = ["a", "b", "c"]
    random.seed(1)
    torch.manual_seed(1)
    i1, t1 = views(crop(), sents, 2)
    assert len(set(t1)) == 2 and set(t1) <= set(sents)
    random.seed(1)
    torch.manual_seed(1)
    i2, t2 = views(crop(), sents, 2)
    assert t1 == t2 and all(torch.equal(a, b) for a, b in zip(i1, i2, strict=True))


def test_views_loss_is_the_mean_over_the_m_slices():
    torch.manual_seed(2)
    m = ClipFlyp(p=0.0, dim=4).eval()
    img, txt = torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    got = batch_loss(m, ViewsBatch(img, txt, torch.arange(3)), torch.device("cpu"))
    want = sum(clip_loss(*m.embed_pairs(img[:, j], txt[:, j])) for j in range(2)) / 2
    torch.testing.assert_close(got, want)


def fit_argv(out, *extra):
    return [
        "fit",
        "--variant",
        str(SAMPLE / "yolo"),
        "--head",
        "flyp",
        "--out",
        str(out),
        "--quiet",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--train-limit",
        "8",
        "--normalize",
        *extra,
    ]


IMAGE_SOURCE = [
    "--images",
    str(IMAGES),
    "--image-model",
    str(MODELS / "clip_image.onnx"),
    "--text-model",
    str(MODELS / "clip_text.onnx"),
]


def test_augmented_fit_on_the_sample_is_reproducible(tmp_path):
    for run in ("a", "b"):
        assert main(fit_argv(tmp_path / run, "--augment", "2", *IMAGE_SOURCE)) == 0
    a = torch.load(tmp_path / "a" / "epoch-02.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "epoch-02.pt", weights_only=False)
    assert a["config"]["augment"] == 2
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in a["log"][1:])


@pytest.mark.parametrize(
    ("head", "source", "message"),
    [("flyp", [], "need the images source"), ("sf", IMAGE_SOURCE, "only the FLYP head")],
)
def test_augment_needs_images_and_flyp(tmp_path, capsys, head, source, message):
    argv = fit_argv(tmp_path / "r", "--augment", "2", *source)
    argv[argv.index("flyp")] = head
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_crop_too_small_for_the_blur_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import refaug_train.augment as A

    monkeypatch.setattr(A, "IMG_TRANSFORM", A.IMG_TRANSFORM.transforms[1])  # always GaussianBlur((5, 9))
    monkeypatch.setattr(A, "crop_box", lambda img, box: img[:, :3, :2])  # a 2x3 crop
    assert main(fit_argv(tmp_path / "r", "--augment", "2", *IMAGE_SOURCE)) == 2
    err = capsys.readouterr().err
    assert "train-00000-of-00001.parquet: ref " in err and "no augmented view of its 2x3" in err
