// qwen2 (Qwen2ForCausalLM): biases on q, k and v but not on o; a sliding window only when
// use_sliding_window is set, and then only on the layers transformers makes sliding: those
// `layer_types` names "sliding_attention", or without it the layers from `max_window_layers` on
// (default 28, so a small model with the flag set but no layer_types has no sliding layer).
#include "model/families/llama_style.h"

namespace tailor::model {
namespace {

class Qwen2 final : public LlamaStyleFamily {
 public:
  [[nodiscard]] std::string_view model_type() const override { return "qwen2"; }
  void read_config(const HfConfigReader& c, ModelSpec& s) const override {
    read_common(c, s);
    s.attention_bias = true;  // q, k, v
    s.o_bias = false;
    read_qwen_sliding_window(c, s);
  }
  // peft's IA3 default for qwen2 scales q, not k.
  [[nodiscard]] std::vector<std::string> peft_ia3_targets() const override {
    return {"q_proj", "v_proj", "down_proj"};
  }
  void write_config(const ModelSpec& s, nlohmann::json& j) const override {
    write_common(s, "Qwen2ForCausalLM", j);
    write_qwen_sliding_window(s, j);
  }
};

}  // namespace

const Family& qwen2_family() {
  static const Qwen2 f;
  return f;
}

}  // namespace tailor::model
