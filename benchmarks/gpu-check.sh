#!/usr/bin/env bash
# GPU checks for the reference node (one H100, no network; see ../shared/PLATFORMS.md), in stages
# of at most 5 minutes each so a lent machine's time is spent on one short, prepared script:
#   benchmarks/gpu-check.sh build     # configure (CUDA ON, sm_90) and build everything, 16 cores
#   benchmarks/gpu-check.sh test      # the gpu-labelled tests with TAILOR_REQUIRE_GPU=1 (a skip fails):
#                                     # kernels, CudaOps, GPU training (bf16 vs CPU f32, f32 mode,
#                                     # run-to-run identity), TP=2 on one GPU; JUnit in tests.xml
#   benchmarks/gpu-check.sh tests     # build only what the gpu tests need, then test (one stage)
#   benchmarks/gpu-check.sh all       # build, then test
#   benchmarks/gpu-check.sh kernels   # only the kernel tests: builds gpu_test and the op registry's
#                                     # test, runs each as one process (one CUDA context), JSON
#                                     # reports in kernels.json and registry.json
#   benchmarks/gpu-check.sh ops       # the op registry's perf mode on the GPU (GB/s, TFLOP/s per op)
# A stage may also be named as `--stage NAME`.
# Logs go to $OUT (the device tool's output folder) when set, else build-gpu/logs.
#   benchmarks/gpu-check.sh bench-1b  # training throughput, Llama-3.2-1B shapes: Tailor full and
#                                     # LoRA vs HF torch.compile (train_step_compare.py), JSON
#   benchmarks/gpu-check.sh bench-8b  # LoRA on Llama-3.1-8B shapes, T=2048, B=1 and 2, vs HF+PEFT
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
  { configure && timeout 240 cmake --build "$build_dir" -j "$jobs" --target gpu_test \
      backend_ops_test; } 2>&1 | tee "$log_dir/build-kernels.log"
  TAILOR_REQUIRE_GPU=1 timeout 120 "$build_dir/tests/gpu/gpu_test" \
    --gtest_output="json:$log_dir/kernels.json" 2>&1 | tee "$log_dir/test-kernels.log"
  registry_cuda
}

# Every op of the registry (tests/backend/op_table.cpp) on CUDA f32 and bf16 against the CPU in
# f64, as one process.
registry_cuda() {
  TAILOR_REQUIRE_GPU=1 timeout 60 "$build_dir/tests/backend/backend_ops_test" \
    --gtest_filter='*_cuda_*' --gtest_output="json:$log_dir/registry.json" 2>&1 |
    tee "$log_dir/test-registry.log"
}

# The registry's perf mode on the GPU (copy_widen on cuda_f32 is a plain device-to-device copy:
# the bandwidth reference of the same run).
stage_ops() {
  { configure && timeout 200 cmake --build "$build_dir" -j "$jobs" --target tailor_bench_backend_ops; } \
    2>&1 | tee "$log_dir/build-ops.log"
  timeout 240 "$build_dir/benchmarks/tailor_bench_backend_ops" --backend cuda_f32,cuda_bf16 \
    2>&1 | tee "$log_dir/ops.log"
}

stage_test() {
  # The kernel tests as one process (one CUDA context instead of one per test case), then the
  # other gpu-labelled tests one at a time (they share the GPU and each owns a context).
  TAILOR_REQUIRE_GPU=1 timeout 120 "$build_dir/tests/gpu/gpu_test" \
    --gtest_output="json:$log_dir/kernels.json" 2>&1 | tee "$log_dir/test-kernels.log"
  registry_cuda
  TAILOR_REQUIRE_GPU=1 timeout 240 ctest --test-dir "$build_dir" -L gpu -E '^kernel[.]' \
    --output-on-failure --output-junit "$log_dir/tests.xml" 2>&1 | tee "$log_dir/test-gpu.log"
}

# Build the gpu-labelled test programs only (and the CLI), then run them.
stage_tests() {
  nvidia-smi > "$log_dir/nvidia-smi.txt" 2>&1 || true
  { configure && timeout 200 cmake --build "$build_dir" -j "$jobs" \
      --target gpu_test backend_ops_test gpu_train_test gpu_tp_test tailor; } 2>&1 | tee "$log_dir/build-tests.log"
  stage_test
}

# Throughput against the Hugging Face references on this warm machine (build stage first).
stage_bench() {
  { configure && timeout 120 cmake --build "$build_dir" -j "$jobs" --target tailor_bench_train_step; } \
    2>&1 | tee "$log_dir/build-bench.log"
  timeout 280 python3 benchmarks/train_step_compare.py --stage "$1" --build "$build_dir" \
    --out "$log_dir" 2>&1 | tee "$log_dir/$1.log"
}

if [[ "${1:-}" == "--stage" ]]; then shift; fi
case "${1:-all}" in
  build) stage_build ;;
  test) stage_test ;;
  kernels) stage_kernels ;;
  ops) stage_ops ;;
  tests) stage_tests ;;
  bench-1b|bench-8b) stage_bench "$1" ;;
  all) stage_build && stage_test ;;
  *) echo "usage: $0 [--stage] build|test|tests|kernels|ops|bench-1b|bench-8b|all" >&2; exit 2 ;;
esac
