// Loading PEFT adapters (adapter_config.json + adapter_model.safetensors, as `peft` saves them,
// e.g. from the Hub) onto a Tailor model, to evaluate them or to continue training: LoRA and
// prompt tuning.
#pragma once

#include <cstdint>
#include <string>

#include "backend/ops.h"
#include "model/lora.h"
#include "model/transformer.h"

namespace tailor::peft {

// Reads adapter_config.json: peft_type LORA, r, lora_alpha, target_modules, use_rslora,
// lora_dropout (used when training continues). Other settings that change the computation (bias
// != none, fan_in_fan_out, DoRA, rank/alpha patterns, modules_to_save) are refused. UserError
// naming the file.
[[nodiscard]] model::LoraSpec read_peft_lora_config(const std::string& dir);

// Copies the adapter's tensors into the model's LoRA parameters (each TP rank its shard). The
// model must have been built with read_peft_lora_config(dir). Missing, extra or misshaped tensors
// are a UserError naming the file and tensor.
void load_peft_lora_weights(const std::string& dir, model::Transformer& model, backend::Ops& ops);

// adapter_config.json's peft_type ("LORA", "PROMPT_TUNING", ...; "" when absent).
[[nodiscard]] std::string read_peft_type(const std::string& dir);

// Reads a PROMPT_TUNING adapter_config.json for a base of `spec`: returns num_virtual_tokens.
// token_dim must be the hidden size and num_transformer_submodules 1 (decoder-only).
[[nodiscard]] std::int64_t read_peft_prompt_config(const std::string& dir,
                                                   const model::ModelSpec& spec);

// Copies the adapter's `prompt_embeddings` [n, hidden] into the model's (built with
// read_peft_prompt_config(dir) virtual tokens; every TP rank holds all of it). A missing,
// misshaped or extra tensor is a UserError naming the file.
void load_peft_prompt_weights(const std::string& dir, model::Transformer& model,
                              backend::Ops& ops);

}  // namespace tailor::peft
