// Loading PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors, as `peft` saves
// them, e.g. from the Hub) onto a Tailor model, to evaluate them or to continue training.
#pragma once

#include <string>

#include "backend/ops.h"
#include "model/lora.h"
#include "model/transformer.h"

namespace tailor::peft {

// Reads adapter_config.json: peft_type LORA, r, lora_alpha, target_modules, use_rslora. Other
// settings that change the computation (bias != none, fan_in_fan_out, DoRA, rank/alpha patterns,
// modules_to_save, lora_dropout > 0 for training) are refused or noted. UserError naming the file.
[[nodiscard]] model::LoraSpec read_peft_lora_config(const std::string& dir);

// Copies the adapter's tensors into the model's LoRA parameters (each TP rank its shard). The
// model must have been built with read_peft_lora_config(dir). Missing, extra or misshaped tensors
// are a UserError naming the file and tensor.
void load_peft_lora_weights(const std::string& dir, model::Transformer& model, backend::Ops& ops);

}  // namespace tailor::peft
