// The objectives' loss interface under tensor parallelism: per-token losses and a per-row
// weighted backward on a TP group of 2 or 4 ranks equal a single rank's in f64 (each TP shard of
// a gradient is the slice of the single-rank gradient), for a full model and for LoRA, with
// and without per-head q/k RMSNorm (whose replicated weights get partial gradients summed over
// the group), with replicated KV heads at TP = 4, and with a sliding window on one layer (packed
// rows).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "model/model_test_util.h"
#include "mpi_test_env.h"
#include "peft/lora.h"

namespace tailor::model {
namespace {

using tailor::testing::world;

void run(Transformer& m, backend::Ops& ops, const Batch& batch, const std::vector<double>& w,
         std::vector<double>& losses) {
  m.params().zero_grad(ops);
  const std::span<const double> l = m.forward_token_losses(batch);
  losses.assign(l.begin(), l.end());
  m.backward_rows(batch, w);
  m.finish_gradients();
}

struct Case {
  bool lora;
  bool qk_norm;  // per-head q/k RMSNorm: TP-local forward, weight gradients summed over the group
  bool sliding;  // a sliding window on the second layer
  std::int64_t chunk = 0;  // the sharded model's loss chunk (0: one; 5 of 12 tokens: vocab-parallel
                           // loss chunk by chunk)
  bool gemma3 = false;     // Gemma 3's layer (testing::tiny_gemma3): sandwich norms summed after
                           // the row-parallel reduction, GeGLU, a local RoPE base, tied head
};

class RowLossTp : public ::testing::TestWithParam<Case> {};

TEST_P(RowLossTp, ShardsEqualTheSingleRankResult) {
  const std::unique_ptr<comm::Communicator> tp = world().split(0, world().rank());
  backend::CpuOps ops(1);
  peft::LoraSpec lora;
  lora.rank = 2;
  lora.targets = {"all-linear"};
  const peft::Lora lora_method(lora);
  std::vector<const Attachment*> l;
  if (GetParam().lora) l.push_back(&lora_method);
  const ModelSpec spec = GetParam().gemma3    ? testing::tiny_gemma3()
                         : GetParam().qk_norm   ? testing::tiny_qk_norm()
                         : GetParam().sliding ? testing::tiny_sliding()
                                              : testing::tiny_llama();
  Transformer sharded(spec, ops, DType::kF64, tp.get(), l);
  Transformer single(spec, ops, DType::kF64, nullptr, l);
  sharded.set_loss_chunk_tokens(GetParam().chunk);
  for (Transformer* m : {&sharded, &single}) {
    m->init_parameters(17);
    for (Parameter& p : m->params().all())  // q/k norm weights away from 1, head by head
      if (p.name.ends_with("norm.weight") &&
          (p.name.find("self_attn") != std::string::npos || GetParam().gemma3))
        for (std::int64_t i = 0; i < p.shape.numel(); ++i)
          p.value.ptr<double>()[i] = 1.0 + 0.3 * std::sin(1.0 + static_cast<double>(i));
    for (Parameter& p : m->params().all())  // LoRA B away from zero, at global indices
      if (p.role == ParamRole::kAdapterOut)
        for (std::int64_t i = 0; i < p.shape.numel(); ++i)
          p.value.ptr<double>()[i] = 0.1 * std::cos(0.3 * static_cast<double>(p.global_index(i)));
  }
  const testing::HostBatch hb = testing::sample_batch();
  const std::vector<double> w = {0.7, -1.3};
  std::vector<double> l_sharded, l_single;
  run(sharded, ops, hb.batch, w, l_sharded);
  run(single, ops, hb.batch, w, l_single);
  ASSERT_EQ(l_sharded.size(), l_single.size());
  for (std::size_t i = 0; i < l_single.size(); ++i)
    EXPECT_NEAR(l_sharded[i], l_single[i], 1e-12 * (1.0 + std::abs(l_single[i]))) << "token " << i;
  int compared = 0;
  for (const Parameter& p : sharded.params().all()) {
    if (!p.trainable) continue;
    const Parameter& q = single.params().at(p.name);
    const double* g = p.grad.ptr<double>();
    const double* h = q.grad.ptr<double>();
    double num = 0.0, den = 0.0;
    bool real_rows = false;  // a shard of only vocabulary padding has a zero gradient
    // Vocabulary tables are padded to a multiple of 8 x T rows, so their global row count grows
    // with T: the rows the single rank lacks are padding, whose gradient must be zero.
    const std::int64_t cols = p.global_shape.cols();
    for (std::int64_t i = 0; i < p.shape.numel(); ++i) {
      const std::int64_t gi = p.global_index(i), row = gi / cols;
      real_rows = real_rows || row < q.shape.rows();
      const double ref = row < q.shape.rows() ? h[row * cols + gi % cols] : 0.0;
      num += (g[i] - ref) * (g[i] - ref);
      den += ref * ref;
    }
    EXPECT_LE(std::sqrt(num), 1e-10 * std::sqrt(den)) << p.name << " on TP rank " << tp->rank();
    if (real_rows) {
      EXPECT_GT(den, 0.0) << p.name;
    }
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

std::string case_name(const ::testing::TestParamInfo<Case>& p) {
  return std::string(p.param.lora ? "Lora" : "Full") + (p.param.qk_norm ? "QkNorm" : "") +
         (p.param.sliding ? "SlidingWindow" : "") + (p.param.chunk > 0 ? "Chunked" : "") + (p.param.gemma3 ? "Gemma3" : "");
}

INSTANTIATE_TEST_SUITE_P(FullAndLora, RowLossTp,
                         ::testing::Values(Case{false, false, false}, Case{true, false, false},
                                           Case{false, true, false}, Case{true, true, false},
                                           Case{false, false, true}, Case{true, false, true},
                                           Case{false, false, false, 5},
                                           Case{true, false, false, 5},
                                           Case{false, false, false, 0, true},
                                           Case{true, false, false, 0, true}),
                         case_name);

}  // namespace
}  // namespace tailor::model
