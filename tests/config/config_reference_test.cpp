// docs/config-reference.md cannot drift from the schema: every row of the schema tables
// (src/config/schema/) has a row in its section's table of the reference, with the same type, the
// same default and every name of a choice; and every key the resolved config writes is documented.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/scalars.h"
#include "config/schema.h"

namespace tailor::config {
namespace {

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// section -> keys documented as table rows "| `key` |" under "### section".
std::map<std::string, std::set<std::string>> documented_keys(const std::string& markdown) {
  std::map<std::string, std::set<std::string>> out;
  std::istringstream in(markdown);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) section.clear();
    if (line.rfind("### ", 0) == 0) section = line.substr(4);
    if (!section.empty() && line.rfind("| `", 0) == 0) {
      const auto end = line.find('`', 3);
      if (end != std::string::npos) out[section].insert(line.substr(3, end - 3));
    }
  }
  return out;
}

// section -> keys of a resolved config (two-space-indented "key:" lines under "section:").
std::map<std::string, std::set<std::string>> resolved_keys(const std::string& yaml) {
  std::map<std::string, std::set<std::string>> out;
  std::istringstream in(yaml);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] != ' ') {
      section = line.substr(0, line.find(':'));
    } else if (line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] != ' ' && line[2] != '-' &&
               line[2] != '#') {
      out[section].insert(line.substr(2, line.find(':') - 2));
    }
  }
  return out;
}

TEST(ConfigReference, EveryResolvedKeyIsDocumentedInItsSection) {
  // Configs that between them write every key: text data, JSONL with a template, each PEFT
  // method, prompt search.
  const std::string base = TAILOR_SOURCE_DIR "/configs/";
  std::vector<ExperimentConfig> configs = {
      load_config(base + "quickstart.yaml"),
      load_config(base + "translation-example.yaml", {"peft.method=lora"}),
      load_config(base + "chat-example.yaml", {"peft.method=prompt_tuning"}),
      load_config(base + "quickstart.yaml", {"peft.method=adapter"}),
  };
  ExperimentConfig search = configs[1];
  PromptCandidateConfig cand;
  cand.name = "x";
  search.prompt_search.candidates.push_back(cand);
  configs.push_back(search);
  const auto docs = documented_keys(read(TAILOR_SOURCE_DIR "/docs/config-reference.md"));
  std::size_t checked = 0;
  for (const ExperimentConfig& c : configs)
    for (const auto& [section, keys] : resolved_keys(to_yaml(c)))
      for (const std::string& key : keys) {
        ++checked;
        const auto it = docs.find(section);
        EXPECT_TRUE(it != docs.end() && it->second.count(key) > 0)
            << section << "." << key << " is written by to_yaml() but has no row under ### "
            << section << " in docs/config-reference.md";
      }
  EXPECT_GT(checked, 60u);
}

// The cells of a documented key's row: | `key` | type | default | constraint | meaning |.
struct DocRow {
  std::string type, default_value, constraint;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(' ');
  const auto e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// "section.key" -> its row, for the keys of the first table under each "### section" (the tables
// that follow, such as data.template's keys, document keys below a key).
std::map<std::string, DocRow> documented_rows(const std::string& markdown) {
  std::map<std::string, DocRow> out;
  std::istringstream in(markdown);
  std::string line, section;
  bool table_done = false;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) section.clear();
    if (line.rfind("### ", 0) == 0) {
      section = line.substr(4);
      table_done = in_table = false;
    }
    const bool row = line.rfind("|", 0) == 0;
    if (in_table && !row) table_done = true;
    in_table = row && !table_done;
    if (section.empty() || table_done || line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::istringstream cells_in(line.substr(1));
    for (std::string cell; std::getline(cells_in, cell, '|');) cells.push_back(trim(cell));
    if (cells.size() < 4) continue;
    const std::string key = cells[0].substr(1, cells[0].find('`', 1) - 1);
    out[section + "." + key] = {cells[1], cells[2], cells[3]};
  }
  return out;
}

// The first `value` of a cell, without its backticks; "" when the cell has none.
std::string first_code(const std::string& cell) {
  const auto open = cell.find('`');
  if (open == std::string::npos) return "";
  const auto close = cell.find('`', open + 1);
  return close == std::string::npos ? "" : cell.substr(open + 1, close - open - 1);
}

// The same value: equal text (the written string may be quoted: ".cache/tailor"), or numbers that
// compare equal (`1e-5` and 1e-05, `600` and 600.0).
bool same_value(const std::string& documented, const std::string& written) {
  if (documented == written || "\"" + documented + "\"" == written) return true;
  double a = 0.0;
  double b = 0.0;
  return parse_float(documented, a) == ParseStatus::kOk &&
         parse_float(written, b) == ParseStatus::kOk && a == b;
}

TEST(ConfigReference, EverySchemaKeyHasARowInItsSection) {
  const auto docs = documented_rows(read(TAILOR_SOURCE_DIR "/docs/config-reference.md"));
  const std::vector<SchemaKey> keys = schema_keys();
  for (const SchemaKey& k : keys) {
    const std::string path = fmt::format("{}.{}", k.section, k.key);
    const auto it = docs.find(path);
    if (it == docs.end()) {
      ADD_FAILURE() << path << " is in the schema (src/config/schema/" << k.section
                    << ".cpp) but has no row under ### " << k.section
                    << " in docs/config-reference.md";
      continue;
    }
    const DocRow& row = it->second;
    EXPECT_EQ(row.type, k.type) << path << ": the reference's Type column";
    EXPECT_EQ(row.default_value == "Req.", k.required)
        << path << ": \"Req.\" in the reference's Default column marks exactly the required keys";
    for (std::string_view name : k.choices)
      EXPECT_NE(row.constraint.find(fmt::format("`{}`", name)), std::string::npos)
          << path << ": the reference does not list the choice " << name;
    // A default documented as a value is the struct's (a default derived from other keys, such
    // as `num_heads`, is not a value of the key's type and is left alone).
    const std::string documented = first_code(row.default_value);
    double number = 0.0;
    const bool numeric = k.type == "int" || k.type == "float";
    if (!k.required && !documented.empty() &&
        (!numeric || parse_float(documented, number) == ParseStatus::kOk)) {
      EXPECT_TRUE(same_value(documented, k.default_yaml))
          << path << ": documented default `" << documented << "`, the schema's is "
          << k.default_yaml;
    }
  }
  EXPECT_GT(keys.size(), 70u);
}

TEST(ConfigReference, EveryDocumentedKeyIsInTheSchema) {
  std::set<std::string> schema;
  for (const SchemaKey& k : schema_keys()) schema.insert(fmt::format("{}.{}", k.section, k.key));
  for (const auto& [path, row] : documented_rows(read(TAILOR_SOURCE_DIR "/docs/config-reference.md")))
    EXPECT_TRUE(schema.count(path) > 0) << path << " is documented but is not a key of the schema";
}

// Keys documented in the tables that follow a "`section.key`:" line (data.template's keys): each
// must be a key the parser knows. Setting it by an override may give a type or range error (the
// value is arbitrary), but never "unknown key".
std::vector<std::string> documented_nested_keys(const std::string& markdown) {
  std::vector<std::string> out;
  std::istringstream in(markdown);
  std::string line, prefix;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0 || line.rfind("### ", 0) == 0) prefix.clear();
    if (line.size() > 3 && line.front() == '`' && line.substr(line.size() - 2) == "`:")
      prefix = line.substr(1, line.size() - 3);
    if (!prefix.empty() && line.rfind("| `", 0) == 0) {
      const auto end = line.find('`', 3);
      if (end != std::string::npos) out.push_back(prefix + "." + line.substr(3, end - 3));
    }
  }
  return out;
}

TEST(ConfigReference, EveryDocumentedNestedKeyIsKnownToTheParser) {
  const std::vector<std::string> keys =
      documented_nested_keys(read(TAILOR_SOURCE_DIR "/docs/config-reference.md"));
  ASSERT_GE(keys.size(), 5u) << "no nested key tables found in docs/config-reference.md";
  const std::string config = TAILOR_SOURCE_DIR "/configs/translation-example.yaml";
  for (const std::string& key : keys) {
    try {
      (void)load_config(config, {key + "=0"});
    } catch (const ConfigError& e) {
      for (const std::string& problem : e.problems())
        EXPECT_EQ(problem.find(key + ": unknown key"), std::string::npos)
            << key << " is documented but the parser does not know it: " << problem;
    }
  }
  // The check can fail: a key that does not exist is reported as unknown.
  try {
    (void)load_config(config, {"data.template.no_such_key=0"});
    ADD_FAILURE() << "an unknown nested key was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.template.no_such_key: unknown key"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tailor::config
