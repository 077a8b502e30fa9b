// data.template.preset as a template file or inline mapping: the shipped files parse, problems
// are one line `file:line:col: key: reason`, and the resolved config carries the template inline
// (a fixed point of to_yaml / load).
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "config/config.h"

namespace tailor::config {
namespace {

namespace fs = std::filesystem;

const std::string kRoot = TAILOR_SOURCE_DIR;

const std::string kConfig = fmt::format(R"(output:
  dir: runs/t
model:
  vocab_size: 257
  hidden_size: 16
  num_layers: 1
  num_heads: 2
  intermediate_size: 32
data:
  train: {}/datasets/gettext-translations/train.sample.jsonl
  format: jsonl
  seq_len: 64
train:
  steps: 1
  global_batch: 2
optimizer:
  lr: 1.0e-3
)",
                                        kRoot);

struct TempFile {
  fs::path path;
  TempFile(const std::string& name, const std::string& text)
      : path(fs::temp_directory_path() / fmt::format("tailor_tmpl_{}_{}", ::getpid(), name)) {
    std::ofstream(path) << text;
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

std::vector<std::string> problems_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.problems();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(ChatTemplateFile, ShippedFilesParse) {
  for (const char* name : {"llama3", "chatml", "mistral", "plain", "qwen3", "phi3", "gemma"}) {
    SCOPED_TRACE(name);
    const ChatTemplateConfig t =
        load_chat_template(fmt::format("{}/configs/templates/{}.yaml", kRoot, name));
    EXPECT_EQ(t.name, name);
  }
  const ChatTemplateConfig m = load_chat_template(kRoot + "/configs/templates/mistral.yaml");
  EXPECT_EQ(m.system_placement, SystemPlacement::kFirstUser);
  EXPECT_EQ(m.user.prefix, "[INST] ");
  EXPECT_EQ(m.assistant_final_suffix, "</s>");  // defaults to the suffix
  const ChatTemplateConfig p = load_chat_template(kRoot + "/configs/templates/plain.yaml");
  EXPECT_TRUE(p.tokenizer_bos);
  EXPECT_EQ(p.assistant_final_suffix, "");
  EXPECT_EQ(p.prompt_completion, PromptCompletion::kText);
  // Top-level trim is each role's default; a role's own trim wins (gemma: not the system prompt).
  const ChatTemplateConfig g = load_chat_template(kRoot + "/configs/templates/gemma.yaml");
  EXPECT_FALSE(g.system.trim);
  EXPECT_TRUE(g.user.trim);
  EXPECT_TRUE(g.assistant.trim);
  EXPECT_EQ(g.assistant_final_prefix, "<start_of_turn>model\n");  // defaults to the prefix
  const ChatTemplateConfig q = load_chat_template(kRoot + "/configs/templates/qwen3.yaml");
  EXPECT_EQ(q.assistant_final_prefix, "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(q.assistant_final_lstrip, "\n");
  EXPECT_EQ(q.end, "");
  const ChatTemplateConfig f = load_chat_template(kRoot + "/configs/templates/phi3.yaml");
  EXPECT_EQ(f.end, "<|endoftext|>");
  EXPECT_EQ(f.assistant_final_suffix, "<|end|>");
}

TEST(ChatTemplateFile, RoleKeysAreChecked) {
  const TempFile f("roles.yaml",
                   "user: {trim: maybe}\n"
                   "system: {final_prefix: \"x\"}\n"
                   "assistant: {final_lstrip: [1]}\n"
                   "end: {a: 1}\n");
  const std::string p = f.path.string();
  EXPECT_EQ(problems_of([&] { (void)load_chat_template(p); }),
            (std::vector<std::string>{
                p + ":1:14: user.trim: expected true or false, got \"maybe\"",
                p + ":2:10: system.final_prefix: unknown key",  // the assistant's alone
                p + ":3:27: assistant.final_lstrip: expected a string, got a sequence",
                p + ":4:6: end: expected a string, got a mapping"}));
}

TEST(ChatTemplateFile, ProblemsAreOneLineEachWithFileLineColumn) {
  const TempFile f("bad.yaml",
                   "name: x\n"
                   "bos: \"<s>\"\n"
                   "tokenizer_bos: true\n"
                   "user:\n"
                   "  prefx: \"[INST] \"\n"
                   "assistant: oops\n"
                   "system: {placement: middle}\n"
                   "trim: yes\n"
                   "special_tokens: [\"<|x|>\"]\n"
                   "eos: \"</s>\"\n");
  const std::string p = f.path.string();
  EXPECT_EQ(
      problems_of([&] { (void)load_chat_template(p); }),
      (std::vector<std::string>{
          p + ":3:16: tokenizer_bos: give bos (text the template writes) or tokenizer_bos: "
              "true, not both",
          p + ":5:3: user.prefx: unknown key (did you mean \"prefix\"?)",
          p + ":6:12: assistant: expected a mapping {prefix, suffix, separator}, got \"oops\"",
          p + ":7:21: system.placement: must be one of turn, first_user (got \"middle\")",
          p + ":8:7: trim: expected true or false, got \"yes\"",
          p + ":9:18: special_tokens[0]: \"<|x|>\" appears nowhere in the template (bos, "
              "prefixes, suffixes, separators, end)",
          p + ":10:1: eos: unknown key (did you mean \"bos\"?)"}));
  const TempFile syntax("syntax.yaml", "user: {prefix: \"a\"\n");
  const auto lines = problems_of([&] { (void)load_chat_template(syntax.path.string()); });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind(syntax.path.string() + ":", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("YAML syntax error"), std::string::npos) << lines[0];
  EXPECT_EQ(problems_of([] { (void)load_chat_template("no/such.yaml"); }),
            std::vector<std::string>{"no/such.yaml: cannot read: file not found"});
}

TEST(ChatTemplateFile, PresetIsANameAFileOrAMapping) {
  const ExperimentConfig named =
      load_config_text(kConfig, "cfg.yaml", {"data.template.preset=chatml"});
  EXPECT_EQ(named.data.prompt_template.preset, "chatml");
  EXPECT_FALSE(named.data.prompt_template.chat.has_value());

  const std::string file = kRoot + "/configs/templates/llama3.yaml";
  const ExperimentConfig from_file =
      load_config_text(kConfig, "cfg.yaml", {"data.template.preset=" + file});
  EXPECT_EQ(from_file.data.prompt_template.preset, file);
  ASSERT_TRUE(from_file.data.prompt_template.chat.has_value());
  EXPECT_EQ(from_file.data.prompt_template.chat->bos, "<|begin_of_text|>");

  const ExperimentConfig inline_map =
      load_config_text(kConfig, "cfg.yaml",
                       {"data.template.preset={user: {prefix: \"Q: \", suffix: \"\\n\"}, "
                        "assistant: {prefix: \"A: \"}}"});
  EXPECT_EQ(inline_map.data.prompt_template.preset, "inline");
  ASSERT_TRUE(inline_map.data.prompt_template.chat.has_value());
  EXPECT_EQ(inline_map.data.prompt_template.chat->user.prefix, "Q: ");

  // Problems in a file named by the config point into that file; a missing file at the config.
  const TempFile bad("bad2.yaml", "user:\n  suffix: [1]\n");
  EXPECT_EQ(problems_of([&] {
              (void)load_config_text(kConfig, "cfg.yaml",
                                     {"data.template.preset=" + bad.path.string()});
            }),
            std::vector<std::string>{bad.path.string() +
                                     ":2:11: user.suffix: expected a string, got a sequence"});
  EXPECT_EQ(
      problems_of([&] {
        (void)load_config_text(kConfig, "cfg.yaml", {"data.template.preset=no/such.yaml"});
      }),
      std::vector<std::string>{"<override 1>: data.template.preset: file not found: no/such.yaml"});
  EXPECT_EQ(problems_of([&] {
              (void)load_config_text(kConfig, "cfg.yaml", {"data.template.preset={usr: {}}"});
            }),
            std::vector<std::string>{
                "<override 1>: data.template.preset.usr: unknown key (did you mean \"user\"?)"});
}

TEST(ChatTemplateFile, ResolvedConfigCarriesTheTemplateInline) {
  for (const char* name : {"mistral", "qwen3", "phi3", "gemma"}) {
    SCOPED_TRACE(name);
    const ExperimentConfig a = load_config_text(
        kConfig, "cfg.yaml",
        {fmt::format("data.template.preset={}/configs/templates/{}.yaml", kRoot, name)});
    const std::string yaml = to_yaml(a);
    EXPECT_EQ(yaml.find(fmt::format("{}.yaml", name)), std::string::npos) << yaml;
    const ExperimentConfig b = load_config_text(yaml, "resolved.yaml");
    ASSERT_TRUE(b.data.prompt_template.chat.has_value());
    const ChatTemplateConfig& x = *a.data.prompt_template.chat;
    const ChatTemplateConfig& y = *b.data.prompt_template.chat;
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.bos, y.bos);
    EXPECT_EQ(x.tokenizer_bos, y.tokenizer_bos);
    EXPECT_EQ(x.system_placement, y.system_placement);
    for (auto [r, s] : {std::pair{&x.system, &y.system}, std::pair{&x.user, &y.user},
                        std::pair{&x.assistant, &y.assistant}}) {
      EXPECT_EQ(r->prefix, s->prefix);
      EXPECT_EQ(r->suffix, s->suffix);
      EXPECT_EQ(r->separator, s->separator);
      EXPECT_EQ(r->trim, s->trim);
    }
    EXPECT_EQ(x.assistant_final_prefix, y.assistant_final_prefix);
    EXPECT_EQ(x.assistant_final_lstrip, y.assistant_final_lstrip);
    EXPECT_EQ(x.assistant_final_suffix, y.assistant_final_suffix);
    EXPECT_EQ(x.end, y.end);
    EXPECT_EQ(x.prompt_completion, y.prompt_completion);
    EXPECT_EQ(x.special_tokens, y.special_tokens);
    EXPECT_EQ(to_yaml(b), yaml);  // a fixed point
  }
}

TEST(DataPacking, DefaultsToPackAndRoundTrips) {
  EXPECT_EQ(load_config_text(kConfig, "cfg.yaml").data.packing, PackingMode::kPack);
  const ExperimentConfig a = load_config_text(kConfig, "cfg.yaml", {"data.packing=pad"});
  EXPECT_EQ(a.data.packing, PackingMode::kPad);
  EXPECT_EQ(load_config_text(to_yaml(a), "resolved.yaml").data.packing, PackingMode::kPad);
}

}  // namespace
}  // namespace tailor::config
