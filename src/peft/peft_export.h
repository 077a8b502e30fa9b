// PEFT-format adapters: adapter_config.json + adapter_model.safetensors, as the `peft` library
// saves and loads them (LoRA on the LLaMA family: tensor names
// `base_model.model.<module>.lora_A.weight` [r, in] / `lora_B.weight` [out, r]; prompt tuning on
// any family: `prompt_embeddings` [n, hidden]).
#pragma once

#include <string>

#include "backend/ops.h"
#include "checkpoint/hf_model.h"
#include "model/transformer.h"

namespace tailor::peft {

// Writes the model's LoRA adapters to out_dir (replaced atomically). `base_model` is recorded as
// base_model_name_or_path. TP = 1 only. A UserError when the model has no LoRA adapters or its
// family has no PEFT layout Tailor writes (GPT-2's fused c_attn).
void save_peft_lora(const std::string& out_dir, const checkpoint::HfModelConfig& config,
                    const model::Transformer& model, backend::Ops& ops,
                    const std::string& base_model);

// Writes the model's prompt-tuning embeddings as a PEFT PROMPT_TUNING adapter: adapter_config.json
// (task_type CAUSAL_LM, num_virtual_tokens, token_dim, num_transformer_submodules 1,
// num_attention_heads, num_layers, prompt_tuning_init RANDOM: the tensor holds the trained values,
// so peft never needs a tokenizer to rebuild an init) and adapter_model.safetensors with
// `prompt_embeddings` [n, hidden] (f32). Any family, TP any (the tensor is replicated).
void save_peft_prompt_tuning(const std::string& out_dir, const model::Transformer& model,
                             backend::Ops& ops, const std::string& base_model);

// Bottleneck adapters in Tailor's layout (PEFT has no format for them): out_dir/
// adapter_config.json {"tailor_adapter": "bottleneck", "width": m, "placement": ["attention",
// "mlp"]} and adapters.safetensors with `model.layers.<i>.{attn,mlp}_adapter.{down,up}.{weight,bias}`
// (down [m, D], up [D, m]; a(p) = p + up(gelu_tanh(down(p))) on each block's output).
void save_bottleneck_adapters(const std::string& out_dir, const model::Transformer& model,
                              backend::Ops& ops);

}  // namespace tailor::peft
