// Hugging Face model directories: config.json -> ModelSpec, safetensors weights -> a Transformer
// (any tensor-parallel shard), and back.
//
// Families: llama (incl. Llama-3 RoPE scaling), mistral, qwen2 (q/k/v biases, no o bias), gpt2
// (LayerNorm, learned positions, fused c_attn and Conv1D [in, out] layouts, tied head). RoPE
// settings are read from `rope_theta`/`rope_scaling` (Hub configs) or `rope_parameters`
// (transformers 5). Anything unsupported is a UserError naming `dir/config.json` and the key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/shape.h"
#include "model/model_spec.h"
#include "model/transformer.h"

namespace tailor::checkpoint {

struct HfModelConfig {
  std::string model_type;             // llama | mistral | qwen2 | gpt2
  model::ModelSpec spec;
  std::int64_t sliding_window = 0;    // 0: none; sequences longer than it are refused
  std::int32_t bos_token_id = -1;     // -1: none given
  std::int32_t eos_token_id = -1;
};

// Reads and validates `dir/config.json`.
[[nodiscard]] HfModelConfig read_hf_config(const std::string& dir);

// Loads the weights of `dir` (model.safetensors or an index of shards) into `model`, which was
// built from read_hf_config(dir).spec: every expected tensor must be present with its HF shape,
// no extra tensor may be left over, F32/BF16/F16 converted to the model's dtype, vocabulary padding
// rows zero. Each TP rank reads only its slice.
void load_hf_weights(const std::string& dir, const HfModelConfig& config, model::Transformer& model,
                     backend::Ops& ops);

// One tensor in Hugging Face's name and layout, as f32 on the host.
struct HfTensor {
  std::string name;
  Shape shape;
  std::vector<float> data;
};

// The model's parameters (or, with `gradients`, their gradients) as Hugging Face tensors: HF
// names and layouts (GPT-2's fused c_attn and Conv1D transposes), vocabulary padding stripped, a
// tied head not repeated. Single-rank models only (TP = 1).
[[nodiscard]] std::vector<HfTensor> to_hf_tensors(const HfModelConfig& config,
                                                  const model::Transformer& model,
                                                  backend::Ops& ops, bool gradients);

// Writes `tensors` (sorted by name, as HF writes them) to a safetensors file in `dtype` (F32,
// BF16 or F16), atomically.
void write_hf_tensors(const std::string& path, std::vector<HfTensor> tensors, DType dtype,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes a directory that transformers' from_pretrained loads: config.json (from `config`),
// model.safetensors (f32, or bf16 when `bf16`), and the tokenizer files found in
// `tokenizer_dir` (tokenizer.json, tokenizer_config.json, special_tokens_map.json,
// tokenizer.model), copied. Written under out_dir.tmp and renamed.
void save_hf_model(const std::string& out_dir, const HfModelConfig& config,
                   const model::Transformer& model, backend::Ops& ops,
                   const std::string& tokenizer_dir, bool bf16 = false);

}  // namespace tailor::checkpoint
