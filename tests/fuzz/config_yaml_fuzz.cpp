// Fuzz entry point for the experiment config reader (YAML -> typed, validated config): any bytes
// as a config file, with and without an override. The only acceptable outcomes are a config or a
// ConfigError (a UserError); a resolved config must read back to the same YAML (to_yaml is what
// every run directory and checkpoint saves).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "config/config.h"
#include "core/error.h"
#include "fuzz_util.h"

namespace {

void exercise(const std::string& text, const std::vector<std::string>& overrides) {
  tailor::config::ExperimentConfig cfg;
  try {
    cfg = tailor::config::load_config_text(text, "fuzz.yaml", overrides);
  } catch (const tailor::UserError&) {
    return;
  }
  const std::string yaml = tailor::config::to_yaml(cfg);
  const std::string again = tailor::config::to_yaml(
      tailor::config::load_config_text(yaml, "resolved.yaml"));
  if (again != yaml) throw std::logic_error("config fuzz: the resolved config does not round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(tailor::fuzz::as_text(data, size));
  exercise(text, {});
  exercise(text, {"train.steps=3", "optimizer.lr=1e-3"});
  return 0;
}
