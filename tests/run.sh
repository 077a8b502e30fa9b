#!/usr/bin/env bash
# Builds Tailor and runs the whole CTest suite, then the fuzzers; exits non-zero on any failure.
# Installs the Debian packages the build needs first, when some are missing (launch/setup.sh).
#   tests/run.sh                 # everything (labels cpu, mpi, gpu, slow; gpu tests skip without a
#                                # GPU), then every fuzzer for TAILOR_FUZZ_SECONDS (tests/fuzz)
#   tests/run.sh -L cpu -LE slow # extra arguments go to ctest (and leave the fuzzers out)
# Environment: TAILOR_BUILD_DIR (default build), TAILOR_CMAKE_ARGS (extra configure flags),
# TAILOR_FUZZ (1: run the fuzzers even with ctest arguments, 0: never), TAILOR_FUZZ_SECONDS (60),
# TAILOR_FUZZ_BUILD_DIR (build-fuzz: the instrumented Clang build, tests/fuzz/run_fuzzers.sh).
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
reports=("$build_dir/ctest-junit.xml")
# The fuzzers (label fuzz, in their own instrumented build): with the whole suite, not with a
# selection of it, unless TAILOR_FUZZ says otherwise.
fuzz=${TAILOR_FUZZ:-$([[ $# -eq 0 ]] && echo 1 || echo 0)}
if [[ "$fuzz" == 1 ]]; then
  tests/fuzz/run_fuzzers.sh || status=$?
  reports+=("${TAILOR_FUZZ_BUILD_DIR:-build-fuzz}/ctest-junit.xml")
fi
# How many tests were skipped, and why (a skip is never reported as a pass: tests/common/test_main.cpp).
python3 tests/skip_summary.py "${reports[@]}"
exit "$status"
