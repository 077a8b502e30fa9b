// qwen3 (Qwen3ForCausalLM, dense): per-head RMSNorm on q and k before RoPE (self_attn.q_norm /
// k_norm, weights [head_dim]), an explicit head_dim (Qwen3 models have heads x head_dim !=
// hidden_size), `attention_bias` (false in every released model) on q, k, v and o alike.
// Qwen3's sliding window is per layer (layers from max_window_layers on, or as `layer_types` says)
// and off in every released model; a config that turns it on is refused until the decoder has
// per-layer windows.
#include "core/error.h"
#include "model/families/llama_style.h"

namespace tailor::model {
namespace {

class Qwen3 final : public LlamaStyleFamily {
 public:
  [[nodiscard]] std::string_view model_type() const override { return "qwen3"; }
  void read_config(const HfConfigReader& c, ModelSpec& s) const override {
    read_common(c, s);
    s.qk_norm = true;
    s.attention_bias = c.boolean("attention_bias", false);
    s.o_bias = s.attention_bias;
    if (c.boolean("use_sliding_window", false))
      throw_user_error(c.where(), "use_sliding_window: true is not supported for qwen3 (per-layer "
                                  "sliding windows are not implemented); set it to false");
    if (c.has("layer_types")) {
      const nlohmann::json& t = c.raw()["layer_types"];
      if (!t.is_array())
        throw_user_error(c.where(), "layer_types: expected a list, got {}", t.dump());
      for (std::size_t i = 0; i < t.size(); ++i)
        if (t[i] != "full_attention")
          throw_user_error(c.where(), "layer_types[{}]: {} is not supported for qwen3 (only "
                                      "\"full_attention\")", i, t[i].dump());
      if (static_cast<std::int64_t>(t.size()) != s.num_layers)
        throw_user_error(c.where(), "layer_types: {} entries for num_hidden_layers {}", t.size(),
                         s.num_layers);
    }
  }
  void write_config(const ModelSpec& s, nlohmann::json& j) const override {
    write_common(s, "Qwen3ForCausalLM", j);
    j["attention_bias"] = s.attention_bias;
    j["use_sliding_window"] = false;
  }
  [[nodiscard]] bool represents(const ModelSpec& s) const override {
    return s.qk_norm && s.norm == NormType::kRmsNorm && s.position == PositionType::kRope &&
           s.mlp == MlpType::kSwiGLU && s.attention_bias == s.o_bias && !s.mlp_bias &&
           s.sliding_window == 0;
  }
};

}  // namespace

const Family& qwen3_family() {
  static const Qwen3 f;
  return f;
}

}  // namespace tailor::model
