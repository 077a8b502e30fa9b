#include "model/lora.h"

#include <algorithm>
#include <cmath>

namespace tailor::model {

double LoraSpec::scale() const {
  return rslora ? alpha / std::sqrt(static_cast<double>(rank)) : alpha / static_cast<double>(rank);
}

bool LoraSpec::targets_module(std::string_view module) const {
  for (const std::string& t : targets)
    if (t == "all-linear" || t == module) return true;
  return false;
}

}  // namespace tailor::model
