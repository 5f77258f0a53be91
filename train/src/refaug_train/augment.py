"""H2's augmented variant (`training-research.md` §4.2d, branch `flyp-with-data-augmentation`): every epoch,
m fresh (crop, sentence) views per ref, so the crops must be embedded live (the `images` source): augmented
views cannot come from precomputed embeddings (§8).

Per ref (the research's collate `augment`, m = SYNONYMS):
* images: `random.sample([crop] + [img_transform(crop) for _ in range(m - 1)], m)`;
* texts: `random.sample(sents + [txt_transform(random.choice(sents)) for _ in range(m - len(sents))], m)`
  (with >= m sentences: m real sentences without replacement);
* the two lists zipped into m pairs; the loss is the mean over the m slices of ClipLoss (B x B each).

`img_transform` is the branch's RandomChoice of eight torchvision transforms (RandomInvert removed in
5c974f4); `txt_transform` is one of the five templates: the branch's last commit d847a92 ("remove txt model
generators") dropped EDA, PEGASUS and BART, which the report's cells still show.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms import (
    ColorJitter,
    GaussianBlur,
    Grayscale,
    RandomAdjustSharpness,
    RandomAutocontrast,
    RandomChoice,
    RandomEqualize,
    RandomPosterize,
    RandomSolarize,
)

from .datasets import Packed, ViewsBatch, limited, split_rows
from .images import ImageFeatures, crop_box
from .shards import Refs, ShardError

# flyp-with-data-augmentation (cells 190-200): on uint8 tensors, Random* ones at their default p=0.5
IMG_TRANSFORM = RandomChoice(
    [
        ColorJitter(brightness=0.5, hue=0.3),
        GaussianBlur(kernel_size=(5, 9), sigma=(0.1, 5.0)),
        RandomPosterize(bits=2),
        RandomSolarize(threshold=192.0),
        RandomAdjustSharpness(sharpness_factor=2),
        RandomAutocontrast(),
        RandomEqualize(),
        Grayscale(num_output_channels=3),
    ]
)
TEMPLATES = ["A photo of {}", "A picture of {}", "An image of {}", "This is {}", "We can see {}"]


def txt_transform(sentence: str) -> str:
    return random.choice(TEMPLATES).format(sentence)


def views(crop: Tensor, sents: Sequence[str], m: int) -> tuple[list[Tensor], list[str]]:
    """The research's `augment` for one ref: m crops and m sentences, each list shuffled."""
    images = random.sample([crop] + [IMG_TRANSFORM(crop) for _ in range(m - 1)], m)
    texts = random.sample(
        list(sents) + [txt_transform(random.choice(sents)) for _ in range(m - len(sents))], m
    )
    return images, texts


class AugmentedContrastive(Packed[ViewsBatch]):
    """Every ref of a split; a batch decodes each ground-truth crop, draws its m views and embeds them."""

    def __init__(self, refs: Refs, source: ImageFeatures, rows: list[int], m: int) -> None:
        if m < 1:
            raise ValueError(f"augment: m = {m}, must be >= 1")
        self.refs, self.source, self.rows, self.m = refs, source, rows, m
        self.ref_id = torch.as_tensor(refs.ref_id[rows], dtype=torch.int64)

    @property
    def dim(self) -> int:
        return self.source.dim

    def _batch(self, idx: Tensor) -> ViewsBatch:
        crops: list[Tensor] = []
        texts: list[str] = []
        for j in idx.tolist():
            r = self.rows[j]
            gt = crop_box(self.source.image(self.refs.file_name[r]), self.refs.gt[r])
            try:
                im, tx = views(gt, self.refs.sentences[r], self.m)
            except RuntimeError as e:  # e.g. GaussianBlur's reflect padding on a crop of a few pixels
                raise ShardError(
                    f"{self.refs.source[r]}: ref {int(self.refs.ref_id[r])}: no augmented view of its "
                    f"{gt.shape[2]}x{gt.shape[1]} ground-truth crop: {e}"
                ) from e
            crops += im
            texts += tx
        d, b = self.source.dim, len(idx)
        img = torch.from_numpy(np.ascontiguousarray(self.source.embed_images(crops))).reshape(b, self.m, d)
        txt = torch.from_numpy(np.ascontiguousarray(self.source.embed_texts(texts))).reshape(b, self.m, d)
        return ViewsBatch(img, txt, idx)


def augmented(
    refs: Refs, source: ImageFeatures, split: str | None, m: int, limit: int = -1
) -> AugmentedContrastive:
    """H2's augmented training view: the first `limit` refs of `split` (all: -1), m views each."""
    return AugmentedContrastive(refs, source, limited(split_rows(refs, split), limit), m)
