"""The `images` source: the research's crop geometry, CLIP tokenisation, and agreement with the `embeddings`
source on hand-computable images (constant-colour regions: every crop inside one region is constant, so its
model input and embedding follow by hand)."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from refaug_train import datasets as D
from refaug_train.cli import main
from refaug_train.features import EmbeddingShards, write_embedding_shard
from refaug_train.images import CLIP_MEAN, CLIP_STD, ClipTokenizer, ImageFeatures, crop_box
from refaug_train.shards import read_refs
from refaug_train.synthetic import proposal_row, write_proposal_shard

DIM = 4
W_IMG = np.arange(12, dtype=np.float32).reshape(3, DIM) / 10 - 0.5
W_TXT = np.linspace(-1, 1, 77 * DIM, dtype=np.float32).reshape(77, DIM)


def test_crop_rounds_half_to_even_and_zero_fills_outside():
    img = torch.arange(1, 1 + 3 * 4 * 6, dtype=torch.uint8).reshape(3, 4, 6)
    # x 0.5 -> 0, w 2.5 -> 2 (half to even, each independently); y 1.5 -> 2, h 1.0
    c = crop_box(img, np.array([0.5, 1.5, 3.0, 2.5], np.float32))
    assert torch.equal(c, img[:, 2:3, 0:2])
    # reaching 2 px past the right edge: zeros there
    c = crop_box(img, np.array([4, 0, 8, 2], np.float32))
    assert c.shape == (3, 2, 4)
    assert torch.equal(c[:, :, :2], img[:, 0:2, 4:6]) and int(c[:, :, 2:].abs().sum()) == 0


def test_tokenizer_wraps_and_refuses_long_input():
    tok = ClipTokenizer()
    t = tok(["a"])
    assert t.shape == (1, 77) and t.dtype == np.int64
    assert t[0, 0] == 49406 and t[0, 2] == 49407 and not t[0, 3:].any()
    with pytest.raises(ValueError, match="too long"):
        tok(["a " * 80])


def save_model(path, inputs, nodes, inits):
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])
    g = helper.make_graph(nodes, "g", inputs, [out], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def encoders(tmp_path):
    img_in = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 224, 224])
    save_model(
        tmp_path / "image.onnx",
        [img_in],
        [
            helper.make_node("ReduceMean", ["image"], ["m"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["embedding"]),
        ],
        [numpy_helper.from_array(W_IMG, "w")],
    )
    tok_in = helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", 77])
    save_model(
        tmp_path / "text.onnx",
        [tok_in],
        [
            helper.make_node("Cast", ["tokens"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Div", ["f", "n"], ["g"]),
            helper.make_node("MatMul", ["g", "w"], ["embedding"]),
        ],
        [numpy_helper.from_array(W_TXT, "w"), numpy_helper.from_array(np.array(49408, np.float32), "n")],
    )
    return tmp_path / "image.onnx", tmp_path / "text.onnx"


def by_hand_image(rgb):
    """Embedding of a constant-colour crop: (rgb/255 - mean)/std, then the encoder's matmul."""
    x = (np.array(rgb, np.float64) / 255 - np.array(CLIP_MEAN)) / np.array(CLIP_STD)
    return (x @ W_IMG.astype(np.float64)).astype(np.float32)


def by_hand_text(tok, sent):
    return (tok([sent])[0].astype(np.float64) / 49408 @ W_TXT.astype(np.float64)).astype(np.float32)


def test_images_and_embeddings_sources_agree(tmp_path):
    # image 1: left half red, right half blue (200 x 100); image 2: one grey (60 x 40)
    a = np.zeros((100, 200, 3), np.uint8)
    a[:, :100] = (200, 30, 10)
    a[:, 100:] = (10, 40, 250)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(tmp_path / "b.png")
    red, blue, grey = (200, 30, 10), (10, 40, 250), (128, 128, 128)
    rows = [
        # gt in the red half; proposals: red 30x40 (kept), blue 50x50 (kept), tiny (dropped)
        proposal_row(
            1,
            "train",
            [10, 10, 90, 90],
            [([20, 20, 50, 60], 0.9), ([120.4, 10, 170.6, 60], 0.8), ([0, 0, 10, 10], 0.9)],
            ["a red thing", "left"],
            size=(200, 100),
        ),
        # nothing kept: the whole (grey) image
        proposal_row(2, "train", [5, 5, 30, 30], [([0, 0, 10, 10], 0.9)], ["grey"], size=(60, 40)),
    ]
    rows[0]["file_name"], rows[1]["file_name"] = "a.png", "b.png"
    write_proposal_shard(tmp_path / "train-00000-of-00001.parquet", rows)
    refs = read_refs(tmp_path)
    img_model, txt_model = encoders(tmp_path)
    live = ImageFeatures(tmp_path, img_model, txt_model, threads=1)
    tok = live.tokenize
    emb = tmp_path / "emb"
    emb.mkdir()
    write_embedding_shard(
        emb / "e.parquet",
        [
            {
                "ref_id": 1,
                "gt_embedding": by_hand_image(red).tolist(),
                "image_embedding": np.zeros(DIM).tolist(),
                "proposal_index": [0, 1],
                "proposal_embeddings": [by_hand_image(red).tolist(), by_hand_image(blue).tolist()],
                "sentence_embeddings": [by_hand_text(tok, s).tolist() for s in ("a red thing", "left")],
            },
            {
                "ref_id": 2,
                "gt_embedding": by_hand_image(grey).tolist(),
                "image_embedding": by_hand_image(grey).tolist(),
                "proposal_index": [],
                "proposal_embeddings": [],
                "sentence_embeddings": [by_hand_text(tok, "grey").tolist()],
            },
        ],
    )
    stored = EmbeddingShards(emb)
    for view in (D.ranking_eval, D.contrastive):
        x, y = view(refs, live, "train"), view(refs, stored, "train")
        for name in ("crops", "sents") if view is D.ranking_eval else ("img", "txt"):
            gx, gy = getattr(x, name), getattr(y, name)
            vx, vy = (gx.values, gy.values) if name in ("crops", "sents") else (gx, gy)
            # the fixture encoder averages 224x224 float32 values: ~1e-4 of float32 summation noise
            torch.testing.assert_close(vx, vy, rtol=1e-4, atol=1e-4)
    tr = D.ranking_train(refs, live, "train")
    assert len(tr) == 0  # best IoU of the kept proposals with the ground truth is below 0.5
    # the CLI's evaluate on both sources gives the same metrics
    common = ["evaluate", "--variant", str(tmp_path), "--head", "zero-shot", "--splits", "train"]
    assert main([*common, "--embeddings", str(emb), "--out", str(tmp_path / "e")]) == 0
    live_args = ["--images", str(tmp_path), "--image-model", str(img_model), "--text-model", str(txt_model)]
    assert main([*common, *live_args, "--out", str(tmp_path / "i")]) == 0
    (e,) = json.loads((tmp_path / "e" / "metrics.json").read_text())
    (i,) = json.loads((tmp_path / "i" / "metrics.json").read_text())
    assert e.keys() == i.keys() and all(e[k] == pytest.approx(i[k], abs=1e-5) for k in e)
