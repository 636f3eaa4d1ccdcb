#!/usr/bin/env bash
# Download the wheels a GPU machine without registry access needs for tuitune and bench/gpu_check.py.
#
#   bash scripts/gpu_wheels.sh DIR
#
# That machine has Python 3.12 (x86-64 Linux) with torch, transformers, peft and accelerate (and
# numpy, pandas, pyarrow, rich, psutil, nvidia-ml-py, ...); this fetches what tuitune needs beyond
# them, at the versions installed here (the ones the tests ran with), and checks they stay under
# 60 MiB in all (with the checkout, what travels to a lent machine must stay under 64 MiB). peft
# comes too (small; that image's version is not known here); transformers does not (13 MiB would
# break that limit): the lent H200's 5.17 runs the dry run's rehearsal here as 5.24 does. There,
# before running anything:
#
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site DIR/*.whl && export PYTHONPATH=/tmp/site:.
set -euo pipefail
dir=${1:?usage: bash scripts/gpu_wheels.sh DIR}
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
# bitsandbytes (QLoRA, 8-bit optimizers) is most of it; the others are small pure-Python wheels.
names="bitsandbytes peft datasets dill multiprocess textual textual-plotext plotext tomli-w gguf rich markdown-it-py mdit-py-plugins
linkify-it-py platformdirs"
mkdir -p "$dir"
for name in $names; do
  version=$("$python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$name")
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dir" "$name==$version"
done
"$python" - "$dir" <<'PY'
import sys
from pathlib import Path

wheels = sorted(Path(sys.argv[1]).glob("*.whl"))
total = sum(w.stat().st_size for w in wheels)
for w in wheels:
    print(f"{w.stat().st_size / 2**20:7.2f} MiB  {w.name}")
print(f"{len(wheels)} wheels, {total / 2**20:.1f} MiB in {sys.argv[1]} (limit 60 MiB)")
sys.exit(1 if total > 60 * 2**20 else 0)
PY
