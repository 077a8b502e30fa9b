// A step-time model of one training step on a GPU: every op of the step as the CUDA path is
// designed to run it (issue 20: tensor-core GEMMs and fused attention, one pass per
// memory-bound op), each with its FLOPs and the bytes it reads and writes, and the time it would
// take at the card's measured ceilings (a roofline: max(FLOPs / GEMM ceiling, bytes / memory
// ceiling)). docs/gpu.md states the assumptions and the figures for the Llama-3.2-1B shapes.
//
// Ops carry the name of the backend op that runs them (`kind`: gemm, attention_forward, ...),
// so a profile measured per backend op (TAILOR_PROFILE=1, profiling_ops.h) lines up with it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "model/model_spec.h"

namespace tailor::bench {

// The benchmark presets: llama-3.2-1b, llama-3.1-8b, gemma3-head, small, tiny.
[[nodiscard]] model::ModelSpec preset_spec(const std::string& name);

struct Ceilings {
  double gemm_tflops = 800.0;       // bf16 dense GEMM, measured on the H100 (8192^3)
  double attention_tflops = 400.0;  // fused attention (assumed: half the GEMM ceiling)
  double memory_tbs = 3.0;          // bytes read plus written per second
  double launch_us = 0.0;           // per kernel (0: the step is captured as a CUDA graph)
};

struct StepShape {
  std::int64_t batch = 8, seq = 1024;
  std::int64_t lora_rank = 0;        // 0: full fine-tuning
  int activation_bytes = 2;          // bf16 activations and weights
  bool bf16_moments = false;         // optimizer.moments: bf16
  // LoRA through merged weights: W' = W + s B A (bf16) is formed once per step and both the
  // forward and dX use it, so only u = x A^T, g = dY B and the dA/dB GEMMs remain (instead of
  // the adapter's own passes beside every base GEMM).
  bool lora_merged = false;
};

struct ModeledOp {
  std::string name;   // what it computes, e.g. "layer.qkv forward"
  std::string kind;   // the backend op that runs it (Ops member name)
  double count = 1;   // how many times per step (layers x ...)
  double flops = 0;   // per call
  double bytes = 0;   // per call, read plus written
  [[nodiscard]] double seconds(const Ceilings& c) const;  // per call, roofline
};

// Every op of one training step (forward, loss, backward, gradient norm, optimizer).
[[nodiscard]] std::vector<ModeledOp> model_step(const model::ModelSpec& spec, const StepShape& s);

struct StepEstimate {
  double flops = 0, bytes = 0, seconds = 0, tokens_per_s = 0;
};
[[nodiscard]] StepEstimate estimate(const std::vector<ModeledOp>& ops, const StepShape& s,
                                    const Ceilings& c);

// The modeled ops as a table (name, kind, calls, GFLOP, MB, ms at the ceilings, share), largest
// first, to `out`; returns the same as JSON.
[[nodiscard]] std::string print_step_model(std::FILE* out, const std::vector<ModeledOp>& ops,
                                           const StepShape& s, const Ceilings& c);

}  // namespace tailor::bench
