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
};

}  // namespace tailor::model
