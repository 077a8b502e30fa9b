// Hugging Face model directories: config.json -> ModelSpec, safetensors weights -> a Transformer
// (any tensor-parallel shard), and back.
//
// The families and their config.json keys and tensor names are described in src/model/families/
// (model/family.h); this file drives reading, loading and writing from those descriptions.
// Anything unsupported is a UserError naming `dir/config.json` and the key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/shape.h"
#include "model/family.h"
#include "model/model_spec.h"
#include "model/transformer.h"

namespace tailor::checkpoint {

struct HfModelConfig {
  std::string model_type;             // a registered family's (model/family.h); empty: none
  model::ModelSpec spec;
  std::int32_t bos_token_id = -1;     // -1: none given
  std::int32_t eos_token_id = -1;

  // The family of model_type (which must be registered and not empty).
  [[nodiscard]] const model::Family& family() const;
};

// Reads and validates `dir/config.json`.
[[nodiscard]] HfModelConfig read_hf_config(const std::string& dir);

// Loads the weights of `dir` (model.safetensors or an index of shards) into `model`, which was
// built from read_hf_config(dir).spec: every expected tensor must be present with its HF shape,
// no extra tensor may be left over, F32/BF16/F16 converted to the model's dtype, vocabulary padding
// rows zero. Each TP rank reads only its slice.
void load_hf_weights(const std::string& dir, const HfModelConfig& config, model::Transformer& model,
                     backend::Ops& ops);

// load_hf_weights' checks without reading a weight: the files (index, shards) open and their
// headers validate, every expected tensor is present with its shape and a supported dtype, none
// is left over. For `tailor validate`.
void check_hf_weights(const std::string& dir, const HfModelConfig& config);

// One tensor in Hugging Face's name and layout, as f32 on the host.
struct HfTensor {
  std::string name;
  Shape shape;
  std::vector<float> data;
};

// The model's parameters (or, with `gradients`, their gradients) as Hugging Face tensors: HF
// names and layouts (GPT-2's fused c_attn and Conv1D transposes), vocabulary padding stripped, a
// tied head not repeated; a weight with linear adapters beside it (LoRA) merged with them
// (model::LinearAdapter::merge_into), its gradient not. Single-rank models only (TP = 1).
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
// tokenizer.model), copied, and `files` (name -> content: a tokenizer written by Tailor, such as
// the byte tokenizer's). Written under out_dir.tmp and renamed.
void save_hf_model(const std::string& out_dir, const HfModelConfig& config,
                   const model::Transformer& model, backend::Ops& ops,
                   const std::string& tokenizer_dir, bool bf16 = false,
                   const std::map<std::string, std::string>& files = {});

}  // namespace tailor::checkpoint
