"""The zero-shot check: the evaluation of this package on the reference's own CLIP embeddings must equal the
reference's zero-shot baseline (`<reference>/<dataset>-clip/zero_shot.json`; recipe in its `protocol`).

Inputs, all from the reference folder (no image, no model): the detections CSV (`file_name, xmin, ymin, xmax,
ymax, confidence, class`, CSV order = proposal order), `decode.jsonl` (image sizes), the per-ref ground truth
and split of `zero_shot.json`, the crop embeddings (`clip_fingerprints.jsonl` + `clip_image_embeddings.npy`)
and the sentence embeddings (`clip_text.jsonl`). The proposals are filtered by this package (`filters`); every
kept proposal must have a reference embedding. Compared: every ref's pick, IoU, cosine and distance, and every
split's metrics.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import datasets as D
from .features import FeatureSource, RefFeatures
from .filters import eval_candidates
from .heads import ZeroShot
from .shards import Refs, ShardError
from .train import evaluate

METRICS = [
    "n_refs",
    "n_fallback_whole_image",
    "acc@0.3",
    "acc@0.5",
    "acc@0.7",
    "mIoU",
    "median_IoU",
    "mCos",
    "mED",
]


class ReferenceEmbeddings:
    """`FeatureSource` over the reference's crop and sentence embeddings."""

    def __init__(self, clip_dir: Path) -> None:
        self.emb = np.load(clip_dir / "clip_image_embeddings.npy").astype(np.float32)
        self.gt: dict[int, int] = {}
        self.image: dict[int, int] = {}
        self.props: dict[int, dict[int, int]] = defaultdict(dict)
        with (clip_dir / "clip_fingerprints.jsonl").open() as f:
            for line in f:
                r = json.loads(line)
                rid = int(r["ref_id"])
                if r["kind"] == "gt":
                    self.gt[rid] = int(r["emb_row"])
                elif r["kind"] == "image":
                    self.image[rid] = int(r["emb_row"])
                else:
                    self.props[rid][int(r["proposal_index"])] = int(r["emb_row"])
        self.sents: dict[int, list[np.ndarray]] = defaultdict(list)
        with (clip_dir / "clip_text.jsonl").open() as f:
            for line in f:
                r = json.loads(line)
                self.sents[int(r["ref_id"])].append(np.asarray(r["embedding"], dtype=np.float32))
        self.where = clip_dir

    @property
    def dim(self) -> int:
        return int(self.emb.shape[1])

    def features(self, refs: Refs, i: int, kept: list[int]) -> RefFeatures:
        rid = int(refs.ref_id[i])
        missing = [k for k in kept if k not in self.props[rid]]
        if missing:
            raise ShardError(f"{self.where}: ref {rid}: kept proposals {missing} have no reference embedding")
        rows = [self.props[rid][k] for k in kept] if kept else [self.image[rid]]
        return RefFeatures(self.emb[self.gt[rid]], self.emb[rows], np.stack(self.sents[rid]))


def reference_refs(reference: Path, dataset: str, detector: str) -> tuple[Refs, dict[str, object]]:
    """The refs of `zero_shot.json` with the detections CSV's boxes, as the readers' `Refs`."""
    clip_dir = reference / f"{dataset}-clip"
    zs = json.loads((clip_dir / "zero_shot.json").read_text())
    sizes = {}
    with (clip_dir / "decode.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            sizes[r["file_name"]] = (int(r["width"]), int(r["height"]))
    boxes: dict[str, list[tuple[list[float], float]]] = defaultdict(list)
    with (reference / f"{dataset}-results" / f"{detector}.csv").open() as f:
        for r in csv.DictReader(f):
            b = [float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
            boxes[r["file_name"]].append((b, float(r["confidence"])))
    sentences: dict[int, list[str]] = defaultdict(list)
    with (clip_dir / "clip_text.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            sentences[int(r["ref_id"])].append(r["sent"])
    refs = zs["refs"]
    off = np.cumsum([0] + [len(boxes[r["file_name"]]) for r in refs])
    flat = [p for r in refs for p in boxes[r["file_name"]]]
    return (
        Refs(
            ref_id=np.array([r["ref_id"] for r in refs], np.int64),
            file_name=[r["file_name"] for r in refs],
            split=[r["split"] for r in refs],
            width=np.array([sizes[r["file_name"]][0] for r in refs], np.int32),
            height=np.array([sizes[r["file_name"]][1] for r in refs], np.int32),
            sentences=[sentences[int(r["ref_id"])] for r in refs],
            gt=np.array([r["gt_box_xyxy"] for r in refs], np.float32),
            prop_off=off.astype(np.int64),
            prop_boxes=np.array([p[0] for p in flat], np.float32).reshape(-1, 4),
            prop_scores=np.array([p[1] for p in flat], np.float32),
            source=[str(clip_dir / "zero_shot.json")] * len(refs),
        ),
        zs,
    )


class _Memo:
    """A source computed once per (ref, kept) (the check reads every ref in its split and again in "all")."""

    def __init__(self, inner: FeatureSource) -> None:
        self.inner = inner
        self.memo: dict[tuple[int, tuple[int, ...]], RefFeatures] = {}

    @property
    def dim(self) -> int:
        return self.inner.dim

    def features(self, refs: Refs, i: int, kept: list[int]) -> RefFeatures:
        key = (i, tuple(kept))
        if key not in self.memo:
            self.memo[key] = self.inner.features(refs, i, kept)
        return self.memo[key]


@dataclass
class CheckResult:
    lines: list[str]
    passed: bool


def run(
    reference: Path,
    dataset: str = "public-24",
    detector: str = "yolov8n-cal",
    tol: float = 1e-6,
    source: FeatureSource | None = None,
) -> CheckResult:
    """Compare with `zero_shot.json`; `source` defaults to the reference's own embeddings (`ImageFeatures`
    checks the live image path instead: its embeddings are compared with the reference's first)."""
    refs, zs = reference_refs(reference, dataset, detector)
    ref_src = ReferenceEmbeddings(reference / f"{dataset}-clip")
    src: FeatureSource = _Memo(source) if source is not None else ref_src
    by_ref = {int(r["ref_id"]): r for r in zs["refs"]}  # type: ignore[attr-defined]
    lines, ok = [f"zero-shot check: {dataset}, {detector}; got=want per metric (tolerance {tol})"], True
    worst: dict[str, float] = defaultdict(float)
    if source is not None:
        source = src
        emb_diff = 0.0
        for i in range(len(refs)):
            b, sc = refs.proposals(i)
            kept = eval_candidates(b, sc, int(refs.width[i]), int(refs.height[i])).kept
            got_f, want_f = source.features(refs, i, kept), ref_src.features(refs, i, kept)
            for g, w in zip(
                (got_f.gt, got_f.candidates, got_f.sentences),
                (want_f.gt, want_f.candidates, want_f.sentences),
                strict=True,
            ):
                emb_diff = max(emb_diff, float(np.max(np.abs(g - w))))
        lines.append(
            f"embeddings (every crop and sentence) vs the reference: max |difference| {emb_diff:.3g}"
        )
    for split in ["train", "val", "test", "all"]:
        ds = D.ranking_eval(refs, src, None if split == "all" else split)
        ev = evaluate(ZeroShot(), ds)
        got = dict(ev.summary)
        got["n_fallback_whole_image"] = got.pop("n_fallback")
        want = zs["splits"][split]  # type: ignore[index]
        cells = []
        for m in METRICS:
            good = abs(got[m] - want[m]) <= tol
            ok &= good
            cells.append(f"{m} {got[m]:.6f}{'=' if good else ' != '}{want[m]:.6f}")
        lines.append(f"{split}: " + ", ".join(cells))
        for rid, pred, iou, cos, ed in zip(ev.ref_id, ev.pred, ev.iou, ev.cos, ev.ed, strict=True):
            r = by_ref[rid]
            pairs = (
                ("pred", pred, r["pred"]),
                ("iou", iou, r["iou"]),
                ("cos", cos, r["cos"]),
                ("ed", ed, r["ed"]),
            )
            for name, a, b in pairs:
                worst[name] = max(worst[name], abs(a - b))
            diffs = [name for name, a, b in pairs if abs(a - b) > tol]
            if diffs:
                ok = False
                lines.append(
                    f"  ref {rid}: {', '.join(diffs)} differ "
                    f"(pred {pred} vs {r['pred']}, iou {iou} vs {r['iou']})"
                )
    lines.append("per ref, largest difference: " + ", ".join(f"{k} {v:.3g}" for k, v in worst.items()))
    lines.append("zero-shot check: " + ("PASSED" if ok else "FAILED"))
    return CheckResult(lines, ok)
