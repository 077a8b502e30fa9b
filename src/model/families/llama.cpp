// llama (LlamaForCausalLM): optional biases on q/k/v/o (attention_bias) and on the MLP
// (mlp_bias), Llama-3 RoPE scaling. Also the family a Tailor-defined RMSNorm/RoPE/SwiGLU model
// exports as.
#include "model/families/llama_style.h"

namespace tailor::model {
namespace {

class Llama final : public LlamaStyleFamily {
 public:
  [[nodiscard]] std::string_view model_type() const override { return "llama"; }
  void read_config(const HfConfigReader& c, ModelSpec& s) const override {
    read_common(c, s);
    s.attention_bias = c.boolean("attention_bias", false);
    s.o_bias = s.attention_bias;
    s.mlp_bias = c.boolean("mlp_bias", false);
  }
  void write_config(const ModelSpec& s, nlohmann::json& j) const override {
    write_common(s, "LlamaForCausalLM", j);
    j["attention_bias"] = s.attention_bias;
    j["mlp_bias"] = s.mlp_bias;
  }
  [[nodiscard]] bool represents(const ModelSpec& s) const override {
    return s.norm == NormType::kRmsNorm && s.position == PositionType::kRope &&
           s.mlp == MlpType::kSwiGLU && !s.has_sliding_window() && !s.qk_norm;
  }
};

}  // namespace

const Family& llama_family() {
  static const Llama f;
  return f;
}

}  // namespace tailor::model
