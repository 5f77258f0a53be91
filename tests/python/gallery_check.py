"""Open a refaug gallery in headless Chromium and check what it shows against the shards.

Usage: gallery_check.py CHROMIUM SITE_DIR OUT_DIR EXPECTED_CARDS SAMPLE_REF_ID SCREENSHOT.png
(run by tests/gallery.rs).

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: messages are
JSON terminated by a NUL byte, the browser reads fd 3 and writes fd 4), standard library only.
Checks, each against something the page did not compute:
- the page loads from file:// with no exception, console error or failed load (Runtime and Log
  events);
- it shows EXPECTED_CARDS cards, in the order of data.js (written by refaug: the page re-sorts the
  cards itself with the same rule, so this checks gallery.js against select.rs);
- for the sampled ref and the first card, every drawn box (each proposal, the best, the ground
  truth) has the corners the Parquet shards hold, read here with pyarrow, exactly as float32;
- moving the score slider to 0.5 hides exactly the proposals whose Parquet score is below 0.5
  (float32), and the keys j and ] move to the next card and raise the threshold;
- every thumbnail of the first card loaded, and the screenshot is not blank.
A box counts as shown when it has a rendered box (`getClientRects()`): Chromium's
`checkVisibility()` says true for SVG shapes inside a `display: none` group.
Prints "gallery_check: ok" and a JSON summary.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

TIMEOUT_S = 60.0


class Browser:
    """A headless Chromium and one page of it, spoken to over the DevTools pipe."""

    def __init__(self, chromium: str) -> None:
        self.profile = tempfile.TemporaryDirectory()
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:
            # Copies above 4 first, so that dup2 onto 3 and 4 never clobbers its own source;
            # dup2's targets are inheritable, the originals are not.
            r, w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--remote-debugging-pipe",
                f"--user-data-dir={self.profile.name}",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,  # noqa: PLW1509 (this script starts no threads; the DevTools pipe needs fds 3 and 4)
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.next_id = 0
        self.session = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                self.messages.put(json.loads(message))

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: bool = True
    ) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {
            "id": self.next_id,
            "method": method,
            "params": params or {},
        }
        if session:
            message["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            self.events.append(event)
            if event.get("method") == method:
                return event

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 1400, "deviceScaleFactor": 1, "mobile": False},
        )

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str) -> Any:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(
            f"timed out waiting for {expression}; the page reported {self.problems()}"
        )

    def key(self, key: str) -> None:
        for kind in ("keyDown", "keyUp"):
            params: dict[str, Any] = {"type": kind, "key": key}
            if kind == "keyDown":
                params["text"] = key
            self.call("Input.dispatchKeyEvent", params)

    def problems(self) -> list[str]:
        """Exceptions, console errors and failed loads seen so far."""
        self.drain()
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
            ):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(
                    f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}"
                )
        return found

    def drain(self) -> None:
        while True:
            try:
                self.events.append(self.messages.get_nowait())
            except queue.Empty:
                return

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        except (RuntimeError, queue.Empty, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.profile.cleanup()


def parquet_row(out: Path, variant: str, ref_id: int) -> dict[str, Any] | None:
    """The row of `ref_id` in a variant, read from its shards (manifest.json lists them)."""
    manifest = json.loads((out / variant / "manifest.json").read_text())
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            table = pq.read_table(out / variant / shard["file"])
            ids = table.column("ref_id").to_pylist()
            if ref_id in ids:
                row: dict[str, Any] = table.slice(ids.index(ref_id), 1).to_pylist()[0]
                return row
    return None


PATH_RE = re.compile(r"^M (\S+) (\S+) H (\S+) V (\S+) H (\S+) Z$")


def corners(d: str) -> list[np.float32]:
    """The xyxy of a box path `M x0 y0 H x1 V y1 H x0 Z`, as float32."""
    m = PATH_RE.match(d)
    assert m, f"not a box path: {d!r}"
    assert m.group(5) == m.group(1), f"not closed on its left edge: {d!r}"
    return [np.float32(float(m.group(i))) for i in (1, 2, 3, 4)]


def xyxy(box: dict[str, Any]) -> list[np.float32]:
    return [np.float32(box[k]) for k in ("xmin", "ymin", "xmax", "ymax")]


PANEL_JS = """
(() => {
  const card = document.getElementById('ref-%d');
  return Array.from(card.querySelectorAll('.panel')).map(p => ({
    variant: p.getAttribute('data-variant'),
    proposals: Array.from(p.querySelectorAll('.layer-all g.box')).map(g => ({
      index: Number(g.getAttribute('data-index')),
      d: g.querySelector('path').getAttribute('d'),
      visible: g.querySelector('path').getClientRects().length > 0,
    })),
    best: Array.from(p.querySelectorAll('.layer-best path')).map(x => x.getAttribute('d')),
    gt: Array.from(p.querySelectorAll('.layer-gt path')).map(x => x.getAttribute('d')),
  }));
})()
"""


def check_boxes(
    browser: Browser, out: Path, ref_id: int, threshold: float | None
) -> int:
    """Every box of a card against the Parquet; with `threshold`, which proposals are visible.
    Returns the number of boxes checked."""
    checked = 0
    for panel in browser.evaluate(PANEL_JS % ref_id):
        row = parquet_row(out, panel["variant"], ref_id)
        if row is None:
            assert not panel["proposals"] and not panel["gt"], (
                f"ref {ref_id} {panel['variant']}: drawn without a row"
            )
            continue
        where = f"ref {ref_id} variant {panel['variant']}"
        proposals = row["proposals"]
        assert [p["index"] for p in panel["proposals"]] == list(
            range(len(proposals))
        ), where
        for drawn, stored in zip(panel["proposals"], proposals, strict=True):
            assert corners(drawn["d"]) == xyxy(stored), (
                f"{where}: {drawn['d']} vs {stored}"
            )
            if threshold is not None:
                expect = bool(np.float32(stored["score"]) >= np.float32(threshold))
                assert drawn["visible"] == expect, (
                    f"{where}: score {stored['score']} at {threshold}: {drawn}"
                )
            checked += 1
        assert len(panel["gt"]) == 1 and corners(panel["gt"][0]) == xyxy(
            row["gt_box"]
        ), where
        if row["best_index"] is None:
            assert panel["best"] == [], where
        else:
            assert len(panel["best"]) == 1, where
            assert corners(panel["best"][0]) == xyxy(proposals[row["best_index"]]), (
                where
            )
        checked += 2
    return checked


def main() -> None:
    chromium, site, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    expected_cards, sample, screenshot = (
        int(sys.argv[4]),
        int(sys.argv[5]),
        Path(sys.argv[6]),
    )
    data_text = (site / "data.js").read_text()
    data = json.loads(data_text[data_text.index("{") : data_text.rindex("}") + 1])

    browser = Browser(chromium)
    try:
        browser.open_page()
        browser.call("Page.navigate", {"url": (site / "index.html").resolve().as_uri()})
        browser.wait_event("Page.loadEventFired")
        browser.wait_for("document.body.getAttribute('data-ready') === '1'")

        cards = browser.evaluate(
            "Array.from(document.querySelectorAll('article.card')).map(c => Number(c.dataset.refId))"
        )
        visible = browser.evaluate(
            "Array.from(document.querySelectorAll('article.card')).filter(c => c.getClientRects().length > 0).length"
        )
        assert len(cards) == expected_cards, (
            f"{len(cards)} cards, expected {expected_cards}"
        )
        assert visible == expected_cards, (
            f"{visible} visible cards, expected {expected_cards}"
        )
        assert cards == [r["ref_id"] for r in data["refs"]], (
            "the page's order differs from refaug's"
        )

        # Every proposal drawn (the `a` key), then the slider: a user's drag sets the value and
        # fires `input`.
        browser.key("a")
        checked = check_boxes(browser, out, sample, 0.0) + check_boxes(
            browser, out, cards[0], 0.0
        )
        browser.evaluate(
            "(() => { const s = document.getElementById('score'); s.value = '0.5';"
            " s.dispatchEvent(new Event('input', {bubbles: true})); })()"
        )
        check_boxes(browser, out, sample, 0.5)
        check_boxes(browser, out, cards[0], 0.5)
        hidden_visible = browser.evaluate(
            "(() => { const ps = Array.from(document.querySelectorAll('.layer-all g.box path'));"
            " const shown = ps.filter(p => p.getClientRects().length > 0).length;"
            " return [ps.length - shown, shown]; })()"
        )
        assert hidden_visible[0] > 0 and hidden_visible[1] > 0, (
            f"the slider at 0.5 hides/shows {hidden_visible}"
        )

        # Keys: j twice goes to the second card; ] raises the threshold by 0.05.
        browser.evaluate("document.activeElement && document.activeElement.blur()")
        browser.key("j")
        browser.key("j")
        focused = browser.evaluate(
            "document.activeElement && document.activeElement.dataset.refId"
        )
        assert focused == str(cards[1]), (
            f"after j j the focus is on {focused}, expected ref {cards[1]}"
        )
        browser.key("]")
        assert browser.evaluate("document.getElementById('score').value") == "0.55"
        check_boxes(browser, out, cards[1], 0.55)

        browser.evaluate("window.scrollTo(0, 0)")
        browser.wait_for(
            "Array.from(document.querySelectorAll('article.card')[0].querySelectorAll('img'))"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        shot = browser.call("Page.captureScreenshot", {"format": "png"})
        png = base64.b64decode(shot["data"])
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(png)
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
        assert pixels.std() > 20 and colours > 200, (
            f"blank screenshot: std {pixels.std():.1f}, {colours} colours"
        )

        problems = browser.problems()
        assert not problems, "the page reported problems:\n" + "\n".join(problems)
    finally:
        browser.close()
    print("gallery_check: ok")
    print(
        json.dumps(
            {
                "cards": len(cards),
                "boxes_checked": checked,
                "slider_0.5_hidden_visible": hidden_visible,
                "screenshot": str(screenshot),
                "screenshot_colours": colours,
            }
        )
    )


if __name__ == "__main__":
    main()
