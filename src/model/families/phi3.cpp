// phi3 (Phi3ForCausalLM): LLaMA's layer with q, k and v fused into one `qkv_proj` [q + 2 kv, D]
// and gate and up into one `gate_up_proj` [2 F, D] (gate first), split into Tailor's separate
// projections on load and fused again on export (HfTensorPart offsets along the output rows). No
// biases. `sliding_window` (2047 in Phi-3-mini's config.json) is mistral's: every layer slides
// (transformers' Phi3Model masks all layers with it; null: none). A partial rotary embedding (`partial_rotary_factor` < 1,
// Phi-4-mini) is refused.
//
// LoRA: Tailor attaches one adapter per split projection (own A and B for q, k, v, gate, up),
// which trains and exports merged (`--format hf`) like any family's; PEFT's format puts one
// adapter on each fused module (one A shared by q, k and v), which these cannot be written as.
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "model/families/llama_style.h"

namespace tailor::model {
namespace {

class Phi3 final : public LlamaStyleFamily {
 public:
  [[nodiscard]] std::string_view model_type() const override { return "phi3"; }
  void read_config(const HfConfigReader& c, ModelSpec& s) const override {
    read_common(c, s, 4096);  // Phi3Config's original_max_position_embeddings default
    s.attention_bias = false;
    s.o_bias = false;
    s.mlp_bias = false;
    s.sliding_window = c.integer("sliding_window", 0);
    // transformers 5 writes it into rope_parameters, older configs at the top level; where both
    // are given they must agree (transformers would take the rope_parameters one silently).
    const char* key = "partial_rotary_factor";
    double partial = c.number(key, 1.0);
    if (c.has("rope_parameters") && c.raw()["rope_parameters"].is_object() &&
        c.raw()["rope_parameters"].contains(key)) {
      const double nested =
          HfConfigReader(c.raw()["rope_parameters"], c.where()).number(key, 1.0);
      if (c.has(key) && nested != partial)
        throw_user_error(c.where(), "{}: {} contradicts rope_parameters.{} ({})", key, partial,
                         key, nested);
      key = "rope_parameters.partial_rotary_factor";
      partial = nested;
    }
    if (partial != 1.0)
      throw_user_error(c.where(), "{}: {} is not supported (only 1.0: RoPE over the whole head)",
                       key, partial);
  }
  void write_config(const ModelSpec& s, nlohmann::json& j) const override {
    write_common(s, "Phi3ForCausalLM", j);
    j["sliding_window"] = s.sliding_window > 0 ? nlohmann::json(s.sliding_window) : nlohmann::json();
    j["partial_rotary_factor"] = 1.0;
    // Phi3Config defaults pad_token_id to 32000, an embedding row smaller vocabularies lack;
    // Tailor does not keep the source's value (the tokenizer files carry the pad token), so the
    // export says none rather than inherit that default.
    j["pad_token_id"] = nullptr;
  }
  [[nodiscard]] std::vector<HfTensorLayout> tensors(const ModelSpec& s,
                                                    std::string_view /*prefix*/) const override {
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
      out.push_back({p + "self_attn.qkv_proj.weight", {qd + 2 * kvd, d},
                     {{p + "self_attn.q_proj.weight", false, 0},
                      {p + "self_attn.k_proj.weight", false, qd},
                      {p + "self_attn.v_proj.weight", false, qd + kvd}}});
      same(p + "self_attn.o_proj.weight", {d, qd});
      same(p + "post_attention_layernorm.weight", {d});
      out.push_back({p + "mlp.gate_up_proj.weight", {2 * f, d},
                     {{p + "mlp.gate_proj.weight", false, 0}, {p + "mlp.up_proj.weight", false, f}}});
      same(p + "mlp.down_proj.weight", {d, f});
    }
    same("model.norm.weight", {d});
    if (!s.tie_embeddings) same("lm_head.weight", {v, d});
    return out;
  }
  [[nodiscard]] std::string peft_lora_unsupported() const override {
    return "PEFT export of Phi-3 LoRA is not supported (PEFT puts one adapter on each fused "
           "qkv_proj / gate_up_proj, Tailor one on each of q, k, v, gate and up); export --format "
           "hf (merged) instead";
  }
};

}  // namespace

const Family& phi3_family() {
  static const Phi3 f;
  return f;
}

}  // namespace tailor::model
