// schema_keys(): every row of every section table, with its default as to_yaml writes it.
#include <string>
#include <vector>

#include "config/schema.h"

namespace tailor::config {
namespace {

// The value of the "  key: value" line a row writes for S{} ("" when it writes a block only).
template <typename S>
std::string default_yaml(const Field<S>& f) {
  YamlWriter w;
  f.type.write(w, f.key, S{});
  const std::string text = w.take();
  const std::string prefix = "  " + std::string(f.key) + ": ";
  if (text.rfind(prefix, 0) != 0) return "";
  return text.substr(prefix.size(), text.find('\n') - prefix.size());
}

template <typename S>
void add_keys(const Section<S>& section, std::vector<SchemaKey>& out) {
  for (const Field<S>& f : section.fields)
    out.push_back({section.name, f.key, f.type.name, f.type.presence == Presence::kRequired,
                   f.type.choices, f.resume, f.doc, default_yaml(f)});
}

}  // namespace

std::vector<SchemaKey> schema_keys() {
  std::vector<SchemaKey> out;
  for_each_section([&](const auto& section) { add_keys(section, out); });
  return out;
}

}  // namespace tailor::config
