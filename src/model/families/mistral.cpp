// mistral (MistralForCausalLM): the llama layout without biases, with a sliding attention window.
#include "model/families/llama_style.h"

#include "core/error.h"

namespace tailor::model {
namespace {

class Mistral final : public LlamaStyleFamily {
 public:
  [[nodiscard]] std::string_view model_type() const override { return "mistral"; }
  void read_config(const HfConfigReader& c, ModelSpec& s) const override {
    read_common(c, s);
    s.attention_bias = c.boolean("attention_bias", false);
    s.o_bias = s.attention_bias;
    s.mlp_bias = c.boolean("mlp_bias", false);
    // Every layer slides (transformers' MistralModel ignores layer_types); null: no window.
    s.sliding_window = c.integer("sliding_window", 0);
    if (c.has("sliding_window") && s.sliding_window == 0)
      throw_user_error(c.where(), "sliding_window: must be at least 1 (null for no window), got 0");
  }
  void write_config(const ModelSpec& s, nlohmann::json& j) const override {
    write_common(s, "MistralForCausalLM", j);
    if (s.sliding_window > 0) j["sliding_window"] = s.sliding_window;
  }
};

}  // namespace

const Family& mistral_family() {
  static const Mistral f;
  return f;
}

}  // namespace tailor::model
