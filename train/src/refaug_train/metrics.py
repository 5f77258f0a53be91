"""The research's evaluation metrics (`training-research.md` §6, report cell 52 `compare()`).

Per ref: IoU of the predicted box with the ground truth (torchvision box_iou, continuous), cosine
similarity and Euclidean distance between the frozen image embeddings of the ground-truth crop and the
predicted crop (un-normalised). Per split: acc@t = share of refs with IoU >= t (the report's
"mAP[IoU t]"), and the means; means in float64 over the float32 per-ref values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

THRESHOLDS = (0.3, 0.5, 0.7)


def summarize(
    ious: Sequence[float],
    coss: Sequence[float],
    eds: Sequence[float],
    thresholds: Sequence[float] = THRESHOLDS,
) -> dict[str, float]:
    """acc@t for each t, mIoU, median IoU, mCos, mED and the number of refs."""
    iou = np.asarray(ious, dtype=np.float32).astype(np.float64)
    if iou.size == 0:
        raise ValueError("no refs to evaluate")
    out: dict[str, float] = {"n_refs": float(iou.size)}
    for t in thresholds:
        # float32 IoU against the float threshold, as torch compares a float32 tensor with a Python float
        out[f"acc@{t}"] = float(np.mean(np.asarray(ious, dtype=np.float32) >= np.float32(t)))
    out["mIoU"] = float(np.mean(iou))
    out["median_IoU"] = float(np.median(iou))
    out["mCos"] = float(np.mean(np.asarray(coss, dtype=np.float32).astype(np.float64)))
    out["mED"] = float(np.mean(np.asarray(eds, dtype=np.float32).astype(np.float64)))
    return out
