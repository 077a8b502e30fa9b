// qwen2 (Qwen2ForCausalLM): biases on q, k and v but not on o; a sliding window only when
// use_sliding_window is set.
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
    if (c.boolean("use_sliding_window", false)) s.sliding_window = c.integer("sliding_window", 0);
  }
  // peft's IA3 default for qwen2 scales q, not k.
  [[nodiscard]] std::vector<std::string> peft_ia3_targets() const override {
    return {"q_proj", "v_proj", "down_proj"};
  }
  void write_config(const ModelSpec& s, nlohmann::json& j) const override {
    write_common(s, "Qwen2ForCausalLM", j);
    if (s.sliding_window > 0) {
      j["sliding_window"] = s.sliding_window;
      j["use_sliding_window"] = true;
    }
  }
};

}  // namespace

const Family& qwen2_family() {
  static const Qwen2 f;
  return f;
}

}  // namespace tailor::model
