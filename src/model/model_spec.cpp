#include "model/model_spec.h"

#include <algorithm>
#include <cmath>
#include <numbers>

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
  TAILOR_ASSERT(rope_type == "default" || rope_type == "linear" || rope_type == "llama3" ||
                    rope_type == "yarn" || rope_type == "longrope",
                "unknown rope_type {}", rope_type);
  TAILOR_ASSERT(rope_type != "longrope" ||
                    (std::ssize(rope_short_factor) == head_dim / 2 &&
                     std::ssize(rope_long_factor) == head_dim / 2),
                "longrope needs head_dim / 2 short and long factors");
  TAILOR_ASSERT(sliding_window >= 0, "sliding_window {} < 0", sliding_window);
  TAILOR_ASSERT(sliding_layers.empty() ||
                    static_cast<std::int64_t>(sliding_layers.size()) == num_layers,
                "{} sliding-layer flags for {} layers", sliding_layers.size(), num_layers);
}

std::int64_t ModelSpec::attention_window(std::int64_t layer) const {
  TAILOR_ASSERT(layer >= 0 && layer < num_layers, "layer {} of {}", layer, num_layers);
  if (sliding_window == 0) return 0;
  if (sliding_layers.empty()) return sliding_window;
  return sliding_layers[static_cast<std::size_t>(layer)] ? sliding_window : 0;
}

bool ModelSpec::has_sliding_window() const {
  for (std::int64_t l = 0; l < num_layers; ++l)
    if (attention_window(l) > 0) return true;
  return false;
}

double ModelSpec::attention_scale() const noexcept {
  const double d = query_pre_attn_scalar > 0.0 ? query_pre_attn_scalar
                                               : static_cast<double>(head_dim);
  return rope_attention_factor * rope_attention_factor / std::sqrt(d);
}

std::vector<float> ModelSpec::rope_local_inv_freq() const {
  if (rope_local_theta <= 0.0) return {};
  ModelSpec local;
  local.head_dim = head_dim;
  local.rope_theta = rope_local_theta;  // "default" RoPE, no scaling
  return local.rope_inv_freq();
}

std::vector<float> ModelSpec::rope_inv_freq(bool long_context) const {
  // In f32, step by step as transformers computes it (so logits agree to f32 rounding).
  const std::int64_t half = head_dim / 2;
  std::vector<float> f(static_cast<std::size_t>(half));
  const auto theta = static_cast<float>(rope_theta);
  for (std::int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    f[static_cast<std::size_t>(i)] = 1.0f / std::pow(theta, e);
  }
  if (rope_type == "linear") {
    for (float& x : f) x /= static_cast<float>(rope_factor);
  } else if (rope_type == "llama3") {
    const auto factor = static_cast<float>(rope_factor);
    const auto low = static_cast<float>(rope_low_freq_factor);
    const auto high = static_cast<float>(rope_high_freq_factor);
    const auto old_len = static_cast<float>(rope_original_max_positions);
    const float low_freq_wavelen = old_len / low;
    const float high_freq_wavelen = old_len / high;
    for (float& x : f) {
      const float wavelen = 2.0f * static_cast<float>(std::numbers::pi) / x;
      float scaled = wavelen > low_freq_wavelen ? x / factor : x;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        const float smooth = (old_len / wavelen - low) / (high - low);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      x = scaled;
    }
  } else if (rope_type == "yarn") {
    // The dimension at which a frequency turns `rotations` times within the original length
    // (in f64, as Python's math), the range between beta_fast's and beta_slow's, and a ramp over
    // it in f32: dimensions below the range keep their frequency (extrapolation), those above
    // are divided by the factor (interpolation), those inside are blended.
    const auto dim = static_cast<double>(head_dim);
    const auto correction_dim = [&](double rotations) {
      return dim *
             std::log(static_cast<double>(rope_original_max_positions) /
                      (rotations * 2.0 * std::numbers::pi)) /
             (2.0 * std::log(rope_theta));
    };
    double low = correction_dim(rope_beta_fast), high = correction_dim(rope_beta_slow);
    if (rope_truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, dim - 1.0);
    if (low == high) high += 0.001;  // as transformers: no zero-width ramp
    const auto factor = static_cast<float>(rope_factor);
    for (std::int64_t i = 0; i < half; ++i) {
      float& x = f[static_cast<std::size_t>(i)];
      const float pos_freq = std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
      const float extrapolation = 1.0f / pos_freq;
      const float interpolation = 1.0f / (factor * pos_freq);
      const float ramp = std::clamp(
          (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low), 0.0f,
          1.0f);
      const float keep = 1.0f - ramp;  // transformers' inv_freq_extrapolation_factor
      x = interpolation * (1.0f - keep) + extrapolation * keep;
    }
  } else if (rope_type == "longrope") {
    const std::vector<double>& ext = long_context ? rope_long_factor : rope_short_factor;
    for (std::int64_t i = 0; i < half; ++i) {
      const float e = static_cast<float>(2 * i) / static_cast<float>(head_dim);
      f[static_cast<std::size_t>(i)] =
          1.0f / (static_cast<float>(ext[static_cast<std::size_t>(i)]) * std::pow(theta, e));
    }
  }
  return f;
}

std::int64_t ModelSpec::num_parameters() const noexcept {
  const std::int64_t d = hidden_size;
  const std::int64_t norm_params = norm == NormType::kLayerNorm ? 2 * d : d;
  std::int64_t attn = d * q_dim() + 2 * d * kv_dim() + q_dim() * d;
  if (attention_bias) attn += q_dim() + 2 * kv_dim();
  if (o_bias) attn += d;
  const std::int64_t mlp_mats = gated_mlp() ? 3 : 2;
  std::int64_t mlp_params = mlp_mats * d * intermediate_size;
  if (mlp_bias) mlp_params += (mlp_mats - 1) * intermediate_size + d;
  if (qk_norm) attn += 2 * head_dim;
  const std::int64_t layer = (sandwich_norms ? 4 : 2) * norm_params + attn + mlp_params;
  std::int64_t total = num_layers * layer + norm_params + vocab_size * d;
  if (!tie_embeddings) total += vocab_size * d;
  if (position == PositionType::kLearned) total += max_position_embeddings * d;
  return total;
}

std::string ModelSpec::summary() const {
  return fmt::format(
      "{} layers, hidden {}, heads {}/{} (q/kv) x {}, {} {}, {} positions, {} norm, vocab {} "
      "(padded {}){}{}, {:.2f}M parameters",
      num_layers, hidden_size, num_heads, num_kv_heads, head_dim,
      mlp == MlpType::kSwiGLU ? "SwiGLU" : (mlp == MlpType::kGeGLU ? "GeGLU" : "GELU"),
      intermediate_size,
      position == PositionType::kRope ? "RoPE" : "learned",
      norm == NormType::kRmsNorm ? "RMS" : "Layer", vocab_size, padded_vocab(),
      tie_embeddings ? ", tied head" : "", qk_norm ? ", q/k norm" : "",
      static_cast<double>(num_parameters()) / 1e6);
}

std::int64_t TpLayout::valid_vocab(std::int64_t vocab_size) const noexcept {
  const std::int64_t v = vocab_size - vocab_begin;
  return v < 0 ? 0 : (v > vocab ? vocab : v);
}

std::string tp_layout_problem(const ModelSpec& s, int t) {
  std::string out;
  auto add = [&](std::string line) { out += (out.empty() ? "" : "\n") + line; };
  if (s.num_heads % t != 0)
    add(fmt::format("model.num_heads ({}) must be divisible by parallel.tensor ({})", s.num_heads, t));
  if (s.num_kv_heads % t != 0 && t % s.num_kv_heads != 0)
    add(fmt::format("model.num_kv_heads ({}) and parallel.tensor ({}) must divide one another",
                    s.num_kv_heads, t));
  if (s.intermediate_size % t != 0)
    add(fmt::format("model.intermediate_size ({}) must be divisible by parallel.tensor ({})",
                    s.intermediate_size, t));
  return out;
}

TpLayout make_tp_layout(const ModelSpec& s, int t, int r) {
  const std::string problem = tp_layout_problem(s, t);
  TAILOR_ASSERT(problem.empty(), "{}", problem);
  TAILOR_ASSERT(r >= 0 && r < t, "tp rank {} of {}", r, t);
  TpLayout l;
  l.size = t;
  l.rank = r;
  l.q_heads = s.num_heads / t;
  l.q_head_begin = r * l.q_heads;
  if (s.num_kv_heads % t == 0) {
    l.kv_heads = s.num_kv_heads / t;
    l.kv_head_begin = r * l.kv_heads;
  } else {
    l.kv_heads = 1;
    l.kv_replicas = t / static_cast<int>(s.num_kv_heads);
    l.kv_head_begin = r / l.kv_replicas;
  }
  l.ffn = s.intermediate_size / t;
  l.ffn_begin = r * l.ffn;
  l.padded_vocab = s.padded_vocab(t);
  l.vocab = l.padded_vocab / t;
  l.vocab_begin = r * l.vocab;
  return l;
}

}  // namespace tailor::model
