"""Pickles of the bundled sample's refs as Python itself writes them, for tests/dataset.rs.

Usage: .venv/bin/python tools/make_pickle_fixtures.py   (writes tests/data/pickles/)

- `refs-protocol{0,2,4}.p`: the sample's refs re-pickled by CPython at protocols 0, 2 and 4 (text
  opcodes, BINPUT/BINGET memo references to repeated strings, FRAME/MEMOIZE/SHORT_BINUNICODE).
- `refs-shared-tokens.p`: the same at protocol 2 with each ref's sentences sharing one tokens list
  object, the memo reference `serde-pickle`'s parser refused as a "recursive structure".
- `expected.json`: what each file holds, read back here with `pickle.load` (the reference reader).
Byte strings of the Python 2 original are loaded as latin-1 text, so every string is re-pickled as
unicode; refaug reads both.
"""

import json
import pickle
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/data/pickles"


def load(path: Path) -> list[dict]:
    with path.open("rb") as f:
        return pickle.load(f, encoding="latin1")


def summary(refs: list[dict]) -> list[dict]:
    return [
        {
            "ref_id": r["ref_id"],
            "ann_id": r["ann_id"],
            "image_id": r["image_id"],
            "split": r["split"],
            "sentences": [
                [s["sent_id"], s["sent"], s["raw"], s["tokens"]] for s in r["sentences"]
            ],
        }
        for r in refs
    ]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    refs = load(ROOT / "sample/refcocog/annotations/refs(umd).p")
    expected = {}
    for protocol in (0, 2, 4):
        name = f"refs-protocol{protocol}.p"
        (OUT / name).write_bytes(pickle.dumps(refs, protocol=protocol))
        expected[name] = summary(load(OUT / name))
    shared = load(ROOT / "sample/refcocog/annotations/refs(umd).p")
    for r in shared:
        tokens = r["sentences"][0]["tokens"]
        for s in r["sentences"]:
            s["tokens"] = tokens
    name = "refs-shared-tokens.p"
    (OUT / name).write_bytes(pickle.dumps(shared, protocol=2))
    expected[name] = summary(load(OUT / name))
    (OUT / "expected.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
