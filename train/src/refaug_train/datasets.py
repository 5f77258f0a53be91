"""The research's three views as `torch.utils.data.Dataset`s over a variant (`training-research.md` §2).

* `ranking_eval(...)`: every ref of a split; candidates = kept proposals or the whole image (CocoDataset);
  its target (for the validation loss, §4.1) is the first argmax IoU over the candidates, no threshold.
* `ranking_train(...)`: refs with >= 2 kept proposals and best IoU > 0.5, target = first argmax
  (Coco4TrainingDataset), for H1 and H3.
* `contrastive(...)`: every ref; ground-truth crop and its first sentence (Coco4ContrastiveDataset), for H2.

Items are packed: each ref's variable-length rows live in one flat tensor with offsets, and a batch of indices
is gathered and padded at once (`__getitems__`, which DataLoader calls with the whole batch of indices).
`limit` keeps the first N items in file order (§2: not a random subset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .features import FeatureSource
from .filters import (
    BEST_IOU_ABOVE,
    RESEARCH_FILTER,
    ProposalFilter,
    box_iou,
    eval_candidates,
    first_argmax,
    training_target,
)
from .shards import Refs

B = TypeVar("B")


@dataclass
class Ragged:
    """Rows of variable length: ref i owns values[offsets[i]:offsets[i+1]]."""

    values: Tensor
    offsets: Tensor

    @staticmethod
    def of(parts: Sequence[np.ndarray], width: int) -> Ragged:
        lengths = [len(p) for p in parts]
        off = torch.zeros(len(parts) + 1, dtype=torch.int64)
        off[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0)
        vals = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, width), np.float32)
        return Ragged(torch.from_numpy(vals.reshape(-1, width)), off)

    def pad(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """[B, Kmax, W] rows of refs `idx` (zeros where padded) and the mask [B, Kmax] of real rows."""
        start, count = self.offsets[idx], self.offsets[idx + 1] - self.offsets[idx]
        kmax = int(count.max()) if len(idx) else 0
        ar = torch.arange(kmax)
        mask = ar[None, :] < count[:, None]
        pos = torch.where(mask, start[:, None] + ar[None, :], torch.zeros_like(mask, dtype=torch.int64))
        out = self.values[pos]
        if not bool(mask.all()):
            out.masked_fill_(~mask.unsqueeze(-1), 0)
        return out, mask

    def to(self, device: torch.device) -> Ragged:
        return Ragged(self.values.to(device), self.offsets.to(device))


@dataclass
class RankingBatch:
    crops: Tensor  # [B, K, D]
    crop_mask: Tensor  # [B, K]
    sents: Tensor  # [B, S, D]
    sent_mask: Tensor  # [B, S]
    target: Tensor  # [B]
    index: Tensor  # [B] item indices


class Packed(Dataset[B]):
    """Items addressed by index; `__getitems__` (what DataLoader calls with a batch of indices) gathers and
    pads them at once, `__getitem__` is a batch of one."""

    ref_id: Tensor

    def __len__(self) -> int:
        return len(self.ref_id)

    def __getitem__(self, i: int) -> B:
        return self.__getitems__([i])

    def __getitems__(self, indices: Sequence[int]) -> B:
        return self._batch(torch.as_tensor(list(indices), dtype=torch.int64))

    def _batch(self, idx: Tensor) -> B:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """The embedding size D."""
        raise NotImplementedError


class RankingDataset(Packed[RankingBatch]):
    """Candidates, sentences and a target per ref (+ boxes and ground-truth embeddings for evaluation)."""

    def __init__(
        self,
        ref_id: Tensor,
        crops: Ragged,
        sents: Ragged,
        target: Tensor,
        boxes: Ragged,
        gt_box: Tensor,
        gt_emb: Tensor,
        fallback: Tensor,
    ) -> None:
        self.ref_id, self.crops, self.sents, self.target = ref_id, crops, sents, target
        self.boxes, self.gt_box, self.gt_emb, self.fallback = boxes, gt_box, gt_emb, fallback

    @property
    def dim(self) -> int:
        return int(self.crops.values.shape[1])

    def _batch(self, idx: Tensor) -> RankingBatch:
        crops, cmask = self.crops.pad(idx)
        sents, smask = self.sents.pad(idx)
        return RankingBatch(crops, cmask, sents, smask, self.target[idx], idx)


@dataclass
class PairBatch:
    img: Tensor  # [B, D]
    txt: Tensor  # [B, D]
    index: Tensor


@dataclass
class ViewsBatch:
    """m (crop, sentence) views per ref (H2's augmented variant, `augment.AugmentedContrastive`)."""

    img: Tensor  # [B, m, D]
    txt: Tensor  # [B, m, D]
    index: Tensor


class ContrastiveDataset(Packed[PairBatch]):
    """(ground-truth crop, first sentence) embeddings per ref."""

    def __init__(self, ref_id: Tensor, img: Tensor, txt: Tensor) -> None:
        self.ref_id, self.img, self.txt = ref_id, img, txt

    @property
    def dim(self) -> int:
        return int(self.img.shape[1])

    def _batch(self, idx: Tensor) -> PairBatch:
        return PairBatch(self.img[idx], self.txt[idx], idx)


def unbatched(batch: object) -> object:
    """DataLoader collate_fn for datasets whose `__getitems__` already returns the batch."""
    return batch


def split_rows(refs: Refs, split: str | None) -> list[int]:
    return [i for i in range(len(refs)) if split is None or refs.split[i] == split]


def limited(rows: list[int], limit: int) -> list[int]:
    return rows if limit < 0 else rows[:limit]


# per ref: (kept proposal indices, candidate boxes, target, whole-image fallback), or None: not an item
Selection = tuple[list[int], np.ndarray, int, bool] | None


def _ranking_view(
    refs: Refs, source: FeatureSource, split: str | None, limit: int, select: Callable[[int], Selection]
) -> RankingDataset:
    """The first `limit` items (all: -1) among the refs of `split`, in file order."""
    ids, crops, sents, target, boxes, gt_box, gt_emb, fb = [], [], [], [], [], [], [], []
    for i in split_rows(refs, split):
        if 0 <= limit <= len(ids):
            break
        sel = select(i)
        if sel is None:
            continue
        kept, cand_boxes, t, fallback = sel
        f = source.features(refs, i, kept)
        ids.append(int(refs.ref_id[i]))
        crops.append(f.candidates)
        sents.append(f.sentences)
        target.append(t)
        boxes.append(cand_boxes)
        gt_box.append(refs.gt[i])
        gt_emb.append(f.gt)
        fb.append(fallback)
    return _ranking(ids, crops, sents, target, boxes, gt_box, gt_emb, fb, source.dim)


def ranking_eval(
    refs: Refs,
    source: FeatureSource,
    split: str | None,
    limit: int = -1,
    flt: ProposalFilter = RESEARCH_FILTER,
) -> RankingDataset:
    """The evaluation view: every ref, kept proposals or the whole-image fallback."""

    def select(i: int) -> Selection:
        b, s = refs.proposals(i)
        cand = eval_candidates(b, s, int(refs.width[i]), int(refs.height[i]), flt)
        return cand.kept, cand.boxes, first_argmax(box_iou(cand.boxes, refs.gt[i])), cand.fallback

    return _ranking_view(refs, source, split, limit, select)


def ranking_train(
    refs: Refs,
    source: FeatureSource,
    split: str | None,
    limit: int = -1,
    flt: ProposalFilter = RESEARCH_FILTER,
    best_iou_above: float = BEST_IOU_ABOVE,
) -> RankingDataset:
    """The H1/H3 training view: >= 2 kept, best IoU > `best_iou_above` (the research's 0.5), target = first
    argmax; first `limit` items."""

    def select(i: int) -> Selection:
        b, s = refs.proposals(i)
        t = training_target(b, s, refs.gt[i], flt, best_iou_above)
        return None if t is None else (t.kept, b[t.kept], t.target, False)

    return _ranking_view(refs, source, split, limit, select)


def _ranking(
    ids: list[int],
    crops: list[np.ndarray],
    sents: list[np.ndarray],
    target: list[int],
    boxes: list[np.ndarray],
    gt_box: list[np.ndarray],
    gt_emb: list[np.ndarray],
    fallback: list[bool],
    dim: int,
) -> RankingDataset:
    return RankingDataset(
        ref_id=torch.tensor(ids, dtype=torch.int64),
        crops=Ragged.of(crops, dim),
        sents=Ragged.of(sents, dim),
        target=torch.tensor(target, dtype=torch.int64),
        boxes=Ragged.of(boxes, 4),
        gt_box=torch.from_numpy(np.asarray(gt_box, dtype=np.float32).reshape(-1, 4)),
        gt_emb=torch.from_numpy(np.asarray(gt_emb, dtype=np.float32).reshape(-1, dim)),
        fallback=torch.tensor(fallback, dtype=torch.bool),
    )


def contrastive(refs: Refs, source: FeatureSource, split: str | None, limit: int = -1) -> ContrastiveDataset:
    """The H2 view: every ref's ground-truth crop and first sentence (§10.10: sentence 0 in training)."""
    ids, img, txt = [], [], []
    for i in limited(split_rows(refs, split), limit):
        f = source.features(refs, i, [])
        ids.append(int(refs.ref_id[i]))
        img.append(f.gt)
        txt.append(f.sentences[0])
    d = source.dim
    return ContrastiveDataset(
        torch.tensor(ids, dtype=torch.int64),
        torch.from_numpy(np.asarray(img, dtype=np.float32).reshape(-1, d)),
        torch.from_numpy(np.asarray(txt, dtype=np.float32).reshape(-1, d)),
    )
