// gpt2 (GPT2LMHeadModel): LayerNorm, learned positions, GELU (tanh), biases everywhere, tied head.
// Its Conv1D weights are stored [in, out] (transposed) and c_attn fuses q, k and v along the
// output dimension; checkpoints name tensors with or without the "transformer." prefix.
#include <fmt/format.h>

#include "core/error.h"
#include "model/families/hf_config_reader.h"
#include "model/family.h"

namespace tailor::model {
namespace {

class Gpt2 final : public Family {
 public:
  [[nodiscard]] std::string_view model_type() const override { return "gpt2"; }

  void read_config(const HfConfigReader& c, ModelSpec& s) const override {
    s.vocab_size = c.integer("vocab_size");
    s.hidden_size = c.integer("n_embd");
    s.num_layers = c.integer("n_layer");
    s.num_heads = c.integer("n_head");
    s.num_kv_heads = s.num_heads;
    s.head_dim = s.num_heads > 0 ? s.hidden_size / s.num_heads : 0;
    s.intermediate_size = c.integer("n_inner", 4 * s.hidden_size);
    s.max_position_embeddings = c.integer("n_positions", 1024);
    s.norm = NormType::kLayerNorm;
    s.norm_eps = c.number("layer_norm_epsilon", 1e-5);
    s.position = PositionType::kLearned;
    s.mlp = MlpType::kGelu;
    c.require_activation("activation_function", {"gelu_new", "gelu_pytorch_tanh"}, "gelu_new");
    s.attention_bias = s.o_bias = s.mlp_bias = true;
    s.tie_embeddings = true;
    if (c.boolean("scale_attn_by_inverse_layer_idx", false) ||
        c.boolean("reorder_and_upcast_attn", false))
      throw_user_error(c.where(),
                       "scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported");
  }

  void write_config(const ModelSpec& s, nlohmann::json& j) const override {
    j["architectures"] = {"GPT2LMHeadModel"};
    j["model_type"] = "gpt2";
    j["vocab_size"] = s.vocab_size;
    j["n_embd"] = s.hidden_size;
    j["n_layer"] = s.num_layers;
    j["n_head"] = s.num_heads;
    j["n_inner"] = s.intermediate_size;
    j["n_positions"] = s.max_position_embeddings;
    j["layer_norm_epsilon"] = s.norm_eps;
    j["activation_function"] = "gelu_new";
    j["tie_word_embeddings"] = true;
  }

  [[nodiscard]] bool represents(const ModelSpec& s) const override {
    return s.norm == NormType::kLayerNorm && s.position == PositionType::kLearned &&
           s.mlp == MlpType::kGelu && s.attention_bias && s.o_bias && s.mlp_bias &&
           s.tie_embeddings && s.num_kv_heads == s.num_heads && !s.has_sliding_window();
  }

  [[nodiscard]] std::vector<HfTensorLayout> tensors(const ModelSpec& s,
                                                    std::string_view prefix) const override {
    const std::int64_t d = s.hidden_size, v = s.vocab_size, f = s.intermediate_size;
    const std::string t(prefix);
    std::vector<HfTensorLayout> out;
    out.push_back({t + "wte.weight", {v, d}, {{"model.embed_tokens.weight", false, 0}}});
    out.push_back({t + "wpe.weight", {s.max_position_embeddings, d},
                   {{"model.embed_positions.weight", false, 0}}});
    for (std::int64_t i = 0; i < s.num_layers; ++i) {
      const std::string h = fmt::format("{}h.{}.", t, i);
      const std::string p = fmt::format("model.layers.{}.", i);
      out.push_back({h + "ln_1.weight", {d}, {{p + "input_layernorm.weight"}}});
      out.push_back({h + "ln_1.bias", {d}, {{p + "input_layernorm.bias"}}});
      out.push_back({h + "attn.c_attn.weight", {d, 3 * d},
                     {{p + "self_attn.q_proj.weight", true, 0},
                      {p + "self_attn.k_proj.weight", true, d},
                      {p + "self_attn.v_proj.weight", true, 2 * d}}});
      out.push_back({h + "attn.c_attn.bias", {3 * d},
                     {{p + "self_attn.q_proj.bias", false, 0},
                      {p + "self_attn.k_proj.bias", false, d},
                      {p + "self_attn.v_proj.bias", false, 2 * d}}});
      out.push_back({h + "attn.c_proj.weight", {d, d}, {{p + "self_attn.o_proj.weight", true, 0}}});
      out.push_back({h + "attn.c_proj.bias", {d}, {{p + "self_attn.o_proj.bias"}}});
      out.push_back({h + "ln_2.weight", {d}, {{p + "post_attention_layernorm.weight"}}});
      out.push_back({h + "ln_2.bias", {d}, {{p + "post_attention_layernorm.bias"}}});
      out.push_back({h + "mlp.c_fc.weight", {d, f}, {{p + "mlp.up_proj.weight", true, 0}}});
      out.push_back({h + "mlp.c_fc.bias", {f}, {{p + "mlp.up_proj.bias"}}});
      out.push_back({h + "mlp.c_proj.weight", {f, d}, {{p + "mlp.down_proj.weight", true, 0}}});
      out.push_back({h + "mlp.c_proj.bias", {d}, {{p + "mlp.down_proj.bias"}}});
    }
    out.push_back({t + "ln_f.weight", {d}, {{"model.norm.weight"}}});
    out.push_back({t + "ln_f.bias", {d}, {{"model.norm.bias"}}});
    return out;
  }

  [[nodiscard]] std::string load_prefix(
      const std::function<bool(const std::string&)>& has) const override {
    return has("transformer.wte.weight") ? "transformer." : "";
  }
  [[nodiscard]] std::string export_prefix() const override { return "transformer."; }

  [[nodiscard]] bool ignorable(std::string_view name) const override {
    // Causal-mask buffers that older checkpoints saved.
    return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") ||
           Family::ignorable(name);
  }

  // peft's IA3 default for GPT-2: c_attn (q, k and v here) and mlp.c_proj (down, feed-forward).
  [[nodiscard]] std::vector<std::string> peft_ia3_targets() const override {
    return {"q_proj", "k_proj", "v_proj", "down_proj"};
  }
  [[nodiscard]] std::string peft_lora_unsupported() const override {
    return "PEFT export of GPT-2 LoRA is not supported (its fused c_attn has one adapter in PEFT, "
           "three in Tailor); export --format hf (merged) instead";
  }
};

}  // namespace

const Family& gpt2_family() {
  static const Gpt2 f;
  return f;
}

}  // namespace tailor::model
