// Helpers shared by the model tests: tiny specs and hand-made batches.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <gtest/gtest.h>
#include <vector>

#include "backend/tensor.h"
#include "model/transformer.h"

namespace tailor::model::testing {

inline ModelSpec tiny_llama() {
  ModelSpec s;
  s.vocab_size = 11;
  s.vocab_multiple = 8;  // padded to 16: exercises the masked padding columns
  s.hidden_size = 8;
  s.num_layers = 2;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 4;
  s.intermediate_size = 12;
  s.max_position_embeddings = 16;
  s.init_std = 0.3;  // large enough that every path carries signal
  return s;
}

inline ModelSpec tiny_gpt2() {
  ModelSpec s = tiny_llama();
  s.norm = NormType::kLayerNorm;
  s.position = PositionType::kLearned;
  s.mlp = MlpType::kGelu;
  s.attention_bias = true;
  s.o_bias = true;
  s.mlp_bias = true;
  s.tie_embeddings = true;
  s.num_kv_heads = 4;
  return s;
}

// tiny_llama with a sliding window of 2 on its second layer only (the first is global), as Qwen2
// and Gemma mix them.
inline ModelSpec tiny_sliding() {
  ModelSpec s = tiny_llama();
  s.sliding_window = 2;
  s.sliding_layers.push_back(false);  // (not `= {false, true}`: GCC 12 warns falsely on it)
  s.sliding_layers.push_back(true);
  return s;
}

// LLaMA-style with per-head q/k RMSNorm (Qwen3, Gemma 3) and a head_dim apart from hidden/heads
// (4 x 6 = 24 query columns over a hidden size of 8), as Qwen3 configures it explicitly.
inline ModelSpec tiny_qk_norm() {
  ModelSpec s = tiny_llama();
  s.qk_norm = true;
  s.head_dim = 6;
  return s;
}

// Gemma 3's layer (decision 46) on tiny_qk_norm: (1 + w) norms, sandwich norms, GeGLU,
// embeddings x sqrt(hidden) (rounded to f32), query_pre_attn_scalar 5 (not head_dim 6), a window
// of 2 on the first layer rotating with a RoPE base of its own, and a tied head.
inline ModelSpec tiny_gemma3() {
  ModelSpec s = tiny_qk_norm();
  s.mlp = MlpType::kGeGLU;
  s.norm_unit_offset = true;
  s.sandwich_norms = true;
  s.embedding_multiplier = static_cast<double>(std::sqrt(8.0f));
  s.query_pre_attn_scalar = 5.0;
  s.sliding_window = 2;
  s.sliding_layers.push_back(true);
  s.sliding_layers.push_back(false);
  s.rope_local_theta = 100.0;
  s.tie_embeddings = true;
  return s;
}

// Owns the i32 buffers of a batch.
struct HostBatch {
  backend::Buffer ids, targets, positions, doc_ids;
  Batch batch;

  HostBatch(std::int64_t b, std::int64_t t, const std::vector<std::int32_t>& ids_v,
            const std::vector<std::int32_t>& targets_v, const std::vector<std::int32_t>& pos_v,
            const std::vector<std::int32_t>& docs_v) {
    const Shape s{b * t};
    ids = backend::Buffer(DType::kI32, s);
    targets = backend::Buffer(DType::kI32, s);
    positions = backend::Buffer(DType::kI32, s);
    doc_ids = backend::Buffer(DType::kI32, s);
    for (std::int64_t i = 0; i < b * t; ++i) {
      const auto k = static_cast<std::size_t>(i);
      ids.ptr<std::int32_t>()[i] = ids_v[k];
      targets.ptr<std::int32_t>()[i] = targets_v[k];
      positions.ptr<std::int32_t>()[i] = pos_v[k];
      if (!docs_v.empty()) doc_ids.ptr<std::int32_t>()[i] = docs_v[k];
    }
    batch = {b, t, ids.tensor(), targets.tensor(), positions.tensor(),
             docs_v.empty() ? backend::Tensor{} : doc_ids.tensor()};
  }
};

// Two rows of 6 tokens; row 1 packs two documents; some targets ignored.
inline HostBatch sample_batch() {
  return HostBatch(2, 6, {1, 5, 3, 9, 2, 7, 4, 4, 10, 0, 6, 8},
                   {5, 3, 9, 2, 7, -100, 4, 10, -100, 6, 8, 3},
                   {0, 1, 2, 3, 4, 5, 0, 1, 2, 0, 1, 2},
                   {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1});
}

// Every trainable parameter's gradient (already computed) against central finite differences of
// `loss()`: normwise relative error < 1e-6 and a gradient that is not identically zero. Every
// element, or about `samples` evenly strided ones of a larger tensor (0: all). Returns how many
// parameters were checked.
template <typename Loss>
int expect_gradients_match_fd_of(Transformer& m, Loss&& loss, std::int64_t samples = 0) {
  const double h = 1e-5;
  int checked = 0;
  for (Parameter& p : m.params().all()) {
    if (!p.trainable) continue;
    double* v = p.value.ptr<double>();
    const double* g = p.grad.ptr<double>();
    double num = 0, den = 0;
    const std::int64_t n = p.shape.numel();
    const std::int64_t stride = samples > 0 ? std::max<std::int64_t>(1, n / samples) : 1;
    for (std::int64_t i = 0; i < n; i += stride) {
      const double saved = v[i];
      v[i] = saved + h;
      const double lp = loss();
      v[i] = saved - h;
      const double lm = loss();
      v[i] = saved;
      const double fd = (lp - lm) / (2 * h);
      num += (g[i] - fd) * (g[i] - fd);
      den += fd * fd;
    }
    EXPECT_LT(std::sqrt(num) / std::max(std::sqrt(den), 1e-12), 1e-6) << p.name;
    EXPECT_GT(den, 1e-16) << p.name;
    ++checked;
  }
  return checked;
}

// The same for the summed loss of `batch` (gradients from forward_backward with dscale 1).
inline int expect_trainable_gradients_match_fd(Transformer& m, const Batch& batch) {
  return expect_gradients_match_fd_of(m, [&] { return m.forward(batch); });
}

}  // namespace tailor::model::testing
