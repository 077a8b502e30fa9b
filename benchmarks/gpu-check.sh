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
#   benchmarks/gpu-check.sh first-run # the first run on a fresh node, one stage within 7 minutes:
#                                     # GPU facts, the build, kernel tests by risk, cuDNN attention,
#                                     # GPU training tests, Tailor-only 1B steps and the attention
#                                     # ops (cuDNN vs Tailor's kernels); each
#                                     # result lands in $OUT at once, summary.txt says what
#                                     # passed, failed or did not run (docs/gpu.md)
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

# ---- first-run -----------------------------------------------------------------------------
# One stage for a fresh node with a short lease (about 7 minutes of its 15 on 16 cores). summary.txt
# lists every step from the start (NOT RUN), marks the one under way RUNNING and records each
# outcome the moment it ends, rewriting the file each time: a lease that ends mid-run, even with
# SIGKILL, leaves a summary that says what passed, what failed, what was running and what never
# started. Every step has its own timeout and log. Kernel tests run as separate processes in order
# of risk with TAILOR_CUDA_SYNC=1, so a bad launch is reported at the op that made it and does not
# poison the groups after it. The Hugging Face references are not rerun (their figures on the same
# cards are in ../shared/PLATFORMS.md).
first_run_steps=(gpu-info build kernels-memory kernels-gemm kernels-attention attention-cudnn
                 kernels-rest registry train-tests tp-test bench-1b-full bench-1b-lora
                 ops-attention)

first_run_record() {  # NAME STATUS [SECONDS] [DETAIL]: that step's line, rewritten in place
  local line
  line=$(printf '%-18s %-9s %6s  %s' "$1" "$2" "${3:+${3}s}" "${4:-}")
  awk -v name="$1" -v line="$line" '$1 == name { print line; next } { print }' \
    "$log_dir/summary.txt" > "$log_dir/summary.txt.tmp"
  mv "$log_dir/summary.txt.tmp" "$log_dir/summary.txt"
}

# run_step NAME TIMEOUT_S COMMAND...: output to NAME.log; PASS, FAIL (exit code) or TIMEOUT.
run_step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS rc=0
  first_run_record "$name" RUNNING "" "at most ${limit} s since $(date +%T)"
  echo "==== $name (at most ${limit} s): $*" | tee -a "$log_dir/first-run.log"
  # (through bash: a step may be one of the exported functions below)
  timeout --kill-after=10 "$limit" bash -c '"$@"' run_step "$@" > "$log_dir/$name.log" 2>&1 || rc=$?
  local dt=$((SECONDS - t0)) status=PASS
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then status=TIMEOUT; elif [[ $rc -ne 0 ]]; then status="FAIL($rc)"; fi
  first_run_record "$name" "$status" "$dt" "$(grep -m1 -E 'FAILED|error|Error' "$log_dir/$name.log" | cut -c1-120)"
  tail -n 3 "$log_dir/$name.log" | tee -a "$log_dir/first-run.log"
  return 0
}

# The GPU's facts, and whether two processes may share it (the TP test needs that).
first_run_info() {
  nvidia-smi -q > "$log_dir/nvidia-smi-q.txt" 2>&1 || return 1
  nvidia-smi --query-gpu=name,driver_version,compute_mode,clocks.sm,clocks.max.sm,memory.total \
    --format=csv
  nvcc --version | tail -n 2
}

first_run_kernels() {  # FILTER JSON
  TAILOR_REQUIRE_GPU=1 TAILOR_CUDA_SYNC=1 "$build_dir/tests/gpu/gpu_test" --gtest_filter="$1" \
    --gtest_output="json:$log_dir/$2"
}

first_run_bench() {  # METHOD LORA_RANK (profiled: the step-time model and time per op, in the log)
  TAILOR_PROFILE=1 "$build_dir/benchmarks/tailor_bench_train_step" --preset llama-3.2-1b --batch 4 --seq 1024 \
    --device cuda --lora-rank "$2" --warmup 1 --steps 3 > "$log_dir/bench-1b-$1.json"
}

first_run_build() {
  configure && cmake --build "$build_dir" -j "$jobs" --target gpu_test backend_ops_test \
    gpu_train_test gpu_tp_test tailor tailor_bench_train_step tailor_bench_backend_ops \
    cudnn_attention_test
}

# cuDNN's fused attention against the CPU and Tailor's kernels, its determinism and its
# fallbacks (tests/gpu/cudnn_attention_test.cpp). A build without cuDNN fails this step: the
# reference node has cuDNN, so its absence is a configuration problem to see at once.
first_run_cudnn() {
  grep -q 'Tailor cuDNN attention: ON' "$log_dir/build.log" ||
    { echo "this build has no cuDNN (configure printed no 'Tailor cuDNN attention: ON')"; return 1; }
  TAILOR_REQUIRE_GPU=1 TAILOR_CUDA_SYNC=1 "$build_dir/tests/gpu/cudnn_attention_test" \
    --gtest_output="json:$log_dir/attention-cudnn.json"
}

stage_first_run() {
  export build_dir log_dir jobs
  export -f configure first_run_info first_run_kernels first_run_bench first_run_build \
    first_run_cudnn
  {
    echo "first-run $(date -Is) commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    local name
    for name in "${first_run_steps[@]}"; do printf '%-18s %-9s\n' "$name" "NOT RUN"; done
  } > "$log_dir/summary.txt"
  trap 'echo "summary: $log_dir/summary.txt"; cat "$log_dir/summary.txt"' EXIT
  run_step gpu-info 30 first_run_info
  run_step build 240 first_run_build
  if [[ ! -x "$build_dir/tests/gpu/gpu_test" ]]; then return 1; fi
  # Risk order: memory and copies, then cuBLASLt (with unaligned operands and its fallback),
  # then attention (head dims up to 256), then everything else.
  run_step kernels-memory 60 first_run_kernels 'CudaOpsPlain.*:CudaOpsSyncMode.*:CastKernel.*' memory.json
  run_step kernels-gemm 60 first_run_kernels '*Gemm*' gemm.json
  run_step kernels-attention 60 first_run_kernels '*Attention*' attention.json
  run_step attention-cudnn 90 first_run_cudnn
  run_step kernels-rest 90 first_run_kernels \
    '-CudaOpsPlain.*:CudaOpsSyncMode.*:CastKernel.*:*Gemm*:*Attention*' rest.json
  run_step registry 60 env TAILOR_REQUIRE_GPU=1 "$build_dir/tests/backend/backend_ops_test" \
    --gtest_filter='*_cuda_*' --gtest_output="json:$log_dir/registry.json"
  run_step train-tests 120 env TAILOR_REQUIRE_GPU=1 "$build_dir/tests/gpu/gpu_train_test" \
    --gtest_output="json:$log_dir/train.json"
  # The TP test puts two processes on the one GPU: only when the compute mode allows it.
  local mode
  mode=$(nvidia-smi --query-gpu=compute_mode --format=csv,noheader 2>/dev/null | head -n1)
  if [[ "$mode" == "Default" ]]; then
    run_step tp-test 90 ctest --test-dir "$build_dir" -R '^gpu_tp_test' --output-on-failure
  else
    first_run_record tp-test SKIPPED 0 "compute mode '$mode' lets one process use the GPU"
  fi
  run_step bench-1b-full 90 first_run_bench full 0
  run_step bench-1b-lora 90 first_run_bench lora 16
  # cuda_bf16 runs cuDNN's fused attention on the causal cases, cuda_bf16_tailor Tailor's kernels
  # on the same shapes: the two timings side by side (the packed-document cases run Tailor's
  # kernels on both).
  run_step ops-attention 60 "$build_dir/benchmarks/tailor_bench_backend_ops" \
    --backend cuda_bf16,cuda_bf16_tailor,cuda_f32 --op attention_forward_causal \
    --op attention_backward_causal --op attention_forward --op attention_backward --min-time 0.5
}

if [[ "${1:-}" == "--stage" ]]; then shift; fi
case "${1:-all}" in
  build) stage_build ;;
  test) stage_test ;;
  kernels) stage_kernels ;;
  ops) stage_ops ;;
  tests) stage_tests ;;
  bench-1b|bench-8b) stage_bench "$1" ;;
  first-run) stage_first_run ;;
  all) stage_build && stage_test ;;
  *) echo "usage: $0 [--stage] first-run|build|test|tests|kernels|ops|bench-1b|bench-8b|all" >&2
     exit 2 ;;
esac
