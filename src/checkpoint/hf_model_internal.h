// Internals shared by hf_config.cpp and hf_model.cpp.
#pragma once

#include <string>

#include "checkpoint/hf_model.h"

namespace tailor::checkpoint {

// config.json text for a model of `cfg` (the fields transformers needs to rebuild it), stored as
// `torch_dtype` ("float32" or "bfloat16").
[[nodiscard]] std::string hf_config_json(const HfModelConfig& cfg, const char* torch_dtype);

}  // namespace tailor::checkpoint
