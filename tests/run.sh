#!/usr/bin/env bash
# Builds Tailor and runs the whole CTest suite; exits non-zero on any failure.
# Installs the Debian packages the build needs first, when some are missing (launch/setup.sh).
#   tests/run.sh                 # everything (labels cpu, mpi, gpu, slow; gpu tests skip without a GPU)
#   tests/run.sh -L cpu -LE slow # extra arguments go to ctest
# Environment: TAILOR_BUILD_DIR (default build), TAILOR_CMAKE_ARGS (extra configure flags).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

launch/setup.sh
build_dir=${TAILOR_BUILD_DIR:-build}
jobs=$(nproc)
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release ${TAILOR_CMAKE_ARGS:-}
cmake --build "$build_dir" -j "$jobs"
status=0
ctest --test-dir "$build_dir" --output-on-failure --timeout 900 -j "$jobs" \
      --output-junit ctest-junit.xml "$@" || status=$?
# How many tests were skipped, and why (a skip is never reported as a pass: tests/common/test_main.cpp).
python3 tests/skip_summary.py "$build_dir/ctest-junit.xml"
exit "$status"
