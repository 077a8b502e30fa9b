#include "model/families/llama_style.h"

#include <fmt/format.h>

#include "core/error.h"

namespace tailor::model {

void LlamaStyleFamily::read_common(const HfConfigReader& c, ModelSpec& s,
                                   std::optional<std::int64_t> rope_original_default) {
  s.vocab_size = c.integer("vocab_size");
  s.hidden_size = c.integer("hidden_size");
  s.num_layers = c.integer("num_hidden_layers");
  s.num_heads = c.integer("num_attention_heads");
  s.num_kv_heads = c.integer("num_key_value_heads", s.num_heads);
  s.head_dim = c.integer("head_dim", s.num_heads > 0 ? s.hidden_size / s.num_heads : 0);
  s.intermediate_size = c.integer("intermediate_size");
  s.max_position_embeddings = c.integer("max_position_embeddings", 2048);
  s.norm = NormType::kRmsNorm;
  s.norm_eps = c.number("rms_norm_eps", 1e-6);
  s.position = PositionType::kRope;
  s.mlp = MlpType::kSwiGLU;
  c.require_activation("hidden_act", {"silu"}, "silu");
  read_rope(c, s, rope_original_default);
  s.tie_embeddings = c.boolean("tie_word_embeddings", false);
}

void LlamaStyleFamily::write_common(const ModelSpec& s, const char* architecture,
                                    nlohmann::json& j) const {
  j["architectures"] = {architecture};
  j["model_type"] = std::string(model_type());
  j["vocab_size"] = s.vocab_size;
  j["hidden_size"] = s.hidden_size;
  j["intermediate_size"] = s.intermediate_size;
  j["num_hidden_layers"] = s.num_layers;
  j["num_attention_heads"] = s.num_heads;
  j["num_key_value_heads"] = s.num_kv_heads;
  j["head_dim"] = s.head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = s.max_position_embeddings;
  j["rms_norm_eps"] = s.norm_eps;
  write_rope(s, j);
  j["tie_word_embeddings"] = s.tie_embeddings;
}

void LlamaStyleFamily::read_qwen_sliding_window(const HfConfigReader& c, ModelSpec& s) {
  // Read even when unused, so a malformed list is reported wherever it is.
  std::optional<std::vector<bool>> types = read_layer_types(c, s.num_layers);
  if (!c.boolean("use_sliding_window", false)) return;
  // transformers: an absent sliding_window is 4096, null is none.
  if (c.raw().contains("sliding_window") && c.raw()["sliding_window"].is_null()) return;
  s.sliding_window = c.integer("sliding_window", 4096);
  if (s.sliding_window == 0)
    throw_user_error(c.where(), "sliding_window: must be at least 1 (null for no window), got 0");
  if (!types) {
    const std::int64_t first = c.integer("max_window_layers", 28);
    types.emplace();
    for (std::int64_t l = 0; l < s.num_layers; ++l) types->push_back(l >= first);
  }
  s.sliding_layers = std::move(*types);
  if (!s.has_sliding_window()) {  // no layer slides: the same model as without the flag
    s.sliding_window = 0;
    s.sliding_layers.clear();
  }
}

void LlamaStyleFamily::write_qwen_sliding_window(const ModelSpec& s, nlohmann::json& j) {
  if (!s.has_sliding_window()) return;
  j["sliding_window"] = s.sliding_window;
  j["use_sliding_window"] = true;
  j["layer_types"] = layer_types_json(s.sliding_layers, s.num_layers);
  // For readers without layer_types (transformers 4): the leading global layers, when the
  // sliding ones are all after them (the only pattern max_window_layers can say).
  std::int64_t first = 0;
  while (first < s.num_layers && s.attention_window(first) == 0) ++first;
  bool suffix = true;
  for (std::int64_t l = first; l < s.num_layers; ++l) suffix = suffix && s.attention_window(l) > 0;
  if (suffix) j["max_window_layers"] = first;
}

std::vector<HfTensorLayout> LlamaStyleFamily::tensors(const ModelSpec& s,
                                                      std::string_view /*prefix*/) const {
  const std::int64_t d = s.hidden_size, v = s.vocab_size, f = s.intermediate_size;
  const std::int64_t qd = s.q_dim(), kvd = s.kv_dim();
  std::vector<HfTensorLayout> out;
  auto same = [&](const std::string& name, std::vector<std::int64_t> shape) {
    out.push_back({name, std::move(shape), {{name, false, 0}}});
  };
  // Norm weights: Gemma's checkpoints store w of a (1 + w) scale, Tailor holds 1 + w.
  const double norm_offset = s.norm_unit_offset ? 1.0 : 0.0;
  auto norm = [&](const std::string& name, std::int64_t n) {
    out.push_back({name, {n}, {{name, false, 0, norm_offset}}});
  };
  same("model.embed_tokens.weight", {v, d});
  for (std::int64_t i = 0; i < s.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    norm(p + "input_layernorm.weight", d);
    same(p + "self_attn.q_proj.weight", {qd, d});
    same(p + "self_attn.k_proj.weight", {kvd, d});
    same(p + "self_attn.v_proj.weight", {kvd, d});
    if (s.attention_bias) {
      same(p + "self_attn.q_proj.bias", {qd});
      same(p + "self_attn.k_proj.bias", {kvd});
      same(p + "self_attn.v_proj.bias", {kvd});
    }
    if (s.qk_norm) {
      norm(p + "self_attn.q_norm.weight", s.head_dim);
      norm(p + "self_attn.k_norm.weight", s.head_dim);
    }
    same(p + "self_attn.o_proj.weight", {d, qd});
    if (s.o_bias) same(p + "self_attn.o_proj.bias", {d});
    norm(p + "post_attention_layernorm.weight", d);
    if (s.sandwich_norms) {
      norm(p + "pre_feedforward_layernorm.weight", d);
      norm(p + "post_feedforward_layernorm.weight", d);
    }
    same(p + "mlp.gate_proj.weight", {f, d});
    same(p + "mlp.up_proj.weight", {f, d});
    same(p + "mlp.down_proj.weight", {d, f});
    if (s.mlp_bias) {
      same(p + "mlp.gate_proj.bias", {f});
      same(p + "mlp.up_proj.bias", {f});
      same(p + "mlp.down_proj.bias", {d});
    }
  }
  norm("model.norm.weight", d);
  if (!s.tie_embeddings) same("lm_head.weight", {v, d});
  return out;
}

}  // namespace tailor::model
