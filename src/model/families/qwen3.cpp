// qwen3 (Qwen3ForCausalLM, dense): per-head RMSNorm on q and k before RoPE (self_attn.q_norm /
// k_norm, weights [head_dim]), an explicit head_dim (Qwen3 models have heads x head_dim !=
// hidden_size), `attention_bias` (false in every released model) on q, k, v and o alike.
// Qwen3's sliding window follows qwen2's rules (use_sliding_window; the layers `layer_types` names,
// else those from max_window_layers on); it is off in every released model.
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
    read_qwen_sliding_window(c, s);
  }
  void write_config(const ModelSpec& s, nlohmann::json& j) const override {
    write_common(s, "Qwen3ForCausalLM", j);
    j["attention_bias"] = s.attention_bias;
    j["use_sliding_window"] = false;
    write_qwen_sliding_window(s, j);  // true, with the window and its layers, when any slides
  }
  [[nodiscard]] bool represents(const ModelSpec& s) const override {
    return s.qk_norm && s.norm == NormType::kRmsNorm && s.position == PositionType::kRope &&
           s.mlp == MlpType::kSwiGLU && s.attention_bias == s.o_bias && !s.mlp_bias;
  }
};

}  // namespace

const Family& qwen3_family() {
  static const Qwen3 f;
  return f;
}

}  // namespace tailor::model
