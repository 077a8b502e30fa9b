// ProfilingOps (TAILOR_PROFILE=1) is transparent — a model run through it computes the same bits
// — and counts every op it forwards, per backend op; and the step-time model's FLOPs equal the
// analytic counts of a training step (6 N P for full fine-tuning's GEMMs, 4 N P plus the
// adapters' for LoRA; attention 3.5 x the causal forward).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/profiling_ops.h"
#include "model_test_util.h"
#include "step_model.h"

namespace tailor::model {
namespace {

TEST(ProfilingOps, IsTransparentAndCountsEveryOp) {
  backend::CpuOps cpu(2);
  backend::ProfilingOps prof(cpu);
  EXPECT_EQ(prof.device(), backend::Device::kCpu);
  const testing::HostBatch hb = testing::sample_batch();
  std::vector<std::vector<unsigned char>> grads;
  std::vector<double> losses;
  for (backend::Ops* ops : {static_cast<backend::Ops*>(&cpu), static_cast<backend::Ops*>(&prof)}) {
    Transformer m(testing::tiny_llama(), *ops, DType::kF32);
    m.init_parameters(9);
    m.params().zero_grad(*ops);
    losses.push_back(m.forward_backward(hb.batch, 0.5));
    const backend::Tensor g = m.params().flat_grads();
    grads.emplace_back(g.bytes());
    std::memcpy(grads.back().data(), g.data, g.bytes());
  }
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(grads[0], grads[1]);

  prof.clear();
  EXPECT_TRUE(prof.report().empty());
  Transformer m(testing::tiny_llama(), prof, DType::kF32);
  m.init_parameters(9);
  prof.clear();
  (void)m.forward(hb.batch);
  const auto r = prof.report();
  // A forward: per layer the q, k, v, o, gate, up and down GEMMs, then the LM head's.
  ASSERT_TRUE(r.contains("gemm"));
  EXPECT_EQ(r.at("gemm").calls, 7 * testing::tiny_llama().num_layers + 1);
  EXPECT_EQ(r.at("attention_forward").calls, testing::tiny_llama().num_layers);
  EXPECT_EQ(r.at("rmsnorm_forward").calls, 2 * testing::tiny_llama().num_layers + 1);
  double total = 0;
  for (const auto& [kind, t] : r) {
    EXPECT_GT(t.calls, 0) << kind;
    EXPECT_GE(t.seconds, 0.0) << kind;
    total += t.seconds;
  }
  EXPECT_GT(total, 0.0);
  EXPECT_FALSE(r.contains("attention_backward"));  // a forward only
}

double kind_flops(const std::vector<bench::ModeledOp>& ops, const std::string& prefix) {
  double f = 0;
  for (const bench::ModeledOp& op : ops)
    if (op.kind.rfind(prefix, 0) == 0) f += op.count * op.flops;
  return f;
}

TEST(StepModel, FlopsEqualTheAnalyticCounts) {
  const ModelSpec s = bench::preset_spec("llama-3.2-1b");
  bench::StepShape shape;  // B = 8, T = 1024
  const double n = 8 * 1024.0, d = 2048, q = 2048, kv = 512, f = 8192, layers = 16;
  const double v = static_cast<double>(s.padded_vocab());
  const double linear = d * (q + 2 * kv) + q * d + 2 * d * f + f * d;  // per layer
  const double attention_fwd = 2 * n * 1024 * 32 * 64;                 // causal QK^T and PV
  const std::vector<bench::ModeledOp> full = bench::model_step(s, shape);
  EXPECT_NEAR(kind_flops(full, "gemm"), 6 * n * (layers * linear + v * d), 1e3);
  EXPECT_NEAR(kind_flops(full, "attention"), 3.5 * layers * attention_fwd, 1e3);

  shape.lora_rank = 16;
  const std::vector<bench::ModeledOp> lora = bench::model_step(s, shape);
  // q k v o gate up down: r (in + out) each, 2 FLOPs per multiply-add, forward (x A^T, u B^T)
  // and backward (dY B, g A, dB, dA): 6 N r (in + out) per adapter.
  const double adapter = 16 * ((d + q) + 2 * (d + kv) + (q + d) + 2 * (d + f) + (f + d));
  EXPECT_NEAR(kind_flops(lora, "gemm"),
              4 * n * (layers * linear + v * d) + 6 * n * layers * adapter, 1e3);
  // LoRA keeps no optimizer state for the base: its optimizer traffic is the adapters'.
  const bench::Ceilings c;
  EXPECT_LT(bench::estimate(lora, shape, c).seconds, bench::estimate(full, shape, c).seconds);
}

// GEMM bytes from the shapes: A and B read in bf16, C written, and read too where the epilogue
// takes an input C (the merged LoRA weight W' = W + s B A reads W; the unmerged base GEMM
// accumulates onto the adapter's output).
TEST(StepModel, GemmBytesCountTheInputCOnlyWhereTheEpilogueReadsIt) {
  const ModelSpec s = bench::preset_spec("llama-3.2-1b");
  bench::StepShape shape;
  shape.lora_rank = 16;
  const double n = 8 * 1024.0, d = 2048, q = 2048, kv = 512, r = 16, e = 2;
  const auto bytes_of = [](const std::vector<bench::ModeledOp>& ops, const std::string& name) {
    for (const bench::ModeledOp& op : ops)
      if (op.name == name) return op.bytes;
    ADD_FAILURE() << "no op " << name;
    return 0.0;
  };
  shape.lora_merged = true;
  const std::vector<bench::ModeledOp> merged = bench::model_step(s, shape);
  // [q, r] x [r, d] -> [q, d], reading W [q, d] beside writing W'.
  EXPECT_DOUBLE_EQ(bytes_of(merged, "layer.lora q merge W' = W + s B A"),
                   (q * r + r * d) * e + 2 * q * d * e);
  EXPECT_DOUBLE_EQ(bytes_of(merged, "layer.qkv forward"),
                   (n * d + d * (q + 2 * kv)) * e + n * (q + 2 * kv) * e);
  shape.lora_merged = false;
  const std::vector<bench::ModeledOp> unmerged = bench::model_step(s, shape);
  EXPECT_DOUBLE_EQ(bytes_of(unmerged, "layer.qkv forward"),
                   (n * d + d * (q + 2 * kv)) * e + 2 * n * (q + 2 * kv) * e);
  EXPECT_DOUBLE_EQ(bytes_of(unmerged, "layer.lora q u = x A^T"), (n * d + d * r) * e + n * r * e);
}

}  // namespace
}  // namespace tailor::model
