// qwen2 (Qwen2ForCausalLM): biases on q, k and v but not on o; a sliding window only when
// use_sliding_window is set, and then only on the layers transformers makes sliding: those
// `layer_types` names "sliding_attention", or without it the layers from `max_window_layers` on
// (default 28, so a small model with the flag set but no layer_types has no sliding layer).
#include "model/families/llama_style.h"

#include "core/error.h"

namespace tailor::model {
namespace {

class Qwen2 final : public LlamaStyleFamily {
 public:
  [[nodiscard]] std::string_view model_type() const override { return "qwen2"; }
  void read_config(const HfConfigReader& c, ModelSpec& s) const override {
    read_common(c, s);
    s.attention_bias = true;  // q, k, v
    s.o_bias = false;
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
  void write_config(const ModelSpec& s, nlohmann::json& j) const override {
    write_common(s, "Qwen2ForCausalLM", j);
    if (!s.has_sliding_window()) return;
    j["sliding_window"] = s.sliding_window;
    j["use_sliding_window"] = true;
    j["layer_types"] = layer_types_json(s.sliding_layers, s.num_layers);
    // For readers without layer_types (transformers 4): the leading global layers, when the
    // sliding ones are all after them (the only pattern max_window_layers can say).
    std::int64_t first = 0;
    while (first < s.num_layers && s.attention_window(first) == 0) ++first;
    bool suffix = true;
    for (std::int64_t l = first; l < s.num_layers; ++l)
      suffix = suffix && s.attention_window(l) > 0;
    if (suffix) j["max_window_layers"] = first;
  }
};

}  // namespace

const Family& qwen2_family() {
  static const Qwen2 f;
  return f;
}

}  // namespace tailor::model
