// Model families: a Hugging Face architecture (`model_type` in config.json) described as data.
//
// A family says how its config.json becomes a ModelSpec (dimensions and layer features: norm kind,
// biases, MLP kind, positions and RoPE scaling, attention window, tied head) and back, and how its
// safetensors tensors map onto Tailor's canonical parameters. One file per family under
// src/model/families/, registered in families/registry.cpp; nothing outside that folder compares
// `model_type` strings. Checkpoint code (src/checkpoint/hf_model.cpp) drives loading and export
// from these descriptions; the layers read only the ModelSpec.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/model_spec.h"

namespace tailor::model {

class HfConfigReader;  // families/hf_config_reader.h

// One Tailor parameter inside a Hugging Face tensor.
struct HfTensorPart {
  std::string param;        // canonical Tailor parameter name
  bool transpose = false;   // HF stores it [in, out] (GPT-2's Conv1D)
  std::int64_t offset = 0;  // start along HF's output dimension (fused tensors such as c_attn)
  double value_offset = 0.0;  // Tailor's value = HF's + value_offset (Gemma's (1 + w) norms)
};

// One Hugging Face tensor: its name, its HF shape, and the Tailor parameters it is made of.
struct HfTensorLayout {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<HfTensorPart> parts;
};

class Family {
 public:
  virtual ~Family() = default;

  // config.json's `model_type`.
  [[nodiscard]] virtual std::string_view model_type() const = 0;
  // Fills `s` from config.json: dimensions and layer features. Refuses (UserError naming the
  // file and key) values that change the computation in ways Tailor does not implement. The
  // checks common to every family (positive dimensions, head divisibility) run afterwards.
  virtual void read_config(const HfConfigReader& c, ModelSpec& s) const = 0;
  // The family's config.json keys for `s` (architectures, model_type, dimensions, features);
  // the keys every family shares (initializer_range, token ids, torch_dtype) are added by the
  // caller.
  virtual void write_config(const ModelSpec& s, nlohmann::json& j) const = 0;
  // Whether a Tailor-defined model of spec `s` is exactly a model of this family (so it can be
  // exported as one).
  [[nodiscard]] virtual bool represents(const ModelSpec& s) const = 0;
  // The tensors of a model of `s`, their names under `prefix` (see load_prefix).
  [[nodiscard]] virtual std::vector<HfTensorLayout> tensors(const ModelSpec& s,
                                                            std::string_view prefix) const = 0;
  // The prefix of the tensor names in a checkpoint, given which names it has (GPT-2 checkpoints
  // come with and without "transformer."); export_prefix() is the one written.
  [[nodiscard]] virtual std::string load_prefix(
      const std::function<bool(const std::string&)>& /*has*/) const {
    return "";
  }
  [[nodiscard]] virtual std::string export_prefix() const { return ""; }
  // Tensors some checkpoints carry that are not parameters (rotary caches, attention masks).
  [[nodiscard]] virtual bool ignorable(std::string_view hf_name) const;
  // Why PEFT's LoRA format cannot hold this family's LoRA adapters; empty when it can.
  [[nodiscard]] virtual std::string peft_lora_unsupported() const { return ""; }
  // peft's default IA3 targets for the family (TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING
  // and ..._FEEDFORWARD_MODULES_MAPPING), as Tailor's module names. LLaMA's and Mistral's:
  // k_proj, v_proj, down_proj, of which down_proj feed-forward (its input scaled).
  [[nodiscard]] virtual std::vector<std::string> peft_ia3_targets() const {
    return {"k_proj", "v_proj", "down_proj"};
  }
  [[nodiscard]] virtual std::vector<std::string> peft_ia3_feedforward() const {
    return {"down_proj"};
  }
};

// The registered families, in the order messages list them.
[[nodiscard]] std::span<const Family* const> families();
// The family of a config.json `model_type`; nullptr when none is registered.
[[nodiscard]] const Family* find_family(std::string_view model_type) noexcept;
// "llama, mistral, qwen2, qwen3, phi3, gpt2": the supported model types, for messages.
[[nodiscard]] std::string family_names();
// The first registered family that represents `spec`; nullptr when none does.
[[nodiscard]] const Family* family_for_spec(const ModelSpec& spec) noexcept;

}  // namespace tailor::model
