// The PEFT methods Tailor has, one row each, keyed by the config's `peft.method` choice. Adding a
// method is a row here plus its own .h/.cpp (docs/architecture.md, "A PEFT method").
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "peft/method.h"

namespace tailor::config {
struct PeftConfig;
}

namespace tailor::peft {

struct MethodEntry {
  std::string_view name;          // peft.method
  std::string_view display_name;  // in messages: "LoRA"
  std::string_view peft_type;     // adapter_config.json's peft_type of its adapters ("": none)
  bool peft_format = false;       // `export --format peft` writes it (Method::save_peft)
  std::shared_ptr<const Method> (*from_config)(const config::PeftConfig&, const model::ModelSpec&);
  // From an adapter directory of type peft_type (nullptr: none is read).
  std::shared_ptr<const Method> (*from_adapter)(const std::string& dir, const model::ModelSpec&);
};

// The one lookup of a `peft.method` value: its row, or nullptr ("none": full fine-tuning). Nothing
// else compares peft.method's value.
[[nodiscard]] const MethodEntry* find_method(std::string_view name);

// The method the config's peft section describes (nullptr for full fine-tuning), for a base of
// `spec` (read for an adapter's checks).
[[nodiscard]] std::shared_ptr<const Method> method_from_config(const config::PeftConfig& peft,
                                                               const model::ModelSpec& spec);

// The method of an adapter directory (`--adapter`), by its adapter_config.json's peft_type.
[[nodiscard]] std::shared_ptr<const Method> method_from_adapter(const std::string& dir,
                                                                const model::ModelSpec& spec);

// The methods `export --format peft` writes, for messages: "LoRA and prompt-tuning".
[[nodiscard]] std::string peft_format_methods();

}  // namespace tailor::peft
