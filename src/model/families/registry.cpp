// The one table of supported model families. Adding a family: its file in this folder (a
// `const Family& <name>_family()`), one declaration and one row here (docs/architecture.md).
#include <array>

#include <fmt/format.h>

#include "model/family.h"

namespace tailor::model {

const Family& llama_family();
const Family& mistral_family();
const Family& qwen2_family();
const Family& qwen3_family();
const Family& phi3_family();
const Family& gemma3_family();
const Family& gpt2_family();

namespace {

const std::array<const Family*, 7>& table() {
  static const std::array<const Family*, 7> t = {&llama_family(), &mistral_family(),
                                                 &qwen2_family(), &qwen3_family(),
                                                 &phi3_family(), &gemma3_family(),
                                                 &gpt2_family()};
  return t;
}

}  // namespace

bool Family::ignorable(std::string_view hf_name) const {
  return hf_name.ends_with("rotary_emb.inv_freq");
}

std::span<const Family* const> families() { return table(); }

const Family* find_family(std::string_view model_type) noexcept {
  for (const Family* f : table())
    if (f->model_type() == model_type) return f;
  return nullptr;
}

std::string family_names() {
  std::vector<std::string_view> names;
  for (const Family* f : table()) names.push_back(f->model_type());
  return fmt::format("{}", fmt::join(names, ", "));
}

const Family* family_for_spec(const ModelSpec& spec) noexcept {
  for (const Family* f : table())
    if (f->represents(spec)) return f;
  return nullptr;
}

}  // namespace tailor::model
