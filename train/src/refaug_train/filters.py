"""The research's proposal filters and training targets (`training-research.md` §2, §10.2, §10.3, §10.11).

* evaluation (CocoDataset): every ref; proposals with confidence > 0.25 and w > 16 and h > 16 (strict), in
  stored order; none left -> the whole image [0, 0, W, H] is the only candidate (the ref is still counted);
* training for H1/H3 (Coco4TrainingDataset): same filter, at least 2 kept, best IoU > 0.5 (strict), target =
  the first argmax of the IoU over the kept list (`torch.argmax` returns the first maximum);
* contrastive for H2 (Coco4ContrastiveDataset): every ref, ground-truth crop and its sentences, no filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

CONFIDENCE_ABOVE = 0.25
SIZE_ABOVE = 16.0
MIN_KEPT = 2
BEST_IOU_ABOVE = 0.5


@dataclass(frozen=True)
class ProposalFilter:
    """Keep a proposal iff score, width and height are all strictly above these."""

    score_above: float = CONFIDENCE_ABOVE
    width_above: float = SIZE_ABOVE
    height_above: float = SIZE_ABOVE

    def kept(self, boxes: F32, scores: F32) -> list[int]:
        """Indices of the kept proposals, in stored order. Width and height are the differences of the
        float32 corners taken in float64, as the research's Python floats subtract them."""
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).astype(np.float64)
        s = np.asarray(scores, dtype=np.float32).astype(np.float64)
        keep = (s > self.score_above) & (b[:, 2] - b[:, 0] > self.width_above)
        keep &= b[:, 3] - b[:, 1] > self.height_above
        return [int(i) for i in np.flatnonzero(keep)]


RESEARCH_FILTER = ProposalFilter()


def box_iou(boxes: F32, gt: F32) -> F32:
    """IoU of each xyxy box with the ground truth ([4], or [N, 4] paired row by row), float32, continuous (no
    +1): torchvision.ops.box_iou (torchvision 0.15-0.24 `_box_inter_union`), same float32 operations."""
    a = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    g = np.asarray(gt, dtype=np.float32).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    lt = np.maximum(a[:, :2], g[:, :2])
    rb = np.minimum(a[:, 2:], g[:, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = area_a + area_g - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return (inter / union).astype(np.float32)


@dataclass(frozen=True)
class EvalCandidates:
    """What a ranking head chooses from: the kept proposals, or the whole image when none is kept."""

    kept: list[int]  # indices into the row's proposals; empty when `fallback`
    boxes: F32  # [K, 4] xyxy: the kept proposals' boxes, or [[0, 0, W, H]]
    fallback: bool


def eval_candidates(
    boxes: F32, scores: F32, image_width: int, image_height: int, flt: ProposalFilter = RESEARCH_FILTER
) -> EvalCandidates:
    """The evaluation view of one ref (§2 CocoDataset with §10.2's filter and §10.3's fallback)."""
    kept = flt.kept(boxes, scores)
    if not kept:
        whole = np.array([[0.0, 0.0, float(image_width), float(image_height)]], dtype=np.float32)
        return EvalCandidates(kept=[], boxes=whole, fallback=True)
    return EvalCandidates(
        kept=kept, boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[kept], fallback=False
    )


def first_argmax(values: Sequence[float] | F32) -> int:
    """Index of the first maximum (`torch.argmax`'s tie rule)."""
    return int(np.argmax(np.asarray(values)))


@dataclass(frozen=True)
class TrainTarget:
    kept: list[int]  # indices into the row's proposals, stored order
    target: int  # index into `kept`


def training_target(
    boxes: F32,
    scores: F32,
    gt: F32,
    flt: ProposalFilter = RESEARCH_FILTER,
    best_iou_above: float = BEST_IOU_ABOVE,
) -> TrainTarget | None:
    """The training view of one ref for H1/H3 (§2 Coco4TrainingDataset): None unless at least 2 proposals
    are kept and the best IoU over them is > `best_iou_above` (the research's 0.5); the target is the first
    argmax over the kept list."""
    kept = flt.kept(boxes, scores)
    if len(kept) < MIN_KEPT:
        return None
    ious = box_iou(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[kept], gt)
    if not float(np.max(ious)) > best_iou_above:
        return None
    return TrainTarget(kept=kept, target=first_argmax(ious))
