// Loading an experiment config: read, parse, override, read every section from its table, then
// the rules across sections.
//
// Defaults are the initializers of config.h's structs; a section's table (schema.h) reads each
// key over them, so values the user gives always win (model.family: gpt2 changes some defaults
// before the keys are read). Values derived from other keys and rules across sections follow
// (cross_field_rules.h).
#include "config/config.h"

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include "config/cross_field_rules.h"
#include "config/overrides.h"
#include "config/problems.h"
#include "config/scalars.h"
#include "config/schema.h"
#include "config/yaml_tree.h"

namespace tailor::config {
namespace {

// Reads the whole file; an empty optional and `error` set when it cannot be read.
std::optional<std::string> read_file(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

template <typename S>
void read_section(const Section<S>& section, ReadContext& ctx, ExperimentConfig& c) {
  ctx.reader.begin_section(std::string(section.name));
  SectionReader<S> r(section, ctx, c.*section.member);
  if (section.read != nullptr) {
    section.read(r);
  } else {
    r.read_rest();
  }
  ctx.reader.end_section();
}

}  // namespace

ExperimentConfig load_config_text(const std::string& text, const std::string& name,
                                  const std::vector<std::string>& overrides) {
  Problems problems;
  YamlParse parsed = parse_yaml(text, name);
  if (parsed.failed) {
    problems.add_unkeyed(parsed.error_where, parsed.error_reason);
    problems.raise_if_any();
  }
  if (!parsed.root) {
    problems.add_unkeyed(Location::whole_file(name),
                         "the config is empty (expected a mapping of sections: output, model, "
                         "data, train, optimizer, ...)");
    problems.raise_if_any();
  }
  YamlNode& root = *parsed.root;
  if (!root.is_map()) {
    problems.add_unkeyed(
        root.loc, fmt::format("the config must be a mapping of sections, got {}", describe(root)));
    problems.raise_if_any();
  }
  check_duplicate_keys(root, "", problems);
  apply_overrides(root, overrides, problems);

  ExperimentConfig config;
  config.source = name;
  SchemaReader reader(root, name, problems);
  ReadContext ctx{reader, problems, config.source, config};
  for_each_section([&](const auto& section) { read_section(section, ctx, config); });
  reader.end_sections();
  apply_cross_field_rules(reader, config);
  problems.raise_if_any();
  return config;
}

ExperimentConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::string error;
  const std::optional<std::string> text = read_file(path, error);
  if (!text) throw ConfigError({fmt::format("{}: cannot read: {}", path, error)});
  return load_config_text(*text, path, overrides);
}

}  // namespace tailor::config
