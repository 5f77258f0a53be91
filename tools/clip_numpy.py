"""The research's CLIP crop pre-processing and refaug's fixture CLIP encoders, in NumPy.

An independent re-implementation used to make the expected values of refaug's CLIP tests
(`tools/make_clip_fixtures.py`, `tests/python/embed_check.py`); it never calls refaug.

Crop and transform (`../shared/docs/training-research.md` §3; torch 2.15 / torchvision 0.29):
  box xyxy float32 -> x, y, w = xmax - xmin, h = ymax - ymin (float32) -> each rounded half to even
  -> img[:, y:y+h, x:x+w] zero-filled outside -> float32(u8) / 255 -> Resize(224, BICUBIC,
  antialias=True) on float32 (torch's separable AA kernel: width pass then height pass, Keys
  a = -0.5, float32 weights, the accumulation order and fused multiply-adds of torch's AVX2 build)
  -> CenterCrop(224) -> (v - mean) / std.
Fused multiply-adds are emulated with np.longdouble (80-bit on x86-64 Linux): the product of two
float32 is exact there, then one more rounding to float32.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32, F64, LD = np.float32, np.float64, np.longdouble
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

U8 = npt.NDArray[np.uint8]
A32 = npt.NDArray[np.float32]


def fma(a: float, b: float, c: float) -> np.float32:
    return F32(LD(F32(a)) * LD(F32(b)) + LD(F32(c)))


def cubic(x: np.float32) -> np.float32:
    """torch's HelperInterpCubic::aa_filter, a = -0.5, as compiled with FMA."""
    a = F32(-0.5)
    x = F32(abs(x))
    if x < 1:
        return fma(F32(fma(a + F32(2), x, -(a + F32(3))) * x), x, F32(1))
    if x < 2:
        return fma(fma(fma(a, x, -(F32(5) * a)), x, F32(8) * a), x, -(F32(4) * a))
    return F32(0)


def weights(n_in: int, n_out: int) -> list[tuple[int, A32]]:
    """_compute_indices_min_size_weights_aa with scalar_t = float (torch 2.15)."""
    scale = F32(F32(n_in) / F32(n_out))
    if scale >= 1:
        support, inv = F32(2 * F64(scale)), F32(1 / F64(scale))
    else:
        support, inv = F32(2), F32(1)
    max_taps = int(np.ceil(F64(support))) * 2 + 1
    out: list[tuple[int, A32]] = []
    for i in range(n_out):
        center = F32(F64(scale) * (i + 0.5))
        lo = max(int(F64(F32(center - support)) + 0.5), 0)
        hi = min(int(F64(F32(center + support)) + 0.5), n_in)
        taps = min(max(hi - lo, 0), max_taps)
        w = [
            cubic(F32((F64(F32(F32(j + lo) - center)) + 0.5) * F64(inv)))
            for j in range(taps)
        ]
        total = F32(0)
        for v in w:
            total = F32(total + v)
        if total != 0:
            w = [F32(v / total) for v in w]
        out.append((lo, np.asarray(w, dtype=F32)))
    return out


def resample_last(x: A32, n_out: int) -> A32:
    """One pass along the last axis; the first product alone, then 4*floor(m/4) rounded
    products added in order, the remaining m mod 4 terms fused."""
    res = np.empty(x.shape[:-1] + (n_out,), dtype=F32)
    for i, (lo, w) in enumerate(weights(x.shape[-1], n_out)):
        acc = (x[..., lo] * w[0]).astype(F32)
        m = len(w) - 1
        plain = m - m % 4
        for j in range(1, len(w)):
            if j <= plain:
                acc = (acc + (x[..., lo + j] * w[j]).astype(F32)).astype(F32)
            else:
                acc = (x[..., lo + j].astype(LD) * LD(w[j]) + acc.astype(LD)).astype(
                    F32
                )
        res[..., i] = acc
    return res


def crop_box(xyxy: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    b = np.asarray(xyxy, dtype=F32)
    xywh = np.array([b[0], b[1], F32(b[2] - b[0]), F32(b[3] - b[1])], dtype=F32)
    x, y, w, h = (
        int(v) for v in np.round(xywh)
    )  # np.round: half to even, like torch.round
    return x, y, w, h


def crop(img_chw: U8, x: int, y: int, w: int, h: int) -> U8:
    _, height, width = img_chw.shape
    out = np.zeros((3, h, w), dtype=np.uint8)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 > x0 and y1 > y0:
        out[:, y0 - y : y1 - y, x0 - x : x1 - x] = img_chw[:, y0:y1, x0:x1]
    return out


def resized_hw(h: int, w: int, size: int) -> tuple[int, int]:
    if w <= h:
        return int(size * h / w), size
    return size, int(size * w / h)


def transform(
    c: U8,
    size: int = 224,
    mean: tuple[float, ...] = CLIP_MEAN,
    std: tuple[float, ...] = CLIP_STD,
) -> A32:
    """uint8 [3,h,w] -> float32 [3,size,size]."""
    v = c.astype(F32) / F32(255)
    h, w = v.shape[1:]
    oh, ow = resized_hw(h, w, size)
    if ow != w:
        v = resample_last(v, ow)
    if oh != h:
        v = np.swapaxes(resample_last(np.swapaxes(v, 1, 2), oh), 1, 2)
    top, left = (
        round((oh - size) / 2.0),
        round((ow - size) / 2.0),
    )  # half to even, as Python 3 round
    v = v[:, top : top + size, left : left + size]
    m = np.asarray(mean, dtype=F32)[:, None, None]
    s = np.asarray(std, dtype=F32)[:, None, None]
    return np.ascontiguousarray(((v - m).astype(F32) / s).astype(F32))


# The fixture encoders (tools/make_clip_fixtures.py writes their weights into the ONNX files).
FIXTURE_DIM = 16
POOL = 56  # 224 / 56 = 4 cells per side


def fixture_image_embedding(
    x: A32, w: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """[3,224,224] -> [D]: mean of each 56x56 cell -> flatten 48 -> @ w + b (float64, as the model)."""
    cells = x.astype(F64).reshape(3, 4, POOL, 4, POOL).mean(axis=(2, 4)).reshape(48)
    return cells @ w + b


def fixture_text_embedding(
    tokens: list[int], w: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """int64 [77] -> [D]: tokens / 49408 @ w (float64, as the model)."""
    return (np.asarray(tokens, dtype=F64) / 49408.0) @ w
