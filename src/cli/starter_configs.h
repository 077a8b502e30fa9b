// `tailor init [preset]`: commented starter configs, and `tailor configs`: the bundled ones.
//
// Each preset is a complete experiment that `tailor validate` accepts when run from the
// repository root (its data are the bundled datasets/), with every key a new user is likely to
// change explained beside it, so that it can be copied and edited rather than written from the
// reference. tests/cli/init_cli_test.cpp validates every preset.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tailor::cli {

// The preset names, in the order `tailor init --help` lists them.
[[nodiscard]] std::vector<std::string_view> starter_presets();

// The YAML of a preset; nullopt for an unknown name.
[[nodiscard]] std::optional<std::string> starter_config(std::string_view preset);

// A bundled config (configs/*.yaml) and its one-line description: the first sentence of the
// comment that opens the file.
struct BundledConfig {
  std::string path;         // as found (configs/quickstart.yaml)
  std::string description;
};

// The bundled configs, by file name, of the first directory of `candidates` that has any.
[[nodiscard]] std::vector<BundledConfig> bundled_configs(
    const std::vector<std::string>& candidates);

// The first sentence of the comment block that opens a YAML text (lines starting with "#",
// joined), or "" when it opens with none.
[[nodiscard]] std::string header_sentence(std::string_view yaml);

}  // namespace tailor::cli
