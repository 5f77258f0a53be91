#!/usr/bin/env python3
"""Write the golden files of tests/pixels.rs into tests/data/pixels/.

Expected values come from the original libraries, never from refaug:

* decoding: Pillow 13.0.0 `Image.open(path).convert("RGB")` (libjpeg-turbo) on small JPEG / PNG
  variants this script writes (Pillow's encoder, plus byte-level edits for truncated, corrupt and
  YCCK files; 16-bit PNGs written by hand with zlib);
* resizing: `cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)`, OpenCV 5.0.0
  (opencv-python-headless 5.0.0.93);
* letterbox: the ultralytics / yolov5 letterbox arithmetic (see ../shared/models/README.md) with
  cv2.resize + cv2.copyMakeBorder, then `x.astype(float32) / float32(255)` (numpy);
* the 256 float32 values of `x / 255`.

Inputs are generated deterministically (fixed formulas and a seeded numpy generator), so re-running
the script rewrites identical files. Run from the repository root:

    .venv/bin/python -m pip install opencv-python-headless==5.0.0.93   # once
    .venv/bin/python tools/make_pixel_goldens.py
"""

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "pixels"

assert PIL.__version__ == "13.0.0", PIL.__version__
assert cv2.__version__ == "5.0.0", cv2.__version__


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_image(w: int, h: int, seed: int, smooth: bool) -> np.ndarray:
    """A deterministic RGB uint8 image: a smooth 'natural-looking' pattern plus optional noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [
        127.5
        + 100 * np.sin(xx / 5.3 + 0.7 * c) * np.cos(yy / 4.1 - 0.3 * c)
        + 20 * np.sin((xx + yy) / 2.9)
        for c in range(3)
    ]
    img = np.stack(chans, -1)
    rng = np.random.default_rng(seed)
    img = img + (
        rng.normal(0, 6, img.shape) if smooth else rng.uniform(-128, 128, img.shape)
    )
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_bytes(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "PNG")
    return b.getvalue()


def png_by_hand(w: int, h: int, color_type: int, depth: int, rows: list) -> bytes:
    """A minimal PNG (Pillow cannot write 16-bit RGB / RGBA / LA)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def pillow_decode(data: bytes) -> dict:
    try:
        im = Image.open(io.BytesIO(data))
        mode = im.mode
        rgb = np.asarray(im.convert("RGB"))
    except (
        OSError
    ) as e:  # Pillow's "image file is truncated", "cannot identify image file", ...
        # Without the object repr that "cannot identify image file <_io.BytesIO ...>" carries.
        return {"ok": False, "pillow_error": str(e).split(" <")[0]}
    return {
        "ok": True,
        "pillow_mode": mode,
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "rgb_sha256": sha256(rgb.tobytes()),
    }


def jpeg(arr: np.ndarray, mode: str | None = None, **kw) -> bytes:
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    b = io.BytesIO()
    im.save(b, "JPEG", **kw)
    return b.getvalue()


def set_adobe_transform(data: bytes, transform: int) -> bytes:
    """Rewrite the Adobe APP14 marker's colour transform byte (0 = CMYK, 2 = YCCK)."""
    i = data.index(
        b"\xff\xee"
    )  # APP14: FF EE, length (2), "Adobe", version (2), flags (2 + 2), transform
    assert data[i + 4 : i + 9] == b"Adobe", "Pillow wrote no Adobe marker"
    seg = bytearray(data)
    seg[i + 4 + 11] = transform
    return bytes(seg)


def decode_cases() -> list:
    OUTJ = OUT / "decode"
    OUTJ.mkdir(parents=True, exist_ok=True)
    photo = test_image(37, 23, seed=1, smooth=True)
    big = test_image(64, 48, seed=2, smooth=True)
    files = {}
    files["baseline_420.jpg"] = jpeg(photo, quality=90)
    files["baseline_444.jpg"] = jpeg(photo, quality=90, subsampling=0)
    files["baseline_422.jpg"] = jpeg(photo, quality=90, subsampling=1)
    files["progressive_420.jpg"] = jpeg(big, quality=85, progressive=True)
    files["restart_markers.jpg"] = jpeg(big, quality=85, restart_marker_blocks=3)
    files["grayscale.jpg"] = jpeg(photo, mode="L", quality=90)
    cmyk = jpeg(photo, mode="CMYK", quality=90)
    files["cmyk_adobe.jpg"] = cmyk
    files["ycck_adobe.jpg"] = set_adobe_transform(cmyk, 2)
    base = jpeg(big, quality=90)
    files["trailing_garbage.jpg"] = base + b"not image data" * 4
    corrupt = bytearray(base)
    corrupt[len(base) * 2 // 3] ^= 0x55
    files["corrupt_entropy.jpg"] = bytes(corrupt)
    files["truncated_half.jpg"] = base[: len(base) // 2]
    files["missing_eoi.jpg"] = base[:-2]
    files["truncated_progressive.jpg"] = files["progressive_420.jpg"][:-40]
    files["header_only.jpg"] = base[:200]

    files["rgb8.png"] = png_bytes(photo)
    rgba = np.dstack(
        [photo, (np.arange(37 * 23) % 256).reshape(23, 37).astype(np.uint8)]
    )
    files["rgba8.png"] = png_bytes(rgba)
    files["l8.png"] = png_bytes(photo[:, :, 0])
    files["la8.png"] = png_bytes(np.dstack([photo[:, :, 0], photo[:, :, 1]]))
    pal = Image.fromarray(photo).quantize(16)
    pal.info["transparency"] = 3
    b = io.BytesIO()
    pal.save(b, "PNG", transparency=3)
    files["palette_trns.png"] = b.getvalue()
    b = io.BytesIO()
    Image.fromarray(photo[:, :, 0] > 128).save(b, "PNG")
    files["bilevel.png"] = b.getvalue()
    v16 = (photo.astype(np.uint32) * 257 + np.arange(37)[None, :, None] * 7) % 65536
    v16 = v16.astype(">u2")
    files["rgb16.png"] = png_by_hand(37, 23, 2, 16, [r.tobytes() for r in v16])
    rgba16 = np.concatenate([v16, v16[:, :, :1]], axis=2)
    files["rgba16.png"] = png_by_hand(37, 23, 6, 16, [r.tobytes() for r in rgba16])
    # 16-bit grey with values across the whole range: Pillow clips at 255 rather than scaling.
    l16 = (np.arange(37 * 23).reshape(23, 37) * 97 % 700).astype(">u2")
    files["l16.png"] = png_by_hand(37, 23, 0, 16, [r.tobytes() for r in l16])
    la16 = np.stack([v16[:, :, 0], v16[:, :, 1]], axis=2)
    files["la16.png"] = png_by_hand(37, 23, 4, 16, [r.tobytes() for r in la16])
    files["empty.jpg"] = b""
    files["not_an_image.gif"] = b"GIF89a" + bytes(range(64))

    cases = []
    for name, data in files.items():
        (OUTJ / name).write_bytes(data)
        cases.append({"file": name, **pillow_decode(data)})
    return cases


def cv2_resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def resize_cases() -> list:
    OUTR = OUT / "resize"
    OUTR.mkdir(parents=True, exist_ok=True)
    specs = [
        # (src w, src h, dst w, dst h, smooth?)
        (37, 23, 64, 41, True),  # odd upscale (the 500x375 -> 640x480 kind)
        (37, 23, 64, 41, False),
        (64, 41, 37, 23, False),  # odd downscale
        (50, 30, 25, 15, False),  # exact 2x down: OpenCV switches to INTER_AREA
        (20, 15, 40, 30, False),  # exact 2x up
        (3, 3, 64, 64, False),  # tiny source, wide borders
        (1, 7, 5, 9, False),  # one column
        (7, 1, 9, 5, False),  # one row
        (1, 1, 3, 2, False),
        (45, 45, 33, 61, True),  # up one way, down the other
        (61, 19, 17, 5, False),  # strong downscale (rows and columns skipped)
    ]
    cases = []
    for i, (w, h, nw, nh, smooth) in enumerate(specs):
        src = test_image(w, h, seed=100 + i, smooth=smooth)
        dst = cv2_resize(src, nw, nh)
        stem = f"{w}x{h}_to_{nw}x{nh}_{'smooth' if smooth else 'noise'}"
        (OUTR / f"{stem}.in.png").write_bytes(png_bytes(src))
        (OUTR / f"{stem}.out.png").write_bytes(png_bytes(dst))
        cases.append(
            {
                "input": f"{stem}.in.png",
                "output": f"{stem}.out.png",
                "width": nw,
                "height": nh,
            }
        )
    return cases


def letterbox(img: np.ndarray, tw: int, th: int, pad: int):
    """ultralytics LetterBox(auto=False, scaleup=True, center=True) / yolov5 letterbox(auto=False)."""
    h, w = img.shape[:2]
    r = min(th / h, tw / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (tw - new_w) / 2, (th - new_h) / 2
    if (new_w, new_h) != (w, h):
        img = cv2_resize(img, new_w, new_h)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    out = cv2.copyMakeBorder(
        img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad, pad, pad)
    )
    return out, (new_w, new_h, top, bottom, left, right)


def letterbox_cases() -> list:
    OUTL = OUT / "letterbox"
    OUTL.mkdir(parents=True, exist_ok=True)
    specs = [
        (37, 23, 64, 64),
        (23, 37, 64, 64),
        (64, 41, 64, 64),
        (30, 20, 64, 48),
        (5, 100, 32, 32),
    ]
    cases = []
    for i, (w, h, tw, th) in enumerate(specs):
        src = test_image(w, h, seed=200 + i, smooth=True)
        boxed, geom = letterbox(src, tw, th, 114)
        tensor = boxed.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
        stem = f"{w}x{h}_in_{tw}x{th}"
        (OUTL / f"{stem}.in.png").write_bytes(png_bytes(src))
        cases.append(
            {
                "input": f"{stem}.in.png",
                "target_w": tw,
                "target_h": th,
                "pad": 114,
                "geometry": dict(
                    zip(["new_w", "new_h", "top", "bottom", "left", "right"], geom)
                ),
                "letterboxed_sha256": sha256(boxed.tobytes()),
                "tensor_shape": list(tensor.shape),
                "tensor_sha256": sha256(tensor.astype("<f4").tobytes()),
            }
        )
    return cases


def parity_fingerprints() -> None:
    """A fingerprints.jsonl in the reference format for three images of decode/: letterbox (YOLO) and
    plain x/255 (Faster R-CNN) inputs as the reference pipeline computes them, one deliberately
    wrong input hash (so the check has a miss to report) and one DETR line."""
    lines = []
    for detector in [
        "yolov8n-cal",
        "fasterrcnn_mobilenet_v3_large_320_fpn_slim-cal",
        "detr_resnet18-cal@pil",
    ]:
        for i, name in enumerate(
            ["baseline_420.jpg", "grayscale.jpg", "cmyk_adobe.jpg"]
        ):
            rgb = np.asarray(Image.open(OUT / "decode" / name).convert("RGB"))
            if detector.startswith("yolo"):
                boxed, _ = letterbox(rgb, 64, 64, 114)
                x = boxed.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
            else:
                x = rgb.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
                if detector.startswith("detr"):
                    x = x[
                        None
                    ]  # stands in for the DETR processor: only the shape is plausible
            input_sha = sha256(x.astype("<f4").tobytes())
            if detector.startswith("fasterrcnn") and name == "grayscale.jpg":
                input_sha = "0" * 64  # the deliberate miss
            lines.append(
                {
                    "detector": detector,
                    "model": detector.split("@")[0] + ".onnx",
                    "processor": "pil" if "@pil" in detector else None,
                    "file_name": name,
                    "image_id": i + 1,
                    "rgb_shape": list(rgb.shape),
                    "rgb_sha256": sha256(rgb.tobytes()),
                    "input_name": "pixel_values"
                    if detector.startswith("detr")
                    else "images",
                    "input_shape": list(x.shape),
                    "input_dtype": "float32",
                    "input_sha256": input_sha,
                    "n_boxes": 0,
                }
            )
    (OUT / "parity_fingerprints.jsonl").write_text(
        "".join(json.dumps(l) + "\n" for l in lines)
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    unit = (np.arange(256, dtype=np.float32) / np.float32(255)).astype("<f4")
    goldens = {
        "generated_by": "tools/make_pixel_goldens.py",
        "versions": {
            "pillow": PIL.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        "unit_f32_bits": [int(v) for v in unit.view("<u4")],
        "decode": decode_cases(),
        "resize": resize_cases(),
        "letterbox": letterbox_cases(),
    }
    parity_fingerprints()
    (OUT / "goldens.json").write_text(json.dumps(goldens, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
