#include "peft/registry.h"

#include <array>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/config.h"
#include "core/error.h"
#include "peft/adapter_files.h"
#include "peft/bottleneck.h"
#include "peft/ia3.h"
#include "peft/lora.h"
#include "peft/prompt_tuning.h"

namespace tailor::peft {
namespace {

constexpr std::array kMethods = {
    MethodEntry{Lora::kName, Lora::kDisplayName, Lora::kPeftType, true, &Lora::from_config,
                &Lora::from_adapter},
    MethodEntry{PromptTuning::kName, PromptTuning::kDisplayName, PromptTuning::kPeftType, true,
                &PromptTuning::from_config, &PromptTuning::from_adapter},
    MethodEntry{Bottleneck::kName, Bottleneck::kDisplayName, "", false, &Bottleneck::from_config,
                nullptr},
    MethodEntry{Ia3::kName, Ia3::kDisplayName, Ia3::kPeftType, true, &Ia3::from_config,
                &Ia3::from_adapter},
};

}  // namespace

const MethodEntry* find_method(std::string_view name) {
  for (const MethodEntry& m : kMethods)
    if (m.name == name) return &m;
  return nullptr;
}

std::shared_ptr<const Method> method_from_config(const config::PeftConfig& peft,
                                                 const model::ModelSpec& spec) {
  const MethodEntry* m = find_method(config::name_of(peft.method));
  TAILOR_ASSERT(m != nullptr || peft.method == config::PeftMethod::kNone,
                "peft.method {} has no row", peft.method);
  return m != nullptr ? m->from_config(peft, spec) : nullptr;
}

std::shared_ptr<const Method> method_from_adapter(const std::string& dir,
                                                  const model::ModelSpec& spec) {
  const std::string type = read_peft_type(dir);
  for (const MethodEntry& m : kMethods)
    if (m.from_adapter != nullptr && !m.peft_type.empty() && m.peft_type == type)
      return m.from_adapter(dir, spec);
  // Any other type is read as the first row's (LoRA, peft's default), whose reader refuses it
  // with a message naming the type it expected.
  return kMethods.front().from_adapter(dir, spec);
}

std::string peft_format_methods() {
  std::vector<std::string_view> names;
  for (const MethodEntry& m : kMethods)
    if (m.peft_format) names.push_back(m.display_name);
  if (names.size() < 2) return fmt::format("{}", fmt::join(names, ""));
  const std::string_view last = names.back();
  names.pop_back();
  return fmt::format("{} and {}", fmt::join(names, ", "), last);
}

}  // namespace tailor::peft
