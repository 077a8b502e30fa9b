// The files of an adapter directory, shared by the methods (each method's .cpp writes and reads
// its own keys and tensors): adapter_config.json, and the safetensors of a method's parameters.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/ops.h"
#include "checkpoint/hf_model.h"
#include "model/transformer.h"

namespace tailor::peft {

// dir/adapter_config.json as a JSON object; `path` receives the file's path. A UserError naming
// the file when it is unreadable or not an object.
[[nodiscard]] nlohmann::json read_adapter_config(const std::string& dir, std::string& path);

// adapter_config.json's peft_type ("LORA", "PROMPT_TUNING", ...; "" when absent).
[[nodiscard]] std::string read_peft_type(const std::string& dir);

// Writes `j` as indented JSON (as peft writes adapter_config.json).
void write_adapter_config(const std::string& path, const nlohmann::json& j);

// The parameters `method` added to `model` (Parameter::method), in the model's order, as f32 host
// tensors named prefix + their canonical name (this rank's shards: exports run
// on one rank, or on tensors every rank holds whole).
[[nodiscard]] std::vector<checkpoint::HfTensor> method_tensors(const model::Transformer& model,
                                                               backend::Ops& ops,
                                                               std::string_view method,
                                                               const std::string& prefix);

}  // namespace tailor::peft
