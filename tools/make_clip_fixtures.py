#!/usr/bin/env python3
"""Tiny CLIP fixture encoders and the expected values of refaug's CLIP tests.

Run from the repository root:

    .venv/bin/python tools/make_clip_fixtures.py

Needs, besides the project environment, OpenAI's tokenizer: `pip install --no-deps
clip-anytorch==2.6.0 ftfy==6.3.1 wcwidth==0.2.13 regex` (no torch: `clip/simple_tokenizer.py` is
loaded on its own, without `clip/__init__.py`, which imports torch).

Writes:
* `tests/data/models/clip_image.onnx`: `image` float32 [batch,3,224,224] -> `embedding` float32
  [batch,16] (float64 inside: mean over 56x56 cells -> MatMul -> Add);
* `tests/data/models/clip_text.onnx`: `tokens` int64 [batch,77] -> `embedding` float32 [batch,16]
  (float64 inside: tokens / 49408 -> MatMul);
* `tests/data/clip/expected.json`: the weights (for the numpy maths), `clip.tokenize` tokens of
  every sentence of the bundled sample plus hand-picked strings (curly quotes, a ligature, HTML
  entities, full-width letters, an over-long sentence), and crops of sample images the reference
  never exercises (outside the image, an exact .5 after the xywh conversion, two boxes rounding to
  one crop, a tiny upscaled box, the whole image) with the rounded box, the uint8 crop's sha256,
  the model input's sha256 (`tools/clip_numpy.py`, bit-exact to torch) and the fixture embedding.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_numpy as cn

MODELS = os.path.join("tests", "data", "models")
OUT = os.path.join("tests", "data", "clip")
SAMPLE = os.path.join("sample", "refcocog")
OPSET = 17
D = cn.FIXTURE_DIM


def clip_tokenizer():  # type: ignore[no-untyped-def]
    """openai/CLIP's SimpleTokenizer, loaded from the installed clip package without torch."""
    spec = importlib.util.find_spec("clip")
    assert spec is not None and spec.submodule_search_locations, (
        "install clip-anytorch==2.6.0"
    )
    path = os.path.join(spec.submodule_search_locations[0], "simple_tokenizer.py")
    st_spec = importlib.util.spec_from_file_location("clip_simple_tokenizer", path)
    assert st_spec is not None and st_spec.loader is not None
    mod = importlib.util.module_from_spec(st_spec)
    st_spec.loader.exec_module(mod)
    return mod.SimpleTokenizer()


def clip_tokenize(tok, text: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """clip.tokenize(text)[0] without torch, as a dict: tokens before padding, or the error."""
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
    ids = [sot] + tok.encode(text) + [eot]
    if len(ids) > 77:
        cut = ids[:77]
        cut[-1] = eot
        return {"n_tokens": len(ids), "too_long": True, "truncated": cut}
    return {"n_tokens": len(ids), "too_long": False, "tokens": ids}


def image_model(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    """Float64 inside (so that onnxruntime's summation order cannot matter at float32 precision)."""
    cells = [-1, 3, 4, cn.POOL, 4, cn.POOL]
    nodes = [
        helper.make_node("Cast", ["image"], ["xd"], to=TensorProto.DOUBLE),
        helper.make_node("Reshape", ["xd", "cells"], ["xr"]),
        helper.make_node("ReduceMean", ["xr", "axes"], ["pooled"], keepdims=0),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["proj"]),
        helper.make_node("Add", ["proj", "b"], ["ed"]),
        helper.make_node("Cast", ["ed"], ["embedding"], to=TensorProto.FLOAT),
    ]
    inits = [
        numpy_helper.from_array(np.array(cells, dtype=np.int64), "cells"),
        numpy_helper.from_array(np.array([3, 5], dtype=np.int64), "axes"),
        numpy_helper.from_array(np.array([-1, 48], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(b, "b"),
    ]
    graph = helper.make_graph(
        nodes,
        "refaug_clip_image_fixture",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, ["batch", 3, 224, 224]
            )
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", D])],
        inits,
    )
    # ReduceMean takes its axes as an input from opset 18.
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8
    )


def text_model(w: np.ndarray) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Cast", ["tokens"], ["td"], to=TensorProto.DOUBLE),
        helper.make_node("Mul", ["td", "scale"], ["ts"]),
        helper.make_node("MatMul", ["ts", "w"], ["ed"]),
        helper.make_node("Cast", ["ed"], ["embedding"], to=TensorProto.FLOAT),
    ]
    inits = [
        numpy_helper.from_array(np.array(1.0 / 49408.0, dtype=np.float64), "scale"),
        numpy_helper.from_array(w, "w"),
    ]
    graph = helper.make_graph(
        nodes,
        "refaug_clip_text_fixture",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", 77])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", D])],
        inits,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8
    )


def save(model: onnx.ModelProto, name: str) -> str:
    onnx.checker.check_model(model)
    path = os.path.join(MODELS, name)
    onnx.save(model, path)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def decode_chw(file_name: str) -> np.ndarray:
    img = np.asarray(
        Image.open(os.path.join(SAMPLE, "images", file_name)).convert("RGB")
    )
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(8)
    w_img = rng.normal(0, 0.5, (48, D))
    b_img = rng.normal(0, 0.1, D)
    w_txt = rng.normal(0, 1.0, (77, D))
    sha_img = save(image_model(w_img, b_img), "clip_image.onnx")
    sha_txt = save(text_model(w_txt), "clip_text.onnx")

    tok = clip_tokenizer()
    with open(os.path.join(SAMPLE, "annotations", "refs(umd).p"), "rb") as f:
        refs = pickle.load(f, encoding="latin1")
    sentences = []
    for r in refs:
        for s in r["sentences"]:
            t = clip_tokenize(tok, s["sent"])
            sentences.append(
                {"ref_id": r["ref_id"], "sent_id": s["sent_id"], "sent": s["sent"], **t}
            )
    extra_texts = [
        "the man\u2019s \u201cred\u201d hat",
        "a \ufb01sh on the left",
        "salt &amp; pepper &lt;3 &#233;t&eacute;",
        "\uff21\uff22\uff23 large letters",
        "Caf\u00e9  na\u00efve   UPPER case\tand\nlines",
        "isn't it 2024's best? 10% off!!!",
        " ".join(["dog"] * 80),
    ]
    extra = [{"text": t, **clip_tokenize(tok, t)} for t in extra_texts]

    with open(os.path.join(SAMPLE, "annotations", "instances.json")) as f:
        images = json.load(f)["images"]
    first = images[0]
    fn, W, H = first["file_name"], first["width"], first["height"]
    img = decode_chw(fn)
    boxes = [
        ("whole image", (0.0, 0.0, float(W), float(H))),
        ("reaches outside left and top", (-20.25, -7.5, 60.0, 90.0)),
        ("reaches outside right and bottom", (W - 30.0, H - 25.0, W + 41.0, H + 12.0)),
        ("exact .5 after xywh (x 2.5, w 40.5, y 7.5, h 20.5)", (2.5, 7.5, 43.0, 28.0)),
        ("rounds like the next one", (100.4, 50.2, 180.3, 130.1)),
        ("rounds like the previous one", (99.6, 49.8, 179.9, 129.9)),
        ("tiny box, upscaled", (10.0, 10.0, 27.0, 30.0)),
        ("tall thin box", (300.0, 0.0, 318.0, float(H))),
    ]
    crops = []
    inputs = []
    for what, xyxy in boxes:
        x, y, w, h = cn.crop_box(xyxy)
        c = cn.crop(img, x, y, w, h)
        t = cn.transform(c)
        emb = cn.fixture_image_embedding(t, w_img, b_img)
        inputs.append((t, emb))
        crops.append(
            {
                "what": what,
                "file_name": fn,
                "box_xyxy": list(xyxy),
                "crop_xywh": [x, y, w, h],
                "crop_sha256": hashlib.sha256(c.tobytes()).hexdigest(),
                "input_sha256": hashlib.sha256(t.tobytes()).hexdigest(),
                "embedding": [float(v) for v in emb],
            }
        )
    for s in sentences:
        if not s["too_long"]:
            s["embedding"] = [
                float(v)
                for v in cn.fixture_text_embedding(
                    s["tokens"] + [0] * (77 - len(s["tokens"])), w_txt
                )
            ]
    # Cross-check only: onnxruntime computes what the numpy maths says.
    import onnxruntime as ort

    sess = ort.InferenceSession(
        os.path.join(MODELS, "clip_image.onnx"), providers=["CPUExecutionProvider"]
    )
    got = sess.run(None, {"image": np.stack([t for t, _ in inputs])})[0]
    assert np.allclose(got, np.stack([e for _, e in inputs]), rtol=1e-6, atol=1e-6)
    out = {
        "generator": "tools/make_clip_fixtures.py",
        "image_model_sha256": sha_img,
        "text_model_sha256": sha_txt,
        "dim": D,
        "w_image": w_img.tolist(),
        "b_image": b_img.tolist(),
        "w_text": w_txt.tolist(),
        "sentences": sentences,
        "extra_texts": extra,
        "crops": crops,
    }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(
        f"image {sha_img}\ntext  {sha_txt}\n{len(sentences)} sentences, {len(crops)} crops"
    )


if __name__ == "__main__":
    main()
