// Chat template files and inline templates -> ChatTemplateConfig (see chat_template.h).
#include "config/chat_template.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/scalars.h"

namespace tailor::config {
namespace {

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

class TemplateReader {
 public:
  explicit TemplateReader(Problems& problems) : problems_(problems) {}

  void unknown(const YamlEntry& e, const std::string& path, const std::vector<std::string>& known) {
    const auto hint = closest_key(e.key, known);
    problems_.add(e.key_loc, join(path, e.key),
                  hint ? fmt::format("unknown key (did you mean \"{}\"?)", *hint) : "unknown key");
  }

  // A string value; `key:` with no value reads as "".
  bool string(const YamlEntry& e, const std::string& path, std::string& out) {
    if (e.value.kind == YamlNode::Kind::kNull) {
      out.clear();
      return true;
    }
    if (e.value.kind != YamlNode::Kind::kScalar) {
      problems_.add(e.value.loc, join(path, e.key),
                    fmt::format("expected a string, got {}", describe(e.value)));
      return false;
    }
    out = e.value.scalar;
    return true;
  }

  bool flag(const YamlEntry& e, const std::string& path, bool& out) {
    const YamlNode& v = e.value;
    if (v.kind != YamlNode::Kind::kScalar || !v.plain ||
        (v.scalar != "true" && v.scalar != "false")) {
      problems_.add(v.loc, join(path, e.key),
                    fmt::format("expected true or false, got {}", describe(v)));
      return false;
    }
    out = v.scalar == "true";
    return true;
  }

  template <NamedEnum E>
  bool choice(const YamlEntry& e, const std::string& path, E& out) {
    const YamlNode& v = e.value;
    const std::optional<E> value =
        v.kind == YamlNode::Kind::kScalar ? from_name<E>(v.scalar) : std::nullopt;
    if (!value) {
      problems_.add(v.loc, join(path, e.key),
                    fmt::format("must be one of {} (got {})", fmt::join(names_of<E>(), ", "),
                                v.kind == YamlNode::Kind::kScalar ? quote(v.scalar) : describe(v)));
      return false;
    }
    out = *value;
    return true;
  }

  // Whether a template gave the assistant's final_prefix / final_suffix (else: prefix / suffix).
  struct AssistantKeys {
    bool final_prefix = false, final_suffix = false;
  };

  // system / user / assistant: {prefix, suffix, separator, trim} and the role's own extra keys
  // (system: placement; assistant: final_prefix, final_lstrip, final_suffix).
  void role(const YamlEntry& e, const std::string& path, ChatRoleConfig& out, ChatTemplateConfig& t,
            std::optional<bool>& trim, AssistantKeys& given) {
    const std::string rpath = join(path, e.key);
    if (e.value.kind == YamlNode::Kind::kNull) return;
    if (!e.value.is_map()) {
      problems_.add(e.value.loc, rpath,
                    fmt::format("expected a mapping {{prefix, suffix, separator}}, got {}",
                                describe(e.value)));
      return;
    }
    const bool system = e.key == "system", assistant = e.key == "assistant";
    std::vector<std::string> known = {"prefix", "suffix", "separator", "trim"};
    if (system) known.push_back("placement");
    if (assistant) known.insert(known.end(), {"final_prefix", "final_lstrip", "final_suffix"});
    for (const YamlEntry& k : e.value.entries) {
      if (k.key == "prefix") {
        string(k, rpath, out.prefix);
      } else if (k.key == "suffix") {
        string(k, rpath, out.suffix);
      } else if (k.key == "separator") {
        string(k, rpath, out.separator);
      } else if (k.key == "trim") {
        bool v = false;
        if (flag(k, rpath, v)) trim = v;
      } else if (k.key == "placement" && system) {
        choice(k, rpath, t.system_placement);
      } else if (k.key == "final_prefix" && assistant) {
        given.final_prefix = string(k, rpath, t.assistant_final_prefix);
      } else if (k.key == "final_lstrip" && assistant) {
        string(k, rpath, t.assistant_final_lstrip);
      } else if (k.key == "final_suffix" && assistant) {
        given.final_suffix = string(k, rpath, t.assistant_final_suffix);
      } else {
        unknown(k, rpath, known);
      }
    }
  }

 private:
  Problems& problems_;
};

// Every string the template writes, for checking special_tokens against.
std::string all_text(const ChatTemplateConfig& t) {
  std::string s = t.bos;
  for (const ChatRoleConfig* r : {&t.system, &t.user, &t.assistant})
    s += "\n" + r->prefix + "\n" + r->suffix + "\n" + r->separator;
  return s + "\n" + t.assistant_final_prefix + "\n" + t.assistant_final_suffix + "\n" + t.end;
}

}  // namespace

void read_chat_template(const YamlNode& node, const std::string& path, Problems& problems,
                        ChatTemplateConfig& out) {
  if (!node.is_map()) {
    problems.add(node.loc, path.empty() ? "template" : path,
                 fmt::format("expected a mapping (name, bos, system, user, assistant, ...), got {}",
                             describe(node)));
    return;
  }
  check_duplicate_keys(node, path, problems);
  TemplateReader r(problems);
  const std::vector<std::string> known = {
      "name", "bos",       "tokenizer_bos",     "trim",           "system",
      "user", "assistant", "prompt_completion", "special_tokens", "end"};
  TemplateReader::AssistantKeys assistant_keys;
  bool trim = false;  // every role's default
  std::optional<bool> system_trim, user_trim, assistant_trim;
  const YamlEntry* tokenizer_bos = nullptr;
  const YamlEntry* special = nullptr;
  for (const YamlEntry& e : node.entries) {
    if (e.key == "name")
      r.string(e, path, out.name);
    else if (e.key == "bos")
      r.string(e, path, out.bos);
    else if (e.key == "tokenizer_bos")
      tokenizer_bos = r.flag(e, path, out.tokenizer_bos) ? &e : nullptr;
    else if (e.key == "trim")
      r.flag(e, path, trim);
    else if (e.key == "system")
      r.role(e, path, out.system, out, system_trim, assistant_keys);
    else if (e.key == "user")
      r.role(e, path, out.user, out, user_trim, assistant_keys);
    else if (e.key == "assistant")
      r.role(e, path, out.assistant, out, assistant_trim, assistant_keys);
    else if (e.key == "end")
      r.string(e, path, out.end);
    else if (e.key == "prompt_completion")
      r.choice(e, path, out.prompt_completion);
    else if (e.key == "special_tokens")
      special = &e;
    else
      r.unknown(e, path, known);
  }
  out.system.trim = system_trim.value_or(trim);
  out.user.trim = user_trim.value_or(trim);
  out.assistant.trim = assistant_trim.value_or(trim);
  if (!assistant_keys.final_prefix) out.assistant_final_prefix = out.assistant.prefix;
  if (!assistant_keys.final_suffix) out.assistant_final_suffix = out.assistant.suffix;
  if (tokenizer_bos != nullptr && out.tokenizer_bos && !out.bos.empty())
    problems.add(tokenizer_bos->value.loc, join(path, "tokenizer_bos"),
                 "give bos (text the template writes) or tokenizer_bos: true, not both");
  if (special != nullptr) {
    const std::string spath = join(path, "special_tokens");
    const YamlNode& list = special->value;
    if (list.kind != YamlNode::Kind::kSequence) {
      problems.add(list.loc, spath,
                   fmt::format("expected a list of strings, got {}", describe(list)));
      return;
    }
    const std::string text = all_text(out);
    for (std::size_t i = 0; i < list.items.size(); ++i) {
      const YamlNode& item = list.items[i];
      const std::string ipath = fmt::format("{}[{}]", spath, i);
      if (item.kind != YamlNode::Kind::kScalar || item.scalar.empty()) {
        problems.add(item.loc, ipath,
                     fmt::format("expected a non-empty string, got {}", describe(item)));
      } else if (text.find(item.scalar) == std::string::npos) {
        problems.add(item.loc, ipath,
                     fmt::format("{} appears nowhere in the template (bos, prefixes, suffixes, "
                                 "separators, end)",
                                 quote(item.scalar)));
      } else {
        out.special_tokens.push_back(item.scalar);
      }
    }
  }
}

bool read_chat_template_file(const std::string& file, Problems& problems, ChatTemplateConfig& out,
                             std::string& error) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    error = "file not found";
    return false;
  }
  if (std::filesystem::is_directory(file, ec)) {
    error = "is a directory";
    return false;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  YamlParse parsed = parse_yaml(text.str(), file);
  if (parsed.failed) {
    problems.add_unkeyed(parsed.error_where, parsed.error_reason);
    return true;
  }
  if (!parsed.root) {
    problems.add_unkeyed(Location::whole_file(file),
                         "the template file is empty (expected a mapping: name, bos, system, user, "
                         "assistant, ...)");
    return true;
  }
  out.name = std::filesystem::path(file).stem().string();
  read_chat_template(*parsed.root, "", problems, out);
  return true;
}

ChatTemplateConfig load_chat_template(const std::string& path) {
  Problems problems;
  ChatTemplateConfig out;
  std::string error;
  if (!read_chat_template_file(path, problems, out, error))
    throw ConfigError({fmt::format("{}: cannot read: {}", path, error)});
  problems.raise_if_any();
  return out;
}

}  // namespace tailor::config
