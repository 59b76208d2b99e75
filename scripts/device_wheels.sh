#!/usr/bin/env bash
# Download, into .whl/, the wheels the lent GPU machine lacks (its Python is 3.12, x86-64; it has
# torch, transformers, accelerate, scikit-learn and Pillow but not these), at the versions this
# checkout's .venv runs, so that scripts/device_checks.sh runs the same code there. Needs the
# package registry (pip's normal client); run it once per checkout. .whl/ is kept out of git.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
packages=(diffusers pydantic pydantic-core annotated-types typing-inspection importlib-metadata
  inflect jaraco.functools more-itertools typeguard)
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info && echo '/.whl/' >> .git/info/exclude; }
mkdir -p .whl
for name in "${packages[@]}"; do
  version="$("$py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$name==$version"
done
ls -1 .whl
du -sh .whl
