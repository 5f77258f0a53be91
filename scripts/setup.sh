#!/usr/bin/env bash
# Idempotent project set-up: a project-local Python environment (.venv) with the pinned ONNX Runtime
# (libonnxruntime.so, loaded by refaug at run time) and the Python packages the tests use.
# Quick when nothing changed: the installed requirements are stamped with their sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

req=scripts/python-requirements.txt
venv=.venv
stamp="$venv/.refaug-requirements.sha256"
want=$(cat "$req" train/pyproject.toml | sha256sum | cut -d' ' -f1)

command -v python3 >/dev/null || { echo "setup: python3 is required (3.10 or newer)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "setup: cargo is required (https://rustup.rs)" >&2; exit 1; }

# The gallery's browser test drives a headless Chromium: Debian's package, installed here when we
# may (root with apt-get, as in CI); elsewhere the test says loudly that it skipped.
have_browser() {
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
    || command -v google-chrome >/dev/null || [ -n "${REFAUG_CHROMIUM:-}" ]
}
if ! have_browser && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Debian's chromium for the gallery's browser test" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! have_browser; then
  echo "setup: no chromium: the gallery's browser test will be SKIPPED (Debian: apt-get install chromium)" >&2
fi

# libjpeg-turbo's SIMD kernels (the JPEG decoder, via mozjpeg-sys's `nasm_simd`) are assembled with
# nasm: Debian's package, installed here when we may. Without it the build falls back to the C
# kernels (same pixels, about half the decoding speed).
if ! command -v nasm >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Debian's nasm for libjpeg-turbo's SIMD JPEG decoding" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nasm >/dev/null
fi
if ! command -v nasm >/dev/null; then
  echo "setup: no nasm: JPEG decoding will be built WITHOUT libjpeg-turbo's SIMD (same pixels, slower; Debian: apt-get install nasm)" >&2
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi

echo "setup: creating $venv with the pinned packages of $req" >&2
if ! python3 -m venv "$venv" 2>/dev/null; then
  # Debian/Ubuntu without python3-venv: make the venv without pip and bootstrap pip into it.
  rm -rf "$venv"
  python3 -m venv --without-pip "$venv"
  python3 -m pip --python "$venv/bin/python" install -q pip
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
# The training module (train/), editable; its dependencies are the pins above.
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e train
"$venv/bin/python" - <<'PY'
import onnxruntime, os, glob
lib = glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*"))
assert lib, "onnxruntime wheel has no libonnxruntime.so"
print(f"setup: ONNX Runtime {onnxruntime.__version__} at {lib[0]}", flush=True)
PY
echo "$want" >"$stamp"
