#!/usr/bin/env bash
# Builds the fuzz targets in their own instrumented configuration and runs each for a bounded time
# (CTest label fuzz; tests/fuzz/CMakeLists.txt). tests/run.sh calls it after the main suite.
#   tests/fuzz/run_fuzzers.sh                 # every fuzzer, TAILOR_FUZZ_SECONDS (60) each
#   tests/fuzz/run_fuzzers.sh -R checkpoint   # extra arguments go to ctest
# Environment: TAILOR_FUZZ_BUILD_DIR (default build-fuzz), TAILOR_FUZZ_SECONDS (default 60),
# TAILOR_FUZZ_CMAKE_ARGS (extra configure flags, e.g. a compiler launcher).
# Clang with libFuzzer's runtime is needed (launch/setup.sh installs clang and libclang-rt-dev).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

build_dir=${TAILOR_FUZZ_BUILD_DIR:-build-fuzz}
seconds=${TAILOR_FUZZ_SECONDS:-60}
jobs=$(nproc)
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DTAILOR_FUZZ=ON \
      -DTAILOR_FUZZ_SECONDS="$seconds" ${TAILOR_FUZZ_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$jobs" --target fuzz_targets
# One fuzzer per core at a time; each is one process (no -jobs/-workers).
ctest --test-dir "$build_dir" -L fuzz -j "$jobs" --output-on-failure \
      --output-junit ctest-junit.xml "$@"
