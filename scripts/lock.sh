#!/usr/bin/env bash
# Regenerates the lock files in requirements/ from pyproject.toml. Run it after changing a dependency range
# (`scripts/lock.sh`: keeps every pin that still fits) or to take upgrades (`scripts/lock.sh --upgrade`, or
# `--upgrade-package NAME`), then run scripts/test.sh and commit pyproject.toml and requirements/ together.
#
#   requirements/dev.txt      the package's dependencies + the `dev` extra: what CI and scripts/setup.sh install
#   requirements/runtime.txt  the package's dependencies only, constrained to dev.txt: what the image installs,
#                             at exactly the versions the tests ran with
#   requirements/sandbox.txt  the package's dependencies + the `sandbox` extra, constrained to dev.txt: what the demo
#                             (scripts/setup-demo.sh) installs, without the dev tools
#   requirements/build.txt    pip and pyproject's [build-system] requires: the installer and the wheel's backend
#
# Why uv (`uv pip compile`) and not pip-tools: the image is built for linux amd64 and arm64, and only uv resolves for
# a platform other than the one it runs on (`--python-platform aarch64-manylinux_2_36`); with `--only-binary` that
# resolution fails unless every pin has a wheel for that platform, so an arm64 build that would need a compiler is
# caught here, on an amd64 machine. pip-compile resolves for the running interpreter only. The output is the plain
# requirements format with every file's hash, so installing needs only pip (`pip install --require-hashes`): uv is a
# dev tool pinned in dev.txt, never in the image. It also resolves in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

UV=${UV:-.venv/bin/uv}
PIP=${PIP:-.venv/bin/pip}
# python:3.11-slim-bookworm (the Dockerfile's base) and this machine: CPython 3.11, glibc 2.36.
PYTHON_VERSION=3.11
GLIBC=2_36
compile=("$UV" pip compile --python-version "$PYTHON_VERSION" --only-binary :all: --generate-hashes --quiet
  --custom-compile-command scripts/lock.sh)
# The dev lock may hold an sdist where a dev tool has no wheel (blockbuster's forbiddenfruit): it is built on the
# amd64 machines that run the tests, never in the image, whose locks stay wheels-only.
compile_dev=("$UV" pip compile --python-version "$PYTHON_VERSION" --generate-hashes --quiet
  --custom-compile-command scripts/lock.sh)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# CI and developers run on linux amd64 only.
"${compile_dev[@]}" "$@" pyproject.toml --extra dev --python-platform "x86_64-manylinux_$GLIBC" -o requirements/dev.txt

# The image: one resolution per architecture; they must agree, so one file serves both (it holds every file's hash).
for arch in x86_64 aarch64; do
  cp requirements/runtime.txt "$scratch/runtime-$arch.txt" 2>/dev/null || true  # keep the current pins preferred
  "${compile[@]}" "$@" pyproject.toml --constraint requirements/dev.txt --python-platform "$arch-manylinux_$GLIBC" \
    -o "$scratch/runtime-$arch.txt"
done
if ! diff -u "$scratch/runtime-x86_64.txt" "$scratch/runtime-aarch64.txt"; then
  echo "lock: the runtime dependencies resolve differently on amd64 and arm64 (above); pin the difference" >&2
  exit 1
fi
cp "$scratch/runtime-x86_64.txt" requirements/runtime.txt

# The demo: the sandbox extra (moto) at the versions the tests ran with.
"${compile_dev[@]}" "$@" pyproject.toml --extra sandbox --constraint requirements/dev.txt \
  --python-platform "x86_64-manylinux_$GLIBC" -o requirements/sandbox.txt

python_bin=$(dirname "$UV")/python
"$python_bin" -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
  | { cat; echo pip; } >"$scratch/build.in"
cp requirements/build.txt "$scratch/build.txt" 2>/dev/null || true
"${compile[@]}" "$@" "$scratch/build.in" --python-platform "x86_64-manylinux_$GLIBC" -o "$scratch/build.txt"
sed "s|-r $scratch/build.in|pyproject.toml [build-system] requires, and the installer|" "$scratch/build.txt" \
  >requirements/build.txt

# What the image's build stage will do, for both architectures: pip finds a wheel for every pin and checks its hash.
# pip does not widen a --platform to older glibc versions, so every manylinux tag up to 2.36 is named.
for arch in x86_64 aarch64; do
  platforms=(--platform "manylinux1_$arch" --platform "manylinux2010_$arch" --platform "manylinux2014_$arch")
  for minor in $(seq 5 "${GLIBC#2_}"); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
  "$PIP" download --quiet --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
    "${platforms[@]}" --python-version "$PYTHON_VERSION" --implementation cp --abi "cp${PYTHON_VERSION/./}" \
    -r requirements/runtime.txt -r requirements/build.txt -d "$scratch/wheels-$arch" 2> >(grep -v "^WARNING: Location" >&2)
  echo "lock: $arch: $(find "$scratch/wheels-$arch" -name '*.whl' | wc -l) wheels for requirements/runtime.txt + build.txt"
done
for lock in requirements/*.txt; do
  echo "lock: $lock: $(grep -c '^[A-Za-z0-9]' "$lock") packages pinned"
done
