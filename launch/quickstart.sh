#!/usr/bin/env bash
# The quickstart: installs what the build needs (if missing), builds the CPU-only `tailor`
# binary, and trains configs/quickstart.yaml — a tiny LLaMA-style model on a bundled public-domain
# text — in about a minute on 2 cores. Extra arguments are config overrides (key.path=value).
#   launch/quickstart.sh
#   launch/quickstart.sh train.steps=50 output.dir=runs/short
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

launch/setup.sh
build_dir=${TAILOR_QUICKSTART_BUILD_DIR:-build-cpu}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAILOR_CUDA=OFF \
  -DTAILOR_BUILD_TESTS=OFF -DTAILOR_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target tailor

# `tailor train` ends by printing "run directory: PATH" on stdout.
# --overwrite: running the quickstart again replaces its earlier run (runs/quickstart).
"$build_dir/tailor" train --overwrite configs/quickstart.yaml "$@"
