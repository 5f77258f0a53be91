"""tools/export_clip.py on a checkpoint in CLIP's own format: a scaled-down CLIP (the RN50 code with
width 8 and one block a stage, a one-layer text transformer) built by `clip.model.CLIP`, saved both as a
plain state dict and as a TorchScript archive (what OpenAI's RN50.pt is); the ONNX files it writes must
compute what the torch model computes, and the printed sha256s must be the files'."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from refaug_train.images import ClipTokenizer, clip_submodule

TOOL = Path(__file__).resolve().parents[2] / "tools" / "export_clip.py"


def tiny_clip() -> torch.nn.Module:
    torch.manual_seed(0)
    m = clip_submodule("model").CLIP(
        embed_dim=32,
        image_resolution=224,
        vision_layers=(1, 1, 1, 1),
        vision_width=8,
        vision_patch_size=None,
        context_length=77,
        vocab_size=49408,
        transformer_width=64,
        transformer_heads=1,
        transformer_layers=1,
    )
    return m.float().eval().requires_grad_(False)


def export(checkpoint: Path, out: Path) -> dict[str, str]:
    r = subprocess.run(
        [sys.executable, str(TOOL), "--checkpoint", str(checkpoint), "--out", str(out), "--name", "tiny"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return dict(line.replace('"', "").split(" = ") for line in r.stdout.strip().splitlines())


@pytest.mark.parametrize("form", ["state_dict", "torchscript"])
def test_export_computes_the_checkpoint_model(tmp_path: Path, form: str) -> None:
    model = tiny_clip()
    ckpt = tmp_path / "tiny.pt"
    if form == "state_dict":
        torch.save(model.state_dict(), ckpt)
    else:
        example = (torch.zeros(1, 3, 224, 224), torch.from_numpy(ClipTokenizer()(["a"])))
        torch.jit.save(torch.jit.trace(model, example), ckpt)  # a traced archive, as OpenAI's RN50.pt
    shas = export(ckpt, tmp_path / "onnx")
    image, text = tmp_path / "onnx" / "tiny_image.onnx", tmp_path / "onnx" / "tiny_text.onnx"
    assert shas["image_model_sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert shas["text_model_sha256"] == hashlib.sha256(text.read_bytes()).hexdigest()

    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(3, 3, 224, 224, generator=g)  # batch 3: the batch axis is dynamic
    tokens = torch.from_numpy(ClipTokenizer()(["the man on the left", "a red car", "dog"]))
    with torch.no_grad():
        want_i = model.encode_image(pixels).numpy()
        want_t = model.encode_text(tokens).numpy()
    si = ort.InferenceSession(str(image), providers=["CPUExecutionProvider"])
    st = ort.InferenceSession(str(text), providers=["CPUExecutionProvider"])
    assert [i.name for i in si.get_inputs()] == ["image"]
    assert [o.name for o in si.get_outputs()] == ["embedding"]
    assert [i.name for i in st.get_inputs()] == ["tokens"]
    got_i = si.run(None, {"image": pixels.numpy()})[0]
    got_t = st.run(None, {"tokens": tokens.numpy()})[0]
    assert got_i.shape == (3, 32) and got_t.shape == (3, 32)
    # Float32 summation order differs between torch and ONNX Runtime (measured: 4e-4 of the largest
    # value); a wrong weight, layer or input layout moves values by their own size.
    np.testing.assert_allclose(got_i, want_i, rtol=0, atol=2e-3 * float(np.abs(want_i).max()))
    np.testing.assert_allclose(got_t, want_t, rtol=0, atol=2e-3 * float(np.abs(want_t).max()))
