#!/usr/bin/env bash
# GPU checks for the reference node (one H100, no network; see ../shared/PLATFORMS.md), in stages
# of at most 5 minutes each so a lent machine's time is spent on one short, prepared script:
#   benchmarks/gpu-check.sh build     # configure (CUDA ON, sm_90) and build everything, 16 cores
#   benchmarks/gpu-check.sh test      # the gpu-labelled tests with TAILOR_REQUIRE_GPU=1 (a skip fails):
#                                     # kernels, CudaOps, GPU training (bf16 vs CPU f32, f32 mode,
#                                     # run-to-run identity), TP=2 on one GPU; JUnit in tests.xml
#   benchmarks/gpu-check.sh tests     # build only what the gpu tests need, then test (one stage)
#   benchmarks/gpu-check.sh all       # build, then test
#   benchmarks/gpu-check.sh kernels   # only the kernel tests: builds gpu_test alone and runs it as one
#                                     # process (one CUDA context), JSON report in kernels.json
# A stage may also be named as `--stage NAME`.
# Logs go to $OUT (the device tool's output folder) when set, else build-gpu/logs.
# Later stages (bench-1b, bench-8b) arrive with the CUDA backend and GPU-performance work.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${TAILOR_GPU_BUILD_DIR:-build-gpu}
log_dir=${OUT:-$build_dir/logs}
mkdir -p "$log_dir"
jobs=$(nproc)

configure() {
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAILOR_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90
}

stage_build() {
  nvidia-smi > "$log_dir/nvidia-smi.txt" 2>&1 || true
  { configure && timeout 280 cmake --build "$build_dir" -j "$jobs"; } 2>&1 | tee "$log_dir/build.log"
}

# Kernel tests only (kernels/ against the CPU backend): the shortest GPU check.
stage_kernels() {
  nvidia-smi > "$log_dir/nvidia-smi.txt" 2>&1 || true
  { configure && timeout 240 cmake --build "$build_dir" -j "$jobs" --target gpu_test; } 2>&1 |
    tee "$log_dir/build-kernels.log"
  TAILOR_REQUIRE_GPU=1 timeout 120 "$build_dir/tests/gpu/gpu_test" \
    --gtest_output="json:$log_dir/kernels.json" 2>&1 | tee "$log_dir/test-kernels.log"
}

stage_test() {
  # The kernel tests as one process (one CUDA context instead of one per test case), then the
  # other gpu-labelled tests one at a time (they share the GPU and each owns a context).
  TAILOR_REQUIRE_GPU=1 timeout 120 "$build_dir/tests/gpu/gpu_test" \
    --gtest_output="json:$log_dir/kernels.json" 2>&1 | tee "$log_dir/test-kernels.log"
  TAILOR_REQUIRE_GPU=1 timeout 240 ctest --test-dir "$build_dir" -L gpu -E '^kernel[.]' \
    --output-on-failure --output-junit "$log_dir/tests.xml" 2>&1 | tee "$log_dir/test-gpu.log"
}

# Build the gpu-labelled test programs only (and the CLI), then run them.
stage_tests() {
  nvidia-smi > "$log_dir/nvidia-smi.txt" 2>&1 || true
  { configure && timeout 200 cmake --build "$build_dir" -j "$jobs" \
      --target gpu_test gpu_train_test gpu_tp_test tailor; } 2>&1 | tee "$log_dir/build-tests.log"
  stage_test
}

if [[ "${1:-}" == "--stage" ]]; then shift; fi
case "${1:-all}" in
  build) stage_build ;;
  test) stage_test ;;
  kernels) stage_kernels ;;
  tests) stage_tests ;;
  all) stage_build && stage_test ;;
  *) echo "usage: $0 [--stage] build|test|tests|kernels|all" >&2; exit 2 ;;
esac
