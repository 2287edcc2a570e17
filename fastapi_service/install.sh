#!/usr/bin/env bash
# Create or reuse the project's virtualenv and install the engine with pinned dependencies.
#   fastapi_service/install.sh [--dev]     VENV=/path overrides the venv location (default: .venv)
# Idempotent: a stamp file holding the hash of pyproject.toml, this script and the ONNX exporter
# skips work that is already done.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="${VENV:-$root/.venv}"
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
  done
fi
if [ -z "$python_bin" ] || ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "install: creating virtualenv $venv"
  "$python_bin" -m venv "$venv"
fi

stamp="$venv/.chatbot-platform-installed"
want="$(cat "$here/pyproject.toml" "$0" "$here/app/embedding/onnx_export.py" | sha256sum | cut -d' ' -f1)$extras"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "install: $venv is up to date"
  exit 0
fi

pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade "pip>=24"
# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
"${pip[@]}" install --quiet "torch==2.13.0"
"${pip[@]}" install --quiet -e "$here$extras"
# The ONNX graphs of EMBEDDING_BACKEND=onnx|onnx-int8, exported from the bundled weights (never
# downloaded) into $venv/share/chatbot-platform-engine/onnx with a sha256 manifest.
HF_HUB_OFFLINE=1 "$venv/bin/python" -m app.embedding.onnx_export
echo "$want" > "$stamp"
echo "install: done ($venv)"
