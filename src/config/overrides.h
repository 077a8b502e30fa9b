// Command-line overrides: `key.path=value`, applied to the parsed tree before validation.
//
// The value is parsed as YAML (`train.steps=10`, `optimizer.betas=[0.9,0.95]`,
// `output.dir=runs/x`), and every node it creates carries the location "<override N>" (N is
// 1-based), so that later problems with it read `<override N>: key.path: reason`. Sections and keys
// that do not exist yet are created (the schema check then reports the ones it does not know);
// a path through a value that is not a mapping replaces that value with a mapping.
#pragma once

#include <string>
#include <vector>

#include "config/problems.h"
#include "config/yaml_tree.h"

namespace tailor::config {

// Applies the overrides in order to `root` (a mapping). Malformed overrides (no '=', an empty key
// path or key, a value that is not valid YAML) are reported and skipped.
void apply_overrides(YamlNode& root, const std::vector<std::string>& overrides, Problems& problems);

}  // namespace tailor::config
