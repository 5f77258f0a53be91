"""The `images` feature source: decode, crop and run the frozen CLIP encoders live, the research's way
(`training-research.md` §3), on ONNX exports of the encoders (onnxruntime).

* decode: `torchvision.io.read_image(path, ImageReadMode.RGB)` (uint8 3xHxW);
* crop: `box_convert(xyxy, "xyxy", "xywh").round().int()` (float32, round half to even, x, y, w, h each) then
  `torchvision.transforms.functional.crop` (zero-fills outside the image);
* model input: ConvertImageDtype(float), Resize(224, BICUBIC, antialias=True), CenterCrop(224),
  Normalize(CLIP mean, std), the research's tensor re-implementation of openai/CLIP `_transform`;
* text: `clip.tokenize(sentences)` (context 77, no truncation: an over-long sentence is an error), one
  sentence per call as the reference did;
* encoders: input `image` float32 [B,3,224,224] / `tokens` int64 [B,77] -> `embedding` float32 [B,D].
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torchvision.io import ImageReadMode, read_image
from torchvision.ops import box_convert
from torchvision.transforms import (
    CenterCrop,
    Compose,
    ConvertImageDtype,
    InterpolationMode,
    Normalize,
    Resize,
)
from torchvision.transforms.functional import crop

from .features import RefFeatures
from .filters import F32
from .shards import Refs, ShardError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CONTEXT = 77

# report cell 66, transform(224)
PREPROCESS = Compose(
    [
        ConvertImageDtype(torch.float),
        Resize(224, interpolation=InterpolationMode.BICUBIC, antialias=True),
        CenterCrop(224),
        Normalize(CLIP_MEAN, CLIP_STD),
    ]
)


def crop_box(img: torch.Tensor, box: F32) -> torch.Tensor:
    """The research's crop of an xyxy float box (cells 36, 37, 50, 113)."""
    xyxy = torch.as_tensor(np.asarray(box, dtype=np.float32).reshape(4))
    x, y, w, h = (int(v) for v in box_convert(xyxy, "xyxy", "xywh").round().int())
    return crop(img, top=y, left=x, height=h, width=w)


def clip_submodule(name: str) -> Any:
    """A module of the installed openai/CLIP package (clip-anytorch 2.6.0: `simple_tokenizer`, `model`),
    loaded on its own: the package's __init__ imports pkg_resources, which current setuptools no longer
    has."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the clip package (clip-anytorch) is not installed")
    path = Path(spec.submodule_search_locations[0]) / f"{name}.py"
    st = importlib.util.spec_from_file_location(f"refaug_clip_{name}", path)
    assert st is not None and st.loader is not None
    mod = importlib.util.module_from_spec(st)
    st.loader.exec_module(mod)
    return mod


class ClipTokenizer:
    """`clip.tokenize(texts, context_length=77, truncate=False)` (openai/CLIP clip.py)."""

    def __init__(self) -> None:
        self._tok = clip_submodule("simple_tokenizer").SimpleTokenizer()
        self.sot, self.eot = self._tok.encoder["<|startoftext|>"], self._tok.encoder["<|endoftext|>"]

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), CONTEXT), dtype=np.int64)
        for i, t in enumerate(texts):
            ids = [self.sot, *self._tok.encode(t), self.eot]
            if len(ids) > CONTEXT:
                raise ValueError(f"input {t!r} is too long for context length {CONTEXT}")
            out[i, : len(ids)] = ids
        return out


def _session(path: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class ImageFeatures:
    """`FeatureSource` that decodes `images_dir/<file_name>`, crops and runs the CLIP encoders."""

    def __init__(self, images_dir: Path, image_model: Path, text_model: Path, threads: int = 0) -> None:
        self.images_dir = Path(images_dir)
        self.image_enc = _session(image_model, threads)
        self.text_enc = _session(text_model, threads)
        self.tokenize = ClipTokenizer()
        self._dim = int(self.image_enc.get_outputs()[0].shape[-1])
        self._cache: tuple[str, torch.Tensor] | None = None

    @property
    def dim(self) -> int:
        return self._dim

    def image(self, file_name: str) -> torch.Tensor:
        """The decoded image (uint8 3xHxW); the last one is kept (a variant's refs come image by image)."""
        if self._cache is None or self._cache[0] != file_name:
            path = self.images_dir / file_name
            try:
                self._cache = (file_name, read_image(str(path), ImageReadMode.RGB))
            except (RuntimeError, OSError) as e:
                raise ShardError(f"{path}: cannot decode: {e}") from e
        return self._cache[1]

    def embed_images(self, crops: list[torch.Tensor]) -> F32:
        """One encoder call per crop (batch 1, as the reference)."""
        run: Callable[..., Any] = self.image_enc.run
        return np.concatenate([run(None, {"image": PREPROCESS(c).unsqueeze(0).numpy()})[0] for c in crops])

    def embed_texts(self, texts: list[str]) -> F32:
        tokens = self.tokenize(texts)
        return np.concatenate(
            [self.text_enc.run(None, {"tokens": tokens[i : i + 1]})[0] for i in range(len(texts))]
        )

    def features(self, refs: Refs, i: int, kept: list[int]) -> RefFeatures:
        img = self.image(refs.file_name[i])
        boxes, _ = refs.proposals(i)
        h, w = int(img.shape[1]), int(img.shape[2])
        cand = [boxes[k] for k in kept] if kept else [np.array([0, 0, w, h], np.float32)]
        embs = self.embed_images([crop_box(img, b) for b in [refs.gt[i], *cand]])
        return RefFeatures(gt=embs[0], candidates=embs[1:], sentences=self.embed_texts(refs.sentences[i]))
