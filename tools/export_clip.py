#!/usr/bin/env python3
"""Export OpenAI CLIP's RN50 from a local checkpoint into the two ONNX files `encoders/clip-rn50.toml` names.

    python tools/export_clip.py --checkpoint ~/.cache/clip/RN50.pt --out models

Runs in the project's `.venv` (torch, the OpenAI `clip` package as clip-anytorch 2.6.0 and `refaug_train`,
all installed by `scripts/setup.sh`); nothing is downloaded. The checkpoint is read as `clip.load(path,
jit=False)` reads it (openai/CLIP clip.py: the TorchScript archive's state dict, or a plain state dict,
through `clip.model.build_model`, float32 on the CPU) — e.g. the RN50.pt that `clip.load("RN50")` caches
(sha256 afeb0e10…). clip's modules are loaded on their own, since the package's `__init__` imports
`pkg_resources`, which current setuptools no longer has. It writes `<out>/clip_rn50_openai_image.onnx` (`image` float32
[batch,3,224,224] -> `embedding` float32 [batch,1024], `model.encode_image`) and
`<out>/clip_rn50_openai_text.onnx` (`tokens` int64 [batch,77] -> `embedding`, `model.encode_text`), fp32,
exported as `../shared/models/README.md` describes for the reference encoders (TorchScript exporter, opset 17,
constant folding, dynamic batch), then prints both sha256s to pin in the spec.
"""

from __future__ import annotations

import argparse
import hashlib
import os

import torch
from refaug_train.images import ClipTokenizer, clip_submodule


class Tower(torch.nn.Module):
    def __init__(self, fn):  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.fn(x)


def export(
    module: torch.nn.Module, example: torch.Tensor, path: str, input_name: str
) -> str:
    torch.onnx.export(
        module,
        (example,),
        path,
        dynamo=False,
        opset_version=17,
        do_constant_folding=True,
        input_names=[input_name],
        output_names=["embedding"],
        dynamic_axes={input_name: {0: "batch"}, "embedding": {0: "batch"}},
    )
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_clip(checkpoint: str) -> torch.nn.Module:
    """`clip.load(checkpoint, device="cpu", jit=False)`'s model: the state dict of the TorchScript
    archive (or of a plain `torch.save`d state dict) rebuilt by `clip.model.build_model`, in float32."""
    with open(checkpoint, "rb") as f:
        try:
            state_dict = torch.jit.load(f, map_location="cpu").eval().state_dict()
        except RuntimeError:
            f.seek(0)
            state_dict = torch.load(f, map_location="cpu")
    return clip_submodule("model").build_model(state_dict).float()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--checkpoint", required=True, help="a local RN50.pt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="clip_rn50_openai")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model = load_clip(a.checkpoint)
    # Frozen: the towers' weights become graph constants, which the TorchScript exporter refuses
    # for tensors that require grad.
    model = model.float().eval().requires_grad_(False)
    with torch.no_grad():
        image = os.path.join(a.out, f"{a.name}_image.onnx")
        text = os.path.join(a.out, f"{a.name}_text.onnx")
        sha_i = export(
            Tower(model.encode_image), torch.zeros(1, 3, 224, 224), image, "image"
        )
        sha_t = export(
            Tower(model.encode_text),
            torch.from_numpy(ClipTokenizer()(["a photo of a cat"])),
            text,
            "tokens",
        )
    print(f'image_model_sha256 = "{sha_i}"\ntext_model_sha256 = "{sha_t}"')


if __name__ == "__main__":
    main()
