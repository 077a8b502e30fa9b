#include "model/model_spec.h"

#include <fmt/format.h>

#include "core/error.h"

namespace tailor::model {

void ModelSpec::check() const {
  TAILOR_ASSERT(vocab_size > 0 && hidden_size > 0 && num_layers > 0 && num_heads > 0 &&
                    num_kv_heads > 0 && head_dim > 0 && intermediate_size > 0,
                "model dimensions must be positive");
  TAILOR_ASSERT(num_heads % num_kv_heads == 0, "num_heads {} % num_kv_heads {} != 0", num_heads,
                num_kv_heads);
  TAILOR_ASSERT(position != PositionType::kRope || head_dim % 2 == 0, "RoPE needs an even head_dim");
  TAILOR_ASSERT(vocab_multiple > 0, "vocab_multiple must be positive");
}

std::int64_t ModelSpec::num_parameters() const noexcept {
  const std::int64_t d = hidden_size;
  const std::int64_t norm_params = norm == NormType::kLayerNorm ? 2 * d : d;
  std::int64_t attn = d * q_dim() + 2 * d * kv_dim() + q_dim() * d;
  if (attention_bias) attn += q_dim() + 2 * kv_dim() + d;
  const std::int64_t mlp_mats = mlp == MlpType::kSwiGLU ? 3 : 2;
  std::int64_t mlp_params = mlp_mats * d * intermediate_size;
  if (mlp_bias) mlp_params += (mlp_mats - 1) * intermediate_size + d;
  const std::int64_t layer = 2 * norm_params + attn + mlp_params;
  std::int64_t total = num_layers * layer + norm_params + vocab_size * d;
  if (!tie_embeddings) total += vocab_size * d;
  if (position == PositionType::kLearned) total += max_position_embeddings * d;
  return total;
}

std::string ModelSpec::summary() const {
  return fmt::format(
      "{} layers, hidden {}, heads {}/{} (q/kv) x {}, {} {}, {} positions, {} norm, vocab {} "
      "(padded {}){}, {:.2f}M parameters",
      num_layers, hidden_size, num_heads, num_kv_heads, head_dim,
      mlp == MlpType::kSwiGLU ? "SwiGLU" : "GELU", intermediate_size,
      position == PositionType::kRope ? "RoPE" : "learned",
      norm == NormType::kRmsNorm ? "RMS" : "Layer", vocab_size, padded_vocab(),
      tie_embeddings ? ", tied head" : "", static_cast<double>(num_parameters()) / 1e6);
}

}  // namespace tailor::model
