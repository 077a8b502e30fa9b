// Which config keys a resumed run may change: the rows of the schema tables marked
// Resume::kMayChange (see config.h, resume_conflicts). Values are compared as the resolved config
// writes them, which is what a checkpoint's manifest hashes.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/config.h"
#include "config/schema.h"

namespace tailor::config {
namespace {

// A flattened key ("data.template.preset.name") belongs to the row of its first two parts; keys
// that match no row are fixed.
bool is_mutable(const std::vector<SchemaKey>& schema, const std::string& key) {
  for (const SchemaKey& k : schema) {
    const std::string row = fmt::format("{}.{}", k.section, k.key);
    if (key == row || key.rfind(row + ".", 0) == 0) return k.resume == Resume::kMayChange;
  }
  return false;
}

void flatten(const YAML::Node& n, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n)
      flatten(
          kv.second,
          prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>(),
          out);
  } else {
    YAML::Emitter e;
    e << YAML::Flow << n;
    out[prefix] = e.c_str();
  }
}

std::map<std::string, std::string> flat(const ExperimentConfig& c) {
  std::map<std::string, std::string> out;
  flatten(YAML::Load(to_yaml(c)), "", out);
  return out;
}

}  // namespace

std::vector<std::string> resume_mutable_keys() {
  std::vector<std::string> out;
  for (const SchemaKey& k : schema_keys())
    if (k.resume == Resume::kMayChange) out.push_back(fmt::format("{}.{}", k.section, k.key));
  return out;
}

std::vector<std::string> resume_conflicts(const ExperimentConfig& saved,
                                          const ExperimentConfig& now) {
  const std::vector<SchemaKey> schema = schema_keys();
  const auto a = flat(saved);
  const auto b = flat(now);
  std::vector<std::string> out;
  for (const auto& [key, va] : a) {
    if (is_mutable(schema, key)) continue;
    const auto it = b.find(key);
    const std::string vb = it == b.end() ? "(absent)" : it->second;
    if (va != vb) out.push_back(fmt::format("{}: {} in the checkpoint, {} now", key, va, vb));
  }
  for (const auto& [key, vb] : b)
    if (!is_mutable(schema, key) && a.count(key) == 0)
      out.push_back(fmt::format("{}: (absent) in the checkpoint, {} now", key, vb));
  return out;
}

}  // namespace tailor::config
