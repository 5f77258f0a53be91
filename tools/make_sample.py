#!/usr/bin/env python3
"""Write the bundled RefCOCOg-format sample under sample/refcocog/ (its output is committed).

Re-run from the repository root with

    .venv/bin/python tools/make_sample.py

Re-running gives byte-identical files (seeded RNG, fixed Pillow 13.0.0 / libjpeg-turbo encoder
settings); the script checks that its pickle reads back with Python's own unpickler.

What it writes, in the real on-disk form of RefCOCOg (see docs/mission.md):

- images/COCO_train2014_%012d.jpg: synthetic scenes at COCO-like sizes (gradients, coloured shapes
  with outlines and shading, mild noise) so that detectors see structure. Special cases every JPEG
  reader of the pipeline must handle: one grayscale JPEG, one Adobe CMYK JPEG, one progressive
  JPEG, one carrying EXIF orientation 6 (annotations refer to the stored pixel grid, so the tag
  must NOT be applied), one 4:4:4 and one 4:2:2 chroma subsampling, one with optimised Huffman
  tables.
- annotations/instances.json: COCO format (images, annotations with float bbox / area / iscrowd /
  polygon segmentation, the 80 COCO categories with their real ids 1..90). Two image records (and
  their annotations) are used by no ref and have no file: a reader keeps only the images the refs use.
- annotations/refs(umd).p: a list of ref dicts written the way Python 2's cPickle wrote them at
  protocol 2 (byte strings as SHORT_BINSTRING/BINSTRING, non-ASCII text as BINUNICODE, memo
  BINPUT/LONG_BINPUT and BINGET/LONG_BINGET for repeated keys). Python 3's pickle would write bytes
  through `_codecs.encode`, so the opcodes are written by hand here.
- expected.json: what a correct reader must find (counts per split, every ref joined with its
  ground-truth box as xyxy, image order, special images, file sizes and SHA-256), computed here,
  independently of the Rust reader.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SEED = 20240517
ROOT = Path(__file__).resolve().parent.parent / "sample" / "refcocog"

# The 80 COCO categories: (id, name, supercategory), ids 1..90 with gaps, as in instances_train2014.json.
COCO_CATEGORIES = [
    (1, "person", "person"),
    (2, "bicycle", "vehicle"),
    (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"),
    (6, "bus", "vehicle"),
    (7, "train", "vehicle"),
    (8, "truck", "vehicle"),
    (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"),
    (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"),
    (14, "parking meter", "outdoor"),
    (15, "bench", "outdoor"),
    (16, "bird", "animal"),
    (17, "cat", "animal"),
    (18, "dog", "animal"),
    (19, "horse", "animal"),
    (20, "sheep", "animal"),
    (21, "cow", "animal"),
    (22, "elephant", "animal"),
    (23, "bear", "animal"),
    (24, "zebra", "animal"),
    (25, "giraffe", "animal"),
    (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"),
    (31, "handbag", "accessory"),
    (32, "tie", "accessory"),
    (33, "suitcase", "accessory"),
    (34, "frisbee", "sports"),
    (35, "skis", "sports"),
    (36, "snowboard", "sports"),
    (37, "sports ball", "sports"),
    (38, "kite", "sports"),
    (39, "baseball bat", "sports"),
    (40, "baseball glove", "sports"),
    (41, "skateboard", "sports"),
    (42, "surfboard", "sports"),
    (43, "tennis racket", "sports"),
    (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"),
    (47, "cup", "kitchen"),
    (48, "fork", "kitchen"),
    (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"),
    (51, "bowl", "kitchen"),
    (52, "banana", "food"),
    (53, "apple", "food"),
    (54, "sandwich", "food"),
    (55, "orange", "food"),
    (56, "broccoli", "food"),
    (57, "carrot", "food"),
    (58, "hot dog", "food"),
    (59, "pizza", "food"),
    (60, "donut", "food"),
    (61, "cake", "food"),
    (62, "chair", "furniture"),
    (63, "couch", "furniture"),
    (64, "potted plant", "furniture"),
    (65, "bed", "furniture"),
    (67, "dining table", "furniture"),
    (70, "toilet", "furniture"),
    (72, "tv", "electronic"),
    (73, "laptop", "electronic"),
    (74, "mouse", "electronic"),
    (75, "remote", "electronic"),
    (76, "keyboard", "electronic"),
    (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"),
    (79, "oven", "appliance"),
    (80, "toaster", "appliance"),
    (81, "sink", "appliance"),
    (82, "refrigerator", "appliance"),
    (84, "book", "indoor"),
    (85, "clock", "indoor"),
    (86, "vase", "indoor"),
    (87, "scissors", "indoor"),
    (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"),
    (90, "toothbrush", "indoor"),
]
assert len(COCO_CATEGORIES) == 80

# (width, height) of COCO-like images; the first entries are the special JPEGs (see SPECIAL).
SIZES = [
    (640, 480),
    (480, 640),
    (640, 427),
    (427, 640),
    (500, 375),
    (612, 612),
    (640, 360),
    (640, 525),
    (375, 500),
    (640, 640),
    (640, 478),
    (427, 640),
    (640, 424),
    (500, 333),
    (640, 480),
    (480, 640),
    (640, 426),
    (360, 640),
    (640, 512),
    (640, 383),
    (500, 500),
    (640, 480),
    (612, 612),
    (640, 429),
    (480, 360),
    (640, 496),
    (333, 500),
    (640, 480),
    (640, 436),
    (426, 640),
]
SPECIAL = {
    0: "grayscale",
    1: "cmyk_adobe",
    2: "progressive",
    3: "exif_orientation_6",
    4: "subsampling_444",
    5: "subsampling_422",
    6: "optimized_huffman",
}
# Split per image slot: 18 train, 6 val, 6 test, interleaved so that instances.json mixes them.
SPLITS = [
    "train",
    "val",
    "train",
    "test",
    "train",
    "train",
    "val",
    "train",
    "test",
    "train",
] * 3

COLOURS = {
    "red": (200, 30, 35),
    "green": (40, 160, 60),
    "blue": (35, 70, 200),
    "yellow": (235, 210, 40),
    "purple": (130, 50, 160),
    "orange": (240, 130, 20),
    "white": (245, 245, 240),
    "black": (20, 20, 25),
    "pink": (240, 140, 180),
    "brown": (120, 75, 35),
}

# Sentences that are non-ASCII in Python 2 were unicode objects: pickled as BINUNICODE.
UNICODE_SENTENCES = [
    "the café table near the window",
    "a naïve drawing of the dog on the left",
]
# An ASCII sentence stored as unicode (Python 2 code mixed str and unicode freely).
ASCII_UNICODE_SENTENCE = "the small thing at the bottom"
# Python 2 wrote byte strings of 256 bytes or more with BINSTRING (4-byte length) instead of SHORT_BINSTRING.
LONG_SENTENCE = (
    "the large object that is standing right in the middle of the picture, partly hidden behind "
    "the other shapes, with a darker outline than everything around it and a lighter shade on its "
    "upper side, which looks like it is the thing the person in the scene is looking at"
)
assert len(LONG_SENTENCE.encode()) >= 256


class Py2Pickler:
    """Writes protocol-2 pickles opcode by opcode, the way Python 2.7's cPickle did."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")  # PROTO 2
        self.memo_len = 0
        # Interned strings (dict keys, split names) are one object in Python 2: written once, then BINGET.
        self.interned: dict[tuple[type, object], int] = {}

    def put(self) -> None:
        idx = self.memo_len
        self.memo_len += 1
        if idx < 256:
            self.out += b"q" + bytes([idx])  # BINPUT
        else:
            self.out += b"r" + struct.pack("<I", idx)  # LONG_BINPUT

    def get(self, idx: int) -> None:
        if idx < 256:
            self.out += b"h" + bytes([idx])  # BINGET
        else:
            self.out += b"j" + struct.pack("<I", idx)  # LONG_BINGET

    def int_(self, v: int) -> None:
        # cPickle save_int: BININT1 for 0..0xff, BININT2 for ..0xffff, else BININT (signed 32 bit).
        if 0 <= v <= 0xFF:
            self.out += b"K" + bytes([v])
        elif 0 <= v <= 0xFFFF:
            self.out += b"M" + struct.pack("<H", v)
        else:
            self.out += b"J" + struct.pack("<i", v)

    def bytes_(self, v: bytes, intern: bool = False) -> None:
        key = (bytes, v)
        if intern and key in self.interned:
            self.get(self.interned[key])
            return
        if len(v) < 256:
            self.out += b"U" + bytes([len(v)]) + v  # SHORT_BINSTRING
        else:
            self.out += b"T" + struct.pack("<i", len(v)) + v  # BINSTRING
        if intern:
            self.interned[key] = self.memo_len
        self.put()

    def unicode_(self, v: str) -> None:
        enc = v.encode("utf-8")
        self.out += b"X" + struct.pack("<I", len(enc)) + enc  # BINUNICODE
        self.put()

    def value(self, v: object) -> None:
        if isinstance(v, bool):
            raise TypeError("no bools in refs")
        if isinstance(v, int):
            self.int_(v)
        elif isinstance(v, bytes):
            self.bytes_(v)
        elif isinstance(v, str):
            self.unicode_(v)
        elif isinstance(v, list):
            self.list_(v)
        elif isinstance(v, dict):
            self.dict_(v)
        else:
            raise TypeError(type(v))

    def list_(self, items: list) -> None:
        self.out += b"]"  # EMPTY_LIST
        self.put()
        # cPickle batch_list: one item -> APPEND, several -> MARK ... APPENDS (batches of 1000).
        for start in range(0, len(items), 1000):
            batch = items[start : start + 1000]
            if len(batch) == 1:
                self.value(batch[0])
                self.out += b"a"
            else:
                self.out += b"("
                for item in batch:
                    self.value(item)
                self.out += b"e"

    def dict_(self, d: dict) -> None:
        self.out += b"}"  # EMPTY_DICT
        self.put()
        items = list(d.items())
        for start in range(0, len(items), 1000):
            batch = items[start : start + 1000]
            if len(batch) == 1:
                k, v = batch[0]
                self.key_value(k, v)
                self.out += b"s"  # SETITEM
            else:
                self.out += b"("  # MARK
                for k, v in batch:
                    self.key_value(k, v)
                self.out += b"u"  # SETITEMS

    def key_value(self, k: bytes, v: object) -> None:
        self.bytes_(k, intern=True)
        if k == b"split":
            self.bytes_(v, intern=True)
        else:
            self.value(v)

    def finish(self) -> bytes:
        return bytes(self.out + b".")  # STOP


def py2_text(s: str, force_unicode: bool = False) -> bytes | str:
    """How Python 2 code held this text: a byte string when ASCII, else unicode."""
    if force_unicode or not s.isascii():
        return s
    return s.encode("ascii")


def gradient(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    c0 = rng.integers(30, 226, 3).astype(np.float64)
    c1 = rng.integers(30, 226, 3).astype(np.float64)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t = (xx * math.cos(angle) + yy * math.sin(angle)) / (
        abs(w * math.cos(angle)) + abs(h * math.sin(angle))
    )
    t = t - t.min()
    t = t / max(t.max(), 1e-9)
    # A low-frequency ripple so that the background is not a plain ramp.
    ripple = 12.0 * np.sin(xx / rng.uniform(25, 60)) * np.cos(yy / rng.uniform(25, 60))
    img = (
        c0[None, None, :] * (1 - t[..., None])
        + c1[None, None, :] * t[..., None]
        + ripple[..., None]
    )
    return img


def polygon_area(pts: list[tuple[float, float]]) -> float:
    s = 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        s += x0 * y1 - x1 * y0
    return abs(s) / 2.0


def shape_points(
    rng: np.random.Generator, kind: str, x0: float, y0: float, x1: float, y1: float
):
    if kind == "rectangle":
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if kind == "ellipse":
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        return [
            (
                cx + rx * math.cos(2 * math.pi * k / 24),
                cy + ry * math.sin(2 * math.pi * k / 24),
            )
            for k in range(24)
        ]
    if kind == "triangle":
        apex = x0 + (x1 - x0) * float(rng.uniform(0.2, 0.8))
        return [(apex, y0), (x1, y1), (x0, y1)]
    # A diamond.
    return [
        ((x0 + x1) / 2, y0),
        (x1, (y0 + y1) / 2),
        ((x0 + x1) / 2, y1),
        (x0, (y0 + y1) / 2),
    ]


def r2(v: float) -> float:
    return round(v, 2)


def draw_scene(rng: np.random.Generator, w: int, h: int, n_objects: int):
    base = gradient(rng, w, h)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    objects = []
    colour_names = list(COLOURS)
    for _ in range(n_objects):
        kind = ["rectangle", "ellipse", "triangle", "diamond"][int(rng.integers(0, 4))]
        bw = float(rng.uniform(0.15, 0.5)) * w
        bh = float(rng.uniform(0.15, 0.5)) * h
        x0 = float(rng.uniform(0, w - bw - 1))
        y0 = float(rng.uniform(0, h - bh - 1))
        x0, y0, x1, y1 = r2(x0), r2(y0), r2(x0 + bw), r2(y0 + bh)
        colour = colour_names[int(rng.integers(0, len(colour_names)))]
        pts = [(r2(px), r2(py)) for px, py in shape_points(rng, kind, x0, y0, x1, y1)]
        fill = COLOURS[colour]
        outline = tuple(max(0, c - 90) for c in fill)
        draw.polygon(pts, fill=fill, outline=outline, width=3)
        # Shading: a lighter band across the upper part of the shape.
        light = tuple(min(255, c + 45) for c in fill)
        band = [(px, y0 + (py - y0) * 0.35) for px, py in pts]
        draw.polygon(band, fill=light)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        bx0, by0 = min(xs), min(ys)
        bbox = [r2(bx0), r2(by0), r2(max(xs) - bx0), r2(max(ys) - by0)]
        objects.append(
            {
                "kind": kind,
                "colour": colour,
                "bbox": bbox,
                "area": r2(polygon_area(pts)),
                "segmentation": [[c for p in pts for c in p]],
            }
        )
    arr = np.asarray(img).astype(np.float64)
    arr += rng.normal(0.0, 3.0, arr.shape)
    return Image.fromarray(
        np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB"
    ), objects


def save_jpeg(img: Image.Image, special: str | None) -> bytes:
    buf = io.BytesIO()
    if special == "grayscale":
        img.convert("L").save(buf, "JPEG", quality=85)
    elif special == "cmyk_adobe":
        # Pillow writes CMYK inverted with libjpeg's Adobe APP14 marker, like Photoshop.
        img.convert("CMYK").save(buf, "JPEG", quality=85)
    elif special == "progressive":
        img.save(buf, "JPEG", quality=85, progressive=True)
    elif special == "exif_orientation_6":
        exif = Image.Exif()
        exif[0x0112] = (
            6  # Orientation: rotate 90 CW to display; the stored grid is what COCO annotates.
        )
        img.save(buf, "JPEG", quality=85, exif=exif.tobytes())
    elif special == "subsampling_444":
        img.save(buf, "JPEG", quality=85, subsampling=0)
    elif special == "subsampling_422":
        img.save(buf, "JPEG", quality=85, subsampling=1)
    elif special == "optimized_huffman":
        img.save(buf, "JPEG", quality=85, optimize=True)
    else:
        img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def check_jpeg(data: bytes, special: str | None, w: int, h: int) -> None:
    im = Image.open(io.BytesIO(data))
    assert im.size == (w, h), (im.size, w, h)
    if special == "grayscale":
        assert im.mode == "L"
    if special == "cmyk_adobe":
        assert im.mode == "CMYK" and b"Adobe" in data[:200]
    if special == "progressive":
        assert im.info.get("progressive") == 1
    if special == "exif_orientation_6":
        assert im.getexif().get(0x0112) == 6


def sentence_text(rng: np.random.Generator, obj: dict, name: str) -> str:
    where = [
        "on the left",
        "on the right",
        "at the top",
        "at the bottom",
        "in the middle",
        "near the edge",
    ]
    templates = [
        "the {c} {n} {w}",
        "a {c} {n}",
        "{c} {n} {w}",
        "the {n} that is {c}",
        "the {k} shaped {n} {w}",
    ]
    t = templates[int(rng.integers(0, len(templates)))]
    return t.format(
        c=obj["colour"],
        n=name,
        w=where[int(rng.integers(0, len(where)))],
        k=obj["kind"],
    )


def tokens_of(sent: str) -> list[str]:
    return sent.replace(",", " ").split()


def main() -> None:
    rng = np.random.default_rng(SEED)
    images_dir = ROOT / "images"
    ann_dir = ROOT / "annotations"
    images_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    for old in images_dir.glob("*.jpg"):
        old.unlink()

    n_slots = len(SIZES)
    image_ids = sorted(
        int(v)
        for v in rng.choice(np.arange(9, 581930), size=n_slots + 2, replace=False)
    )
    # instances.json order is not id order in COCO either.
    order = [int(v) for v in rng.permutation(n_slots + 2)]
    unused_slots = {n_slots, n_slots + 1}
    ann_ids = sorted(
        int(v)
        for v in rng.choice(
            np.arange(100000, 2200000), size=(n_slots + 2) * 5, replace=False
        )
    )
    ann_iter = iter(int(v) for v in rng.permutation(ann_ids))
    cat_by_id = {c[0]: c for c in COCO_CATEGORIES}
    cat_ids = [c[0] for c in COCO_CATEGORIES]

    image_records: dict[int, dict] = {}
    annotations_by_slot: dict[int, list[dict]] = {}
    objects_by_slot: dict[int, list[dict]] = {}
    specials: dict[str, int] = {}
    for slot in range(n_slots + 2):
        image_id = image_ids[slot]
        if slot in unused_slots:
            w, h = (640, 480)
            _, objects = draw_scene(
                rng, 64, 48, 2
            )  # Geometry only; no file for unused records.
        else:
            w, h = SIZES[slot]
            img, objects = draw_scene(rng, w, h, int(rng.integers(2, 6)))
            special = SPECIAL.get(slot)
            data = save_jpeg(img, special)
            check_jpeg(data, special, w, h)
            (images_dir / f"COCO_train2014_{image_id:012d}.jpg").write_bytes(data)
            if special:
                specials[special] = image_id
        image_records[slot] = {
            "license": int(rng.integers(1, 7)),
            "file_name": f"COCO_train2014_{image_id:012d}.jpg",
            "coco_url": f"http://images.cocodataset.org/train2014/COCO_train2014_{image_id:012d}.jpg",
            "height": h,
            "width": w,
            "date_captured": "2013-11-14 16:28:13",
            "flickr_url": "http://farm.staticflickr.com/placeholder.jpg",
            "id": image_id,
        }
        anns = []
        for obj in objects:
            obj["category_id"] = cat_ids[int(rng.integers(0, len(cat_ids)))]
            anns.append(
                {
                    "segmentation": obj["segmentation"],
                    "area": obj["area"],
                    "iscrowd": 0,
                    "image_id": image_id,
                    "bbox": obj["bbox"],
                    "category_id": obj["category_id"],
                    "id": next(ann_iter),
                }
            )
        annotations_by_slot[slot] = anns
        objects_by_slot[slot] = objects

    instances = {
        "info": {
            "description": "refaug bundled sample (synthetic scenes)",
            "version": "1.0",
            "year": 2014,
        },
        "images": [image_records[s] for s in order],
        "licenses": [
            {
                "url": "http://creativecommons.org/licenses/by/2.0/",
                "id": 4,
                "name": "Attribution License",
            }
        ],
        "annotations": [a for s in order for a in annotations_by_slot[s]],
        "categories": [
            {"supercategory": sc, "id": cid, "name": name}
            for cid, name, sc in COCO_CATEGORIES
        ],
    }
    instances_bytes = json.dumps(instances).encode("utf-8")
    (ann_dir / "instances.json").write_bytes(instances_bytes)

    # Refs: 1-3 per used image, over distinct annotations; ref ids follow a shuffled image order.
    used_slots = [int(s) for s in rng.permutation(n_slots)]
    refs = []
    next_ref_id = 0
    next_sent_id = 0
    special_sentences = [*UNICODE_SENTENCES, ASCII_UNICODE_SENTENCE, LONG_SENTENCE]
    for slot in used_slots:
        anns = annotations_by_slot[slot]
        objs = objects_by_slot[slot]
        n_refs = min(len(anns), int(rng.integers(1, 4)))
        picks = sorted(
            int(v) for v in rng.choice(len(anns), size=n_refs, replace=False)
        )
        for k in picks:
            ann, obj = anns[k], objs[k]
            name = cat_by_id[ann["category_id"]][1]
            sentences = []
            for _ in range(int(rng.integers(1, 4))):
                force_unicode = False
                if special_sentences and next_sent_id % 7 == 3:
                    sent = special_sentences.pop(0)
                    force_unicode = sent == ASCII_UNICODE_SENTENCE
                else:
                    sent = sentence_text(rng, obj, name)
                raw = (
                    sent[0].upper() + sent[1:] + ("." if next_sent_id % 3 == 0 else "")
                )
                sentences.append(
                    {
                        "tokens": [py2_text(t, force_unicode) for t in tokens_of(sent)],
                        "raw": py2_text(raw, force_unicode),
                        "sent_id": next_sent_id,
                        "sent": py2_text(sent, force_unicode),
                    }
                )
                next_sent_id += 1
            refs.append(
                {
                    "sent_ids": [s["sent_id"] for s in sentences],
                    "file_name": f"COCO_train2014_{ann['image_id']:012d}_{ann['id']}.jpg".encode(),
                    "ann_id": ann["id"],
                    "ref_id": next_ref_id,
                    "image_id": ann["image_id"],
                    "split": SPLITS[slot].encode(),
                    "sentences": sentences,
                    "category_id": ann["category_id"],
                }
            )
            next_ref_id += 1
    assert not special_sentences, "every special sentence must be used"

    # Python 2 dict keys were byte strings.
    py2_refs = [
        {
            k.encode(): (
                [{sk.encode(): sv for sk, sv in s.items()} for s in v]
                if k == "sentences"
                else v
            )
            for k, v in r.items()
        }
        for r in refs
    ]
    pickler = Py2Pickler()
    pickler.value(py2_refs)
    refs_bytes = pickler.finish()
    # Python's unpickler must read back exactly what was meant (bytes stay bytes with encoding='bytes').
    assert pickle.loads(refs_bytes, encoding="bytes") == py2_refs, (
        "pickle read-back differs"
    )
    (ann_dir / "refs(umd).p").write_bytes(refs_bytes)

    def text(v: bytes | str) -> str:
        return v.decode("utf-8") if isinstance(v, bytes) else v

    ann_by_id = {
        a["id"]: a for s in annotations_by_slot for a in annotations_by_slot[s]
    }
    split_names = ["train", "val", "test"]
    counts = {}
    for split in split_names:
        rs = [r for r in refs if r["split"].decode() == split]
        counts[split] = {
            "images": len({r["image_id"] for r in rs}),
            "refs": len(rs),
            "sentences": sum(len(r["sentences"]) for r in rs),
            "categories": len({r["category_id"] for r in rs}),
        }
    total = {
        "images": len({r["image_id"] for r in refs}),
        "refs": len(refs),
        "sentences": sum(len(r["sentences"]) for r in refs),
        "categories": len({r["category_id"] for r in refs}),
    }
    used_ids = {r["image_id"] for r in refs}
    expected = {
        "kind": "refcocog",
        "split_by": "umd",
        "splits": counts,
        "total": total,
        "categories_in_instances": len(COCO_CATEGORIES),
        "images_in_order": [
            {
                "image_id": im["id"],
                "file_name": im["file_name"],
                "width": im["width"],
                "height": im["height"],
            }
            for im in instances["images"]
            if im["id"] in used_ids
        ],
        "unused_image_ids": [image_records[s]["id"] for s in sorted(unused_slots)],
        "special_images": specials,
        "refs": [
            {
                "ref_id": r["ref_id"],
                "ann_id": r["ann_id"],
                "image_id": r["image_id"],
                "category_id": r["category_id"],
                "split": r["split"].decode(),
                # COCO bbox [x, y, w, h] -> xyxy, in float64 here; the reader stores f32.
                "gt_box_xyxy": [
                    ann_by_id[r["ann_id"]]["bbox"][0],
                    ann_by_id[r["ann_id"]]["bbox"][1],
                    ann_by_id[r["ann_id"]]["bbox"][0]
                    + ann_by_id[r["ann_id"]]["bbox"][2],
                    ann_by_id[r["ann_id"]]["bbox"][1]
                    + ann_by_id[r["ann_id"]]["bbox"][3],
                ],
                "sentences": [
                    {
                        "sent_id": s["sent_id"],
                        "sent": text(s["sent"]),
                        "raw": text(s["raw"]),
                        "tokens": [text(t) for t in s["tokens"]],
                    }
                    for s in r["sentences"]
                ],
            }
            for r in refs
        ],
        "sources": {
            "instances": {
                "size": len(instances_bytes),
                "sha256": hashlib.sha256(instances_bytes).hexdigest(),
            },
            "refs": {
                "size": len(refs_bytes),
                "sha256": hashlib.sha256(refs_bytes).hexdigest(),
            },
        },
    }
    (ROOT / "expected.json").write_text(
        json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    total_bytes = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    print(
        f"wrote {ROOT}: {len(instances['images'])} image records ({len(used_ids)} used), "
        f"{len(refs)} refs, {total['sentences']} sentences, {total_bytes / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
