#!/usr/bin/env python3
"""Export OpenAI CLIP's RN50 from a local checkpoint into the two ONNX files `encoders/clip-rn50.toml` names.

    python tools/export_clip.py --checkpoint ~/.cache/clip/RN50.pt --out models

Needs torch and the OpenAI `clip` package (`pip install --no-deps clip-anytorch==2.6.0 ftfy regex`);
nothing is downloaded: `clip.load(path)` reads the checkpoint file (sha256 afeb0e10…, the file
`clip.load("RN50")` caches). It writes `<out>/clip_rn50_openai_image.onnx` (`image` float32
[batch,3,224,224] -> `embedding` float32 [batch,1024], `model.encode_image`) and
`<out>/clip_rn50_openai_text.onnx` (`tokens` int64 [batch,77] -> `embedding`, `model.encode_text`), fp32,
exported as `../shared/models/README.md` describes for the reference encoders (TorchScript exporter, opset 17,
constant folding, dynamic batch), then prints both sha256s to pin in the spec.
"""

from __future__ import annotations

import argparse
import hashlib
import os

import clip  # type: ignore[import-not-found]
import torch


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


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--checkpoint", required=True, help="a local RN50.pt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="clip_rn50_openai")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model, _ = clip.load(a.checkpoint, device="cpu", jit=False)  # fp32 on the CPU
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
            clip.tokenize(["a photo of a cat"]),
            text,
            "tokens",
        )
    print(f'image_model_sha256 = "{sha_i}"\ntext_model_sha256 = "{sha_t}"')


if __name__ == "__main__":
    main()
