// Writing the resolved config: YAML scalars that read back to the same value, and a writer for
// "section:" / "  key: value" lines.
//
// Floats are written in fmt's shortest round-trip form, so load_config_text(to_yaml(c)) gives back
// exactly c. Strings stay plain only when no YAML reader could take them for anything else
// (a number, a bool, null, or syntax); otherwise they are double-quoted with escapes. The bytes
// written are hashed into checkpoint manifests: a change here breaks the resume of every run.
#pragma once

#include <string>
#include <string_view>

namespace tailor::config {

// Shortest round-trip digits, with ".0" added to whole numbers (10000 -> 10000.0; 1e-05 stays).
[[nodiscard]] std::string yaml_float(double v);

// `s` plain when that is unambiguous, else double-quoted with escapes.
[[nodiscard]] std::string yaml_string(std::string_view s);

class YamlWriter {
 public:
  void section(std::string_view name);
  // "  key: value" (value may be empty: a block follows).
  void line(std::string_view key, std::string_view value);
  // "  # text"
  void comment(std::string_view text);
  // Lines written as they are (blocks below a key).
  void raw(std::string_view text) { out_ += text; }
  [[nodiscard]] std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace tailor::config
