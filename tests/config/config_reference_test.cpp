// docs/config-reference.md cannot drift from the schema: every key the resolved config writes (the
// config code's own list of keys and defaults) has a row in its section's table of the reference.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "config/config.h"

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

}  // namespace
}  // namespace tailor::config
