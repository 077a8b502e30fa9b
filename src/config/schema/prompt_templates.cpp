// data.template and prompt_search.candidates; see prompt_templates.h.
#include "config/schema/prompt_templates.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <set>
#include <string_view>
#include <utility>

#include "config/chat_template.h"
#include "config/scalars.h"

namespace tailor::config {
namespace {

// The placeholders of a translation template (data/template.h); "" when it is fine.
std::string translation_template_problem(std::string_view t) {
  constexpr std::string_view kKnown[] = {"src", "src_lang", "tgt_lang", "src_lang_name",
                                         "tgt_lang_name"};
  bool has_src = false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '{') continue;
    const auto close = t.find('}', i);
    if (close == std::string_view::npos) return fmt::format("unclosed placeholder at offset {}", i);
    const std::string_view name = t.substr(i + 1, close - i - 1);
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown))
      return fmt::format(
          "unknown placeholder {{{}}} (known: {{src}}, {{src_lang}}, {{tgt_lang}}, "
          "{{src_lang_name}}, {{tgt_lang_name}})",
          name);
    has_src = has_src || name == "src";
    i = close;
  }
  return has_src ? "" : "no {src} placeholder (the sentence to translate)";
}

// The built-in presets (data/template.h; this module cannot see it).
constexpr std::string_view kPresetNames[] = {"plain", "llama3", "chatml", "mistral",
                                             "qwen3", "phi3",   "gemma"};

// preset (`path`): a built-in name, the path of a template file (with a '/' or ending in
// .yaml/.yml; relative to the working directory), or a template mapping inline.
void read_preset(SchemaReader& r, const std::string& path, Problems& problems, TemplateConfig& t) {
  const YamlNode* node = r.read_node("preset");
  if (node == nullptr) return;
  if (node->is_map()) {
    ChatTemplateConfig chat;
    chat.name = "inline";
    read_chat_template(*node, path, problems, chat);
    t.preset = "inline";
    t.chat = std::move(chat);
    return;
  }
  if (node->kind == YamlNode::Kind::kScalar) {
    const std::string& v = node->scalar;
    if (std::find(std::begin(kPresetNames), std::end(kPresetNames), v) !=
        std::end(kPresetNames)) {
      t.preset = v;
      t.chat.reset();
      return;
    }
    const auto ends_with = [&](std::string_view end) {
      return v.size() >= end.size() && v.compare(v.size() - end.size(), end.size(), end) == 0;
    };
    if (v.find('/') != std::string::npos || ends_with(".yaml") || ends_with(".yml")) {
      ChatTemplateConfig chat;
      std::string error;
      if (!read_chat_template_file(v, problems, chat, error)) {
        r.problem_at(node->loc, path, fmt::format("{}: {}", error, v));
        r.mark_bad(path);
        return;
      }
      t.preset = v;
      t.chat = std::move(chat);
      return;
    }
  }
  r.problem_at(
      node->loc, path,
      fmt::format("must be plain, llama3, chatml, mistral, qwen3, phi3, gemma or the path of a "
                  "template file (*.yaml; see configs/templates/) (got {})",
                  node->kind == YamlNode::Kind::kScalar ? quote(node->scalar) : describe(*node)));
  r.mark_bad(path);
}

// `preset: NAME`, or a template from a file or inline written out as a mapping (so the resolved
// config does not depend on the file), each line starting with `indent`.
std::string preset_yaml(const TemplateConfig& t, std::string_view indent) {
  if (!t.chat) return fmt::format("{}preset: {}\n", indent, yaml_string(t.preset));
  const ChatTemplateConfig& c = *t.chat;
  const auto role = [](const ChatRoleConfig& r) {
    return fmt::format("prefix: {}, suffix: {}, separator: {}, trim: {}", yaml_string(r.prefix),
                       yaml_string(r.suffix), yaml_string(r.separator),
                       r.trim ? "true" : "false");
  };
  std::string tokens;
  for (const std::string& tok : c.special_tokens)
    tokens += (tokens.empty() ? "" : ", ") + yaml_string(tok);
  std::string out = fmt::format("{}preset:\n", indent);
  const auto line = [&](std::string_view key, const std::string& value) {
    out += fmt::format("{}  {}: {}\n", indent, key, value);
  };
  line("name", yaml_string(c.name));
  line("bos", yaml_string(c.bos));
  line("tokenizer_bos", c.tokenizer_bos ? "true" : "false");
  line("system", fmt::format("{{placement: {}, {}}}", yaml_string(name_of(c.system_placement)),
                             role(c.system)));
  line("user", fmt::format("{{{}}}", role(c.user)));
  line("assistant", fmt::format("{{{}, final_prefix: {}, final_lstrip: {}, final_suffix: {}}}",
                                role(c.assistant), yaml_string(c.assistant_final_prefix),
                                yaml_string(c.assistant_final_lstrip),
                                yaml_string(c.assistant_final_suffix)));
  line("end", yaml_string(c.end));
  line("prompt_completion", yaml_string(name_of(c.prompt_completion)));
  line("special_tokens", fmt::format("[{}]", tokens));
  return out;
}

void read_few_shot(SchemaReader& r, TemplateConfig& t) {
  const YamlNode* shots = r.read_node("few_shot");
  if (shots == nullptr) return;
  if (shots->kind != YamlNode::Kind::kSequence) {
    r.problem_at(
        shots->loc, "data.template.few_shot",
        fmt::format("expected a list of {{prompt, completion}}, got {}", describe(*shots)));
    return;
  }
  for (std::size_t i = 0; i < shots->items.size(); ++i) {
    const YamlNode& item = shots->items[i];
    const std::string path = fmt::format("data.template.few_shot[{}]", i);
    FewShotConfig ex;
    if (!item.is_map()) {
      r.problem_at(item.loc, path,
                   fmt::format("expected {{prompt, completion}}, got {}", describe(item)));
      continue;
    }
    for (const YamlEntry& e : item.entries) {
      std::string* out = e.key == "prompt"       ? &ex.prompt
                         : e.key == "completion" ? &ex.completion
                                                 : nullptr;
      if (out == nullptr) {
        const auto hint = closest_key(e.key, {"prompt", "completion"});
        r.problem_at(
            e.key_loc, path + "." + e.key,
            hint ? fmt::format("unknown key (did you mean \"{}\"?)", *hint) : "unknown key");
      } else if (e.value.kind != YamlNode::Kind::kScalar) {
        r.problem_at(e.value.loc, path + "." + e.key,
                     fmt::format("expected a string, got {}", describe(e.value)));
      } else {
        *out = e.value.scalar;
      }
    }
    for (const char* key : {"prompt", "completion"})
      if (item.find(key) == nullptr)
        r.problem_at(item.loc, fmt::format("{}.{}", path, key), "required key is missing");
    t.few_shot.push_back(std::move(ex));
  }
}

// prompt_search.candidates[i] over `base` (data.template).
void read_candidate(const YamlNode& item, const std::string& path, const std::string& file,
                    Problems& problems, const TemplateConfig& base, PromptCandidateConfig& out) {
  YamlNode root;
  root.kind = YamlNode::Kind::kMap;
  root.entries.push_back({path, item.loc, item});
  SchemaReader c(root, file, problems);
  c.begin_section(path);
  out.tmpl = base;
  c.read_string("name", out.name, Presence::kRequired);
  read_preset(c, path + ".preset", problems, out.tmpl);
  c.read_string("system", out.tmpl.system);
  if (c.read_string("translation", out.tmpl.translation)) {
    const std::string why = translation_template_problem(out.tmpl.translation);
    if (!why.empty()) c.problem(path + ".translation", why);
  }
  if (c.read_string("few_shot_file", out.tmpl.few_shot_file) && !out.tmpl.few_shot_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(out.tmpl.few_shot_file, ec))
      c.problem(path + ".few_shot_file", fmt::format("file not found: {}", out.tmpl.few_shot_file));
    out.tmpl.few_shot.clear();  // a file replaces inline examples
  }
  if (c.read_int("few_shot_count", out.tmpl.few_shot_count, kAtLeast0) &&
      out.tmpl.few_shot_count > 0 && out.tmpl.few_shot_file.empty())
    c.problem(path + ".few_shot_count", "only used with few_shot_file");
  c.end_section();
}

}  // namespace

// Read with a reader of its own whose one section is "data.template".
void read_data_template(ReadContext& ctx, DataConfig& d) {
  SchemaReader& r = ctx.reader;
  TemplateConfig& t = d.prompt_template;
  const YamlNode* node = r.read_node("template");
  if (node == nullptr || node->kind == YamlNode::Kind::kNull) return;
  if (!node->is_map()) {
    r.problem_at(
        node->loc, "data.template",
        fmt::format("expected a mapping (preset, system, few_shot, ...), got {}", describe(*node)));
    r.mark_bad("data.template");
    return;
  }
  YamlNode root;
  root.kind = YamlNode::Kind::kMap;
  root.entries.push_back({"data.template", node->loc, *node});
  SchemaReader t_reader(root, ctx.file, ctx.problems);
  t_reader.begin_section("data.template");
  read_preset(t_reader, "data.template.preset", ctx.problems, t);
  t_reader.read_string("system", t.system);
  read_few_shot(t_reader, t);
  if (t_reader.read_string("few_shot_file", t.few_shot_file) && !t.few_shot_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(t.few_shot_file, ec))
      t_reader.problem("data.template.few_shot_file",
                       fmt::format("file not found: {}", t.few_shot_file));
    if (!t.few_shot.empty())
      t_reader.problem("data.template.few_shot_file",
                       "give few_shot (inline examples) or few_shot_file, not both");
  }
  if (t_reader.read_int("few_shot_count", t.few_shot_count, kAtLeast0) && t.few_shot_count > 0 &&
      t.few_shot_file.empty())
    t_reader.problem("data.template.few_shot_count", "only used with few_shot_file");
  if (t_reader.read_string("translation", t.translation)) {
    const std::string why = translation_template_problem(t.translation);
    if (!why.empty()) t_reader.problem("data.template.translation", why);
  }
  t_reader.end_section();
}

void write_data_template(YamlWriter& w, const DataConfig& d) {
  const TemplateConfig& t = d.prompt_template;
  w.line("template", "");
  w.raw(preset_yaml(t, "    "));
  w.raw(fmt::format("    system: {}\n", yaml_string(t.system)));
  if (!t.few_shot.empty()) {
    w.raw("    few_shot:\n");
    for (const FewShotConfig& ex : t.few_shot)
      w.raw(fmt::format("      - {{prompt: {}, completion: {}}}\n", yaml_string(ex.prompt),
                        yaml_string(ex.completion)));
  }
  if (!t.few_shot_file.empty()) {
    w.raw(fmt::format("    few_shot_file: {}\n", yaml_string(t.few_shot_file)));
    w.raw(fmt::format("    few_shot_count: {}\n", t.few_shot_count));
  }
  w.raw(fmt::format("    translation: {}\n", yaml_string(t.translation)));
}

void read_prompt_candidates(ReadContext& ctx, PromptSearchConfig& p) {
  SchemaReader& r = ctx.reader;
  const YamlNode* list = r.read_node("candidates");
  if (list == nullptr) return;
  if (list->kind != YamlNode::Kind::kSequence || list->items.empty()) {
    r.problem_at(list->loc, "prompt_search.candidates",
                 fmt::format("expected a non-empty list of {{name, system, preset, ...}}, got {}",
                             describe(*list)));
    r.mark_bad("prompt_search.candidates");
    return;
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < list->items.size(); ++i) {
    const std::string path = fmt::format("prompt_search.candidates[{}]", i);
    const YamlNode& item = list->items[i];
    if (!item.is_map()) {
      r.problem_at(item.loc, path, fmt::format("expected a mapping, got {}", describe(item)));
      continue;
    }
    PromptCandidateConfig cand;
    read_candidate(item, path, ctx.file, ctx.problems, ctx.config.data.prompt_template, cand);
    if (!cand.name.empty() && !names.insert(cand.name).second)
      r.problem_at(item.loc, path + ".name", fmt::format("duplicate name \"{}\"", cand.name));
    p.candidates.push_back(std::move(cand));
  }
}

void write_prompt_candidates(YamlWriter& w, const PromptSearchConfig& p) {
  w.raw("  candidates:\n");
  for (const PromptCandidateConfig& cand : p.candidates) {
    const TemplateConfig& ct = cand.tmpl;
    w.raw(fmt::format("    - name: {}\n", yaml_string(cand.name)));
    w.raw(preset_yaml(ct, "      "));
    w.raw(fmt::format("      system: {}\n", yaml_string(ct.system)));
    w.raw(fmt::format("      translation: {}\n", yaml_string(ct.translation)));
    if (!ct.few_shot_file.empty()) {
      w.raw(fmt::format("      few_shot_file: {}\n", yaml_string(ct.few_shot_file)));
      w.raw(fmt::format("      few_shot_count: {}\n", ct.few_shot_count));
    }
  }
}

}  // namespace tailor::config
