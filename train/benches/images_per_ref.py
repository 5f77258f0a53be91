"""Per-ref time of the `images` feature source (decode, the research's crop and CLIP transform, the CLIP
encoders on onnxruntime): what every epoch would pay without precomputed embeddings.

    .venv/bin/python train/benches/images_per_ref.py [--reference ../shared/reference]
        [--models ../shared/models] [--refs 8]

On the first `--refs` refs of the reference's `public-24` (yolov8n-cal proposals, the research's filter),
with `clip_rn50_small_{image,text}.onnx` (the RN50 architecture scaled down; the real RN50 costs far more).
Every crop is embedded once per ref (ground truth, kept proposals or the whole image) and every sentence.
Prints wall and process CPU time per ref and per crop. Needs ../shared, so it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from refaug_train.filters import eval_candidates
from refaug_train.images import ImageFeatures
from refaug_train.zero_shot_check import reference_refs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", type=Path, default=Path("../shared/reference"))
    ap.add_argument("--models", type=Path, default=Path("../shared/models"))
    ap.add_argument("--refs", type=int, default=8)
    a = ap.parse_args()
    refs, _ = reference_refs(a.reference, "public-24", "yolov8n-cal")
    src = ImageFeatures(
        a.reference / "public-24" / "images",
        a.models / "clip_rn50_small_image.onnx",
        a.models / "clip_rn50_small_text.onnx",
    )
    n = min(a.refs, len(refs))
    crops = sents = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        b, s = refs.proposals(i)
        cand = eval_candidates(b, s, int(refs.width[i]), int(refs.height[i]))
        f = src.features(refs, i, cand.kept)
        crops += 1 + len(f.candidates)
        sents += len(f.sentences)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{n} refs, {crops} crops, {sents} sentences: {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"per ref: {wall / n:.2f} s wall, {cpu / n:.2f} s CPU; per crop: {1000 * wall / crops:.0f} ms wall")


if __name__ == "__main__":
    main()
