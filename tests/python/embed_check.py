"""Check `refaug embed`'s shards of one variant against an independent computation.

Usage: embed_check.py VARIANT_DIR IMAGES_DIR EXPECTED_JSON

For every proposal shard and its `embeddings/` twin: the same refs in the same order; the kept
proposals are exactly those with score > 0.25, width > 16, height > 16 (strict); every embedding
(kept proposals, ground truth, whole image) equals the fixture image encoder's maths in float64
NumPy on crops made by `tools/clip_numpy.py` (the research's transform, bit-exact to torch); every
sentence embedding equals the fixture text encoder's maths on openai/CLIP's tokens for that
sentence (`tests/data/clip/expected.json`). Prints a summary; exits 1 on the first mismatch.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
)
import clip_numpy as cn


def close(got: list[float], want: np.ndarray, what: str) -> None:
    g = np.asarray(got, dtype=np.float64)
    if g.shape != want.shape or not np.all(
        np.abs(g - want) <= 1e-6 * np.maximum(np.abs(want), 1.0)
    ):
        sys.exit(f"{what}: {g} vs {want}")


def main() -> None:
    variant, images_dir, expected_json = sys.argv[1:4]
    with open(expected_json, encoding="utf-8") as f:
        exp = json.load(f)
    w_img, b_img = np.asarray(exp["w_image"]), np.asarray(exp["b_image"])
    w_txt = np.asarray(exp["w_text"])
    tokens = {s["sent_id"]: s["tokens"] for s in exp["sentences"] if not s["too_long"]}
    n_img = n_txt = n_rows = 0
    decoded: dict[str, np.ndarray] = {}
    cache: dict[tuple[str, int, int, int, int], np.ndarray] = {}

    def embed(file_name: str, xyxy: tuple[float, float, float, float]) -> np.ndarray:
        nonlocal n_img
        if file_name not in decoded:
            rgb = np.asarray(
                Image.open(os.path.join(images_dir, file_name)).convert("RGB")
            )
            decoded[file_name] = np.ascontiguousarray(rgb.transpose(2, 0, 1))
        box = cn.crop_box(xyxy)
        key = (file_name, *box)
        if key not in cache:
            n_img += 1
            x = cn.transform(cn.crop(decoded[file_name], *box))
            cache[key] = cn.fixture_image_embedding(x, w_img, b_img)
        return cache[key]

    shards = sorted(f for f in os.listdir(variant) if f.endswith(".parquet"))
    for name in shards:
        src = pq.read_table(os.path.join(variant, name)).to_pylist()
        emb = pq.read_table(os.path.join(variant, "embeddings", name)).to_pylist()
        if [r["ref_id"] for r in src] != [r["ref_id"] for r in emb]:
            sys.exit(f"{name}: rows differ")
        for s, e in zip(src, emb):
            n_rows += 1
            fn, ref = s["file_name"], s["ref_id"]
            g = s["gt_box"]
            close(
                e["gt_embedding"],
                embed(fn, (g["xmin"], g["ymin"], g["xmax"], g["ymax"])),
                f"ref {ref} gt",
            )
            whole = (0.0, 0.0, float(s["image_width"]), float(s["image_height"]))
            close(e["image_embedding"], embed(fn, whole), f"ref {ref} image")
            kept = [
                i
                for i, p in enumerate(s["proposals"])
                if p["score"] > 0.25
                and p["xmax"] - p["xmin"] > 16
                and p["ymax"] - p["ymin"] > 16
            ]
            if e["proposal_index"] != kept:
                sys.exit(f"ref {ref}: kept {e['proposal_index']} vs {kept}")
            for i, v in zip(kept, e["proposal_embeddings"]):
                p = s["proposals"][i]
                close(
                    v,
                    embed(fn, (p["xmin"], p["ymin"], p["xmax"], p["ymax"])),
                    f"ref {ref} proposal {i}",
                )
            if e["sent_ids"] != [x["sent_id"] for x in s["sentences"]]:
                sys.exit(f"ref {ref}: sentence ids differ")
            for sid, v in zip(e["sent_ids"], e["sentence_embeddings"]):
                t = tokens[sid] + [0] * (77 - len(tokens[sid]))
                close(
                    v, cn.fixture_text_embedding(t, w_txt), f"ref {ref} sentence {sid}"
                )
                n_txt += 1
    print(
        f"{len(shards)} shards, {n_rows} rows, {n_img} distinct crops, {n_txt} sentences: all equal"
    )


if __name__ == "__main__":
    main()
