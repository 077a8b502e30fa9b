// What the LLaMA-style families (llama, mistral, qwen2, and the ones built on them) share:
// RMSNorm before attention and MLP, RoPE, SwiGLU, GQA, separate q/k/v/o and gate/up/down
// projections named as in transformers' LlamaForCausalLM, an optional untied lm_head.
#pragma once

#include <nlohmann/json.hpp>

#include "model/families/hf_config_reader.h"
#include "model/family.h"

namespace tailor::model {

class LlamaStyleFamily : public Family {
 public:
  [[nodiscard]] std::vector<HfTensorLayout> tensors(const ModelSpec& s,
                                                    std::string_view prefix) const override;
  [[nodiscard]] bool represents(const ModelSpec& /*s*/) const override { return false; }

 protected:
  // Dimensions, RMSNorm eps, RoPE and the SiLU activation (the family then reads its biases,
  // tied head and window). `rope_original_default`: as read_rope's `original_default`.
  static void read_common(const HfConfigReader& c, ModelSpec& s,
                          std::optional<std::int64_t> rope_original_default = std::nullopt);
  // The keys of read_common, with `architecture` and model_type().
  void write_common(const ModelSpec& s, const char* architecture, nlohmann::json& j) const;
  // Qwen2's and Qwen3's sliding window (the same rules in transformers): only with
  // use_sliding_window, and then on the layers `layer_types` names "sliding_attention", or
  // without it on the layers from `max_window_layers` on (default 28); an absent sliding_window
  // is 4096, null none. `layer_types` is checked even when the flag is off.
  static void read_qwen_sliding_window(const HfConfigReader& c, ModelSpec& s);
  // Writes them back: nothing when no layer slides, else sliding_window, use_sliding_window,
  // layer_types and (when the sliding layers are a suffix) max_window_layers.
  static void write_qwen_sliding_window(const ModelSpec& s, nlohmann::json& j);
};

}  // namespace tailor::model
