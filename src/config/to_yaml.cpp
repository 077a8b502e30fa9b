// The resolved config as YAML: every section and key in the order of the schema tables, each
// written by its row (schema_table.h; scalars in yaml_writer.h).
#include <string>

#include "config/config.h"
#include "config/schema.h"

namespace tailor::config {
namespace {

template <typename S>
void write_section(YamlWriter& w, const Section<S>& section, const ExperimentConfig& c) {
  const S& s = c.*section.member;
  if (section.written != nullptr && !section.written(s)) return;
  w.section(section.name);
  for (const Field<S>& f : section.fields) {
    if (section.writes_key != nullptr && !section.writes_key(s, f.key)) continue;
    if (f.written != nullptr && !f.written(s)) {
      // (an empty note: nothing)
      if (f.omitted_note != nullptr)
        if (const std::string note = f.omitted_note(s); !note.empty()) w.comment(note);
      continue;
    }
    f.type.write(w, f.key, s);
  }
}

}  // namespace

std::string to_yaml(const ExperimentConfig& c) {
  YamlWriter w;
  for_each_section([&](const auto& section) { write_section(w, section, c); });
  return "# Tailor resolved config: every key with the value the run uses.\n" + w.take();
}

}  // namespace tailor::config
