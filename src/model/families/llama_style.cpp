#include "model/families/llama_style.h"

#include <fmt/format.h>

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

std::vector<HfTensorLayout> LlamaStyleFamily::tensors(const ModelSpec& s,
                                                      std::string_view /*prefix*/) const {
  const std::int64_t d = s.hidden_size, v = s.vocab_size, f = s.intermediate_size;
  const std::int64_t qd = s.q_dim(), kvd = s.kv_dim();
  std::vector<HfTensorLayout> out;
  auto same = [&](const std::string& name, std::vector<std::int64_t> shape) {
    out.push_back({name, std::move(shape), {{name, false, 0}}});
  };
  same("model.embed_tokens.weight", {v, d});
  for (std::int64_t i = 0; i < s.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    same(p + "input_layernorm.weight", {d});
    same(p + "self_attn.q_proj.weight", {qd, d});
    same(p + "self_attn.k_proj.weight", {kvd, d});
    same(p + "self_attn.v_proj.weight", {kvd, d});
    if (s.attention_bias) {
      same(p + "self_attn.q_proj.bias", {qd});
      same(p + "self_attn.k_proj.bias", {kvd});
      same(p + "self_attn.v_proj.bias", {kvd});
    }
    if (s.qk_norm) {
      same(p + "self_attn.q_norm.weight", {s.head_dim});
      same(p + "self_attn.k_norm.weight", {s.head_dim});
    }
    same(p + "self_attn.o_proj.weight", {d, qd});
    if (s.o_bias) same(p + "self_attn.o_proj.bias", {d});
    same(p + "post_attention_layernorm.weight", {d});
    same(p + "mlp.gate_proj.weight", {f, d});
    same(p + "mlp.up_proj.weight", {f, d});
    same(p + "mlp.down_proj.weight", {d, f});
    if (s.mlp_bias) {
      same(p + "mlp.gate_proj.bias", {f});
      same(p + "mlp.up_proj.bias", {f});
      same(p + "mlp.down_proj.bias", {d});
    }
  }
  same("model.norm.weight", {d});
  if (!s.tie_embeddings) same("lm_head.weight", {v, d});
  return out;
}

}  // namespace tailor::model
