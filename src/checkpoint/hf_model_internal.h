// Internals shared by hf_config.cpp and hf_model.cpp.
#pragma once

#include <string>

#include "checkpoint/hf_model.h"

namespace tailor::checkpoint {

// config.json text for a model of `cfg` (the fields transformers needs to rebuild it).
[[nodiscard]] std::string hf_config_json(const HfModelConfig& cfg);

}  // namespace tailor::checkpoint
