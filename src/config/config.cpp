// Loading an experiment config: read, parse, override, read every section, check cross-field rules.
//
// Defaults live in the structs of config.h; `model.family: gpt2` replaces the family-dependent ones
// before the model section is read, so values the user gives always win. Values derived from other
// keys (num_kv_heads, head_dim, micro_batch) are filled in after all sections are read. Rules that
// this build cannot honour yet (checkpoints, parallelism, CUDA, PEFT) are problems like any other.
#include "config/config.h"

#include <cstdlib>
#include <string_view>

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <fstream>
#include <utility>

#include "config/chat_template.h"
#include "config/overrides.h"
#include "config/problems.h"
#include "config/scalars.h"
#include "config/schema_reader.h"
#include "config/yaml_tree.h"

namespace tailor::config {
namespace {

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

constexpr IntRange kAtLeast0{0, std::nullopt};
constexpr IntRange kAtLeast1{1, std::nullopt};
constexpr FloatRange kPositive{0.0, true, std::nullopt, false};
constexpr FloatRange kNonNegative{0.0, false, std::nullopt, false};
constexpr FloatRange kUnitHalfOpen{0.0, false, 1.0, true};  // [0, 1)
constexpr FloatRange kUnitClosed{0.0, false, 1.0, false};   // [0, 1]

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

// A choice: one of the names of E's table (choices.h).
template <NamedEnum E>
bool read_choice(SchemaReader& r, std::string_view key, E& out) {
  std::size_t index = 0;
  if (!r.read_choice(key, names_of<E>(), index)) return false;
  out = value_at<E>(index);
  return true;
}

// The architecture keys a Hugging Face model directory (model.path) defines itself.
constexpr std::string_view kArchitectureKeys[] = {
    "family", "vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
    "intermediate_size", "max_position_embeddings", "norm", "norm_eps", "position", "rope_theta",
    "mlp", "attention_bias", "mlp_bias", "tie_embeddings"};

void read_model(SchemaReader& r, ModelConfig& m) {
  r.begin_section("model");
  if (r.read_string("path", m.path) && !m.path.empty()) {
    // A downloaded model: its config.json defines the architecture.
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(m.path, ec)) {
      r.problem("model.path", fmt::format("not a directory: {}", m.path));
    } else if (!fs::exists(fs::path(m.path) / "config.json", ec)) {
      r.problem("model.path", fmt::format("no config.json in {} (expected a Hugging Face model "
                                          "directory)", m.path));
    }
    for (std::string_view key : kArchitectureKeys) {
      if (r.read_node(key) != nullptr)
        r.problem(fmt::format("model.{}", key),
                  "comes from model.path's config.json; remove it (or remove model.path)");
    }
    r.read_float("init_std", m.init_std, kPositive);
    r.end_section();
    return;
  }
  if (read_choice(r, "family", m.family) && m.family == ModelFamily::kGpt2) {
    m.norm = NormKind::kLayerNorm;
    m.position = PositionKind::kLearned;
    m.mlp = MlpKind::kGelu;
    m.attention_bias = true;
    m.mlp_bias = true;
    m.tie_embeddings = true;
  }
  r.read_int("vocab_size", m.vocab_size, kAtLeast1, Presence::kRequired);
  r.read_int("hidden_size", m.hidden_size, kAtLeast1, Presence::kRequired);
  r.read_int("num_layers", m.num_layers, kAtLeast1, Presence::kRequired);
  r.read_int("num_heads", m.num_heads, kAtLeast1, Presence::kRequired);
  r.read_int("num_kv_heads", m.num_kv_heads, kAtLeast1);
  r.read_int("head_dim", m.head_dim, kAtLeast1);
  r.read_int("intermediate_size", m.intermediate_size, kAtLeast1, Presence::kRequired);
  r.read_int("max_position_embeddings", m.max_position_embeddings, kAtLeast1);
  read_choice(r, "norm", m.norm);
  r.read_float("norm_eps", m.norm_eps, kPositive);
  read_choice(r, "position", m.position);
  r.read_float("rope_theta", m.rope_theta, kPositive);
  read_choice(r, "mlp", m.mlp);
  r.read_bool("attention_bias", m.attention_bias);
  r.read_bool("mlp_bias", m.mlp_bias);
  r.read_bool("tie_embeddings", m.tie_embeddings);
  r.read_float("init_std", m.init_std, kPositive);
  r.end_section();
}

// data.train: a path, or a list of sources (a path, or {path, weight}).
void read_train_sources(SchemaReader& r, DataConfig& d) {
  const YamlNode* node = r.read_node("train");
  if (node == nullptr) {
    r.problem("data.train", "required key is missing");
    r.mark_bad("data.train");
    return;
  }
  const auto bad = [&](const Location& loc, const std::string& path, const std::string& reason) {
    r.problem_at(loc, path, reason);
    r.mark_bad("data.train");
  };
  if (node->kind == YamlNode::Kind::kScalar) {
    if (node->scalar.empty()) return bad(node->loc, "data.train", "must not be empty");
    d.train = node->scalar;
    d.sources = {{d.train, 1.0}};
    return;
  }
  if (node->kind != YamlNode::Kind::kSequence || node->items.empty()) {
    return bad(node->loc, "data.train",
               fmt::format("expected a file path or a non-empty list of {{path, weight}}, got {}",
                           describe(*node)));
  }
  d.train_is_list = true;
  d.sources.clear();
  for (std::size_t i = 0; i < node->items.size(); ++i) {
    const YamlNode& item = node->items[i];
    const std::string path = fmt::format("data.train[{}]", i);
    DataSourceConfig src;
    if (item.kind == YamlNode::Kind::kScalar) {
      src.path = item.scalar;
    } else if (item.kind == YamlNode::Kind::kMap) {
      for (const YamlEntry& e : item.entries) {
        if (e.key == "path") {
          if (e.value.kind != YamlNode::Kind::kScalar)
            bad(e.value.loc, path + ".path",
                fmt::format("expected a string, got {}", describe(e.value)));
          else
            src.path = e.value.scalar;
        } else if (e.key == "weight") {
          if (!r.convert_float(e.value, path + ".weight", src.weight, kPositive))
            r.mark_bad("data.train");
        } else {
          const auto hint = closest_key(e.key, {"path", "weight"});
          bad(e.key_loc, path + "." + e.key,
              hint ? fmt::format("unknown key (did you mean \"{}\"?)", *hint) : "unknown key");
        }
      }
      if (item.find("path") == nullptr) bad(item.loc, path + ".path", "required key is missing");
    } else {
      bad(item.loc, path, fmt::format("expected a file path or {{path, weight}}, got {}",
                                      describe(item)));
      continue;
    }
    if (item.kind == YamlNode::Kind::kScalar && src.path.empty())
      bad(item.loc, path, "must not be empty");
    d.sources.push_back(src);
  }
  if (!d.sources.empty()) d.train = d.sources.front().path;
}

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
      return fmt::format("unknown placeholder {{{}}} (known: {{src}}, {{src_lang}}, {{tgt_lang}}, "
                         "{{src_lang_name}}, {{tgt_lang_name}})",
                         name);
    has_src = has_src || name == "src";
    i = close;
  }
  return has_src ? "" : "no {src} placeholder (the sentence to translate)";
}

// data.template.preset (`path`): a built-in name, the path of a template file (with a '/' or
// ending in .yaml/.yml; relative to the working directory), or a template mapping inline.
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
    if (v == "plain" || v == "llama3" || v == "chatml" || v == "mistral") {
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
  r.problem_at(node->loc, path,
               fmt::format("must be plain, llama3, chatml, mistral or the path of a template file "
                           "(*.yaml; see configs/templates/) (got {})",
                           node->kind == YamlNode::Kind::kScalar ? quote(node->scalar)
                                                                 : describe(*node)));
  r.mark_bad(path);
}

// data.template, read with a reader of its own whose one section is "data.template".
void read_template(SchemaReader& r, const std::string& file, Problems& problems,
                   TemplateConfig& t) {
  const YamlNode* node = r.read_node("template");
  if (node == nullptr || node->kind == YamlNode::Kind::kNull) return;
  if (!node->is_map()) {
    r.problem_at(node->loc, "data.template",
                 fmt::format("expected a mapping (preset, system, few_shot, ...), got {}",
                             describe(*node)));
    r.mark_bad("data.template");
    return;
  }
  YamlNode root;
  root.kind = YamlNode::Kind::kMap;
  root.entries.push_back({"data.template", node->loc, *node});
  SchemaReader t_reader(root, file, problems);
  t_reader.begin_section("data.template");
  read_preset(t_reader, "data.template.preset", problems, t);
  t_reader.read_string("system", t.system);
  if (const YamlNode* shots = t_reader.read_node("few_shot")) {
    if (shots->kind != YamlNode::Kind::kSequence) {
      t_reader.problem_at(shots->loc, "data.template.few_shot",
                          fmt::format("expected a list of {{prompt, completion}}, got {}",
                                      describe(*shots)));
    } else {
      for (std::size_t i = 0; i < shots->items.size(); ++i) {
        const YamlNode& item = shots->items[i];
        const std::string path = fmt::format("data.template.few_shot[{}]", i);
        FewShotConfig ex;
        if (!item.is_map()) {
          t_reader.problem_at(item.loc, path, fmt::format("expected {{prompt, completion}}, got {}",
                                                          describe(item)));
          continue;
        }
        for (const YamlEntry& e : item.entries) {
          std::string* out = e.key == "prompt" ? &ex.prompt
                             : e.key == "completion" ? &ex.completion
                                                     : nullptr;
          if (out == nullptr) {
            const auto hint = closest_key(e.key, {"prompt", "completion"});
            t_reader.problem_at(e.key_loc, path + "." + e.key,
                                hint ? fmt::format("unknown key (did you mean \"{}\"?)", *hint)
                                     : "unknown key");
          } else if (e.value.kind != YamlNode::Kind::kScalar) {
            t_reader.problem_at(e.value.loc, path + "." + e.key,
                                fmt::format("expected a string, got {}", describe(e.value)));
          } else {
            *out = e.value.scalar;
          }
        }
        for (const char* key : {"prompt", "completion"})
          if (item.find(key) == nullptr)
            t_reader.problem_at(item.loc, fmt::format("{}.{}", path, key), "required key is missing");
        t.few_shot.push_back(std::move(ex));
      }
    }
  }
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

void read_data(SchemaReader& r, const std::string& file, Problems& problems, DataConfig& d) {
  r.begin_section("data");
  read_train_sources(r, d);
  read_choice(r, "format", d.format);
  read_choice(r, "tokenizer", d.tokenizer);
  r.read_int("seq_len", d.seq_len, {2, std::nullopt}, Presence::kRequired);
  read_choice(r, "split", d.split);
  read_template(r, file, problems, d.prompt_template);
  r.read_bool("train_on_prompt", d.train_on_prompt);
  r.read_bool("skip_invalid", d.skip_invalid);
  if (r.read_string("cache_dir", d.cache_dir) && d.cache_dir.empty()) {
    r.problem("data.cache_dir", "must not be empty");
    r.mark_bad("data.cache_dir");
  }
  read_choice(r, "overlong", d.overlong);
  read_choice(r, "packing", d.packing);
  if (r.read_string("valid", d.valid) && !d.valid.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(d.valid, ec))
      r.problem("data.valid", fmt::format("file not found: {}", d.valid));
  }
  if (r.read_float("valid_fraction", d.valid_fraction, {0.0, false, 0.5, false}) &&
      d.valid_fraction > 0.0 && !d.valid.empty())
    r.problem("data.valid_fraction", "give data.valid (a file) or data.valid_fraction, not both");
  r.end_section();
}

void read_train(SchemaReader& r, TrainConfig& t) {
  r.begin_section("train");
  r.read_int("steps", t.steps, kAtLeast1, Presence::kRequired);
  r.read_uint("seed", t.seed);
  r.read_int("global_batch", t.global_batch, kAtLeast1, Presence::kRequired);
  r.read_int_or_auto("micro_batch", t.micro_batch, kAtLeast1);
  if (r.read_string("resume", t.resume) && t.resume.empty()) {
    r.problem("train.resume", "must be auto, never or a checkpoint path (got \"\")");
    r.mark_bad("train.resume");
  }
  r.read_int("log_every", t.log_every, kAtLeast1);
  r.read_int("max_skipped_steps", t.max_skipped_steps, kAtLeast1);
  r.read_int("eval_every", t.eval_every, kAtLeast0);
  read_choice(r, "recompute", t.recompute);
  r.end_section();
}

void read_optimizer(SchemaReader& r, OptimizerConfig& o) {
  r.begin_section("optimizer");
  read_choice(r, "name", o.name);
  r.read_float("lr", o.lr, kPositive, Presence::kRequired);
  if (const YamlNode* betas = r.read_node("betas")) {
    bool ok = false;
    if (betas->kind != YamlNode::Kind::kSequence) {
      r.problem("optimizer.betas",
                fmt::format("expected a sequence [beta1, beta2], got {}", describe(*betas)));
    } else if (betas->items.size() != 2) {
      r.problem("optimizer.betas", fmt::format("expected exactly 2 numbers [beta1, beta2], got {}",
                                               betas->items.size()));
    } else {
      double b1 = 0.0;
      double b2 = 0.0;
      const bool ok1 = r.convert_float(betas->items[0], "optimizer.betas[0]", b1, kUnitHalfOpen);
      const bool ok2 = r.convert_float(betas->items[1], "optimizer.betas[1]", b2, kUnitHalfOpen);
      ok = ok1 && ok2;
      if (ok) {
        o.beta1 = b1;
        o.beta2 = b2;
      }
    }
    if (!ok) r.mark_bad("optimizer.betas");
  }
  r.read_float("eps", o.eps, kPositive);
  r.read_float("weight_decay", o.weight_decay, kNonNegative);
  r.read_float("momentum", o.momentum, kUnitHalfOpen);
  r.read_float("grad_clip", o.grad_clip, kNonNegative);
  std::int64_t zero = o.zero;
  if (r.read_int("zero", zero, {0, 1})) o.zero = static_cast<int>(zero);
  read_choice(r, "moments", o.moments);
  r.end_section();
}

void read_schedule(SchemaReader& r, ScheduleConfig& s) {
  r.begin_section("schedule");
  read_choice(r, "type", s.type);
  r.read_int("warmup_steps", s.warmup_steps, kAtLeast0);
  r.read_float("min_lr_ratio", s.min_lr_ratio, kUnitClosed);
  r.end_section();
}

void read_checkpoint(SchemaReader& r, CheckpointConfig& c) {
  r.begin_section("checkpoint");
  r.read_int("every_steps", c.every_steps, kAtLeast0);
  r.read_int("keep_last", c.keep_last, kAtLeast1);
  r.read_int("keep_every", c.keep_every, kAtLeast0);
  r.end_section();
}

void read_parallel(SchemaReader& r, ParallelConfig& p) {
  r.begin_section("parallel");
  r.read_int("tensor", p.tensor, kAtLeast1);
  r.read_int_or_auto("data", p.data, kAtLeast1);
  r.end_section();
}

void read_runtime(SchemaReader& r, RuntimeConfig& rt) {
  r.begin_section("runtime");
  read_choice(r, "device", rt.device);
  r.read_int("threads", rt.threads, kAtLeast0);
  read_choice(r, "dtype", rt.dtype);
  read_choice(r, "log_level", rt.log_level);
  r.read_float("watchdog_s", rt.watchdog_s, kNonNegative);
  r.end_section();
}

void read_peft(SchemaReader& r, PeftConfig& p) {
  r.begin_section("peft");
  read_choice(r, "method", p.method);
  r.read_int("rank", p.rank, kAtLeast1);
  r.read_float("alpha", p.alpha, kPositive);
  r.read_float("dropout", p.dropout, {0.0, false, 1.0, true});
  r.read_bool("use_rslora", p.use_rslora);
  r.read_int("bottleneck", p.bottleneck, kAtLeast1);
  r.read_int("num_virtual_tokens", p.num_virtual_tokens, kAtLeast1);
  r.read_string("prompt_init_text", p.prompt_init_text);
  if (r.read_string("adapter", p.adapter) && !p.adapter.empty() &&
      !std::filesystem::exists(std::filesystem::path(p.adapter) / "adapter_config.json")) {
    r.problem("peft.adapter", fmt::format("no adapter_config.json in {}", p.adapter));
  }
  if (const YamlNode* n = r.read_node("target_modules"); n != nullptr) {
    static constexpr std::string_view kModules[] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                    "gate_proj", "up_proj", "down_proj",
                                                    "all-linear"};
    std::vector<std::string> targets;
    bool ok = n->kind == YamlNode::Kind::kSequence && !n->items.empty();
    for (const YamlNode& item : n->items) {
      const bool known = item.kind == YamlNode::Kind::kScalar &&
                         std::find(std::begin(kModules), std::end(kModules), item.scalar) != std::end(kModules);
      ok = ok && known;
      if (item.kind == YamlNode::Kind::kScalar) targets.push_back(item.scalar);
    }
    if (ok) {
      p.target_modules = targets;
    } else {
      r.problem_at(n->loc, "peft.target_modules",
                   "must be a non-empty list of q_proj, k_proj, v_proj, o_proj, gate_proj, "
                   "up_proj, down_proj or all-linear");
      r.mark_bad("peft.target_modules");
    }
  }
  r.end_section();
}

// prompt_search.candidates[i]: {name, preset, system, translation, few_shot_file, few_shot_count}
// over data.template.
void read_prompt_candidate(const YamlNode& item, const std::string& path, const std::string& file,
                           Problems& problems, const TemplateConfig& base,
                           PromptCandidateConfig& out) {
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

void read_prompt_search(SchemaReader& r, const std::string& file, Problems& problems,
                        const DataConfig& d, PromptSearchConfig& p) {
  r.begin_section("prompt_search");
  read_choice(r, "metric", p.metric);
  r.read_int("max_records", p.max_records, kAtLeast0);
  r.read_int("max_new_tokens", p.max_new_tokens, kAtLeast1);
  if (const YamlNode* list = r.read_node("candidates")) {
    if (list->kind != YamlNode::Kind::kSequence || list->items.empty()) {
      r.problem_at(list->loc, "prompt_search.candidates",
                   fmt::format("expected a non-empty list of {{name, system, preset, ...}}, got {}",
                               describe(*list)));
      r.mark_bad("prompt_search.candidates");
    } else {
      std::set<std::string> names;
      for (std::size_t i = 0; i < list->items.size(); ++i) {
        const std::string path = fmt::format("prompt_search.candidates[{}]", i);
        const YamlNode& item = list->items[i];
        if (!item.is_map()) {
          r.problem_at(item.loc, path, fmt::format("expected a mapping, got {}", describe(item)));
          continue;
        }
        PromptCandidateConfig cand;
        read_prompt_candidate(item, path, file, problems, d.prompt_template, cand);
        if (!cand.name.empty() && !names.insert(cand.name).second)
          r.problem_at(item.loc, path + ".name", fmt::format("duplicate name \"{}\"", cand.name));
        p.candidates.push_back(std::move(cand));
      }
    }
  }
  r.end_section();
}

void read_sections(SchemaReader& r, Problems& problems, ExperimentConfig& c) {
  r.begin_section("output");
  r.read_string("dir", c.output.dir, Presence::kRequired);
  r.end_section();
  read_model(r, c.model);
  read_data(r, c.source, problems, c.data);
  read_train(r, c.train);
  read_optimizer(r, c.optimizer);
  read_schedule(r, c.schedule);
  read_checkpoint(r, c.checkpoint);
  read_parallel(r, c.parallel);
  read_runtime(r, c.runtime);
  read_peft(r, c.peft);
  read_prompt_search(r, c.source, problems, c.data, c.prompt_search);
  r.end_sections();
}

// Fills num_kv_heads and head_dim and checks the model's shape rules.
void resolve_model(SchemaReader& r, ExperimentConfig& c) {
  ModelConfig& m = c.model;
  if (!m.path.empty()) {
    // The tokenizer of a downloaded model is its own unless the config says otherwise.
    if (!r.is_set("data.tokenizer")) c.data.tokenizer = TokenizerKind::kModel;
    return;  // the rest is checked against config.json when the model loads
  }
  if (r.is_ok("data.tokenizer") && c.data.tokenizer == TokenizerKind::kModel) {
    r.problem("data.tokenizer", "model needs model.path (a Hugging Face model directory)");
  }
  const bool heads_ok = r.is_ok("model.num_heads");
  if (!r.is_set("model.num_kv_heads")) {
    if (heads_ok) m.num_kv_heads = m.num_heads;
  } else if (heads_ok && r.is_ok("model.num_kv_heads") && m.num_heads % m.num_kv_heads != 0) {
    r.problem("model.num_kv_heads", fmt::format("must divide model.num_heads ({} % {} != 0)",
                                                m.num_heads, m.num_kv_heads));
  }

  bool head_dim_derived = false;
  if (!r.is_set("model.head_dim")) {
    if (heads_ok && r.is_ok("model.hidden_size")) {
      if (m.hidden_size % m.num_heads != 0) {
        r.problem("model.hidden_size",
                  fmt::format("must be divisible by model.num_heads when model.head_dim is not "
                              "set ({} % {} != 0)",
                              m.hidden_size, m.num_heads));
        r.mark_bad("model.head_dim");
      } else {
        m.head_dim = m.hidden_size / m.num_heads;
        head_dim_derived = true;
      }
    } else {
      r.mark_bad("model.head_dim");
    }
  }
  if (r.is_ok("model.head_dim") && r.is_ok("model.position") && m.position == PositionKind::kRope &&
      m.head_dim % 2 != 0) {
    r.problem("model.head_dim",
              head_dim_derived
                  ? fmt::format("must be even when model.position is rope (got {} = "
                                "model.hidden_size / model.num_heads)",
                                m.head_dim)
                  : fmt::format("must be even when model.position is rope (got {})", m.head_dim));
  }
}

void check_data(SchemaReader& r, const ExperimentConfig& c) {
  const DataConfig& d = c.data;
  if (r.is_ok("data.format") && d.format == DataFormat::kText) {
    for (const char* key : {"data.template", "data.train_on_prompt", "data.skip_invalid"})
      if (r.is_set(key)) r.problem(key, "only used with data.format: jsonl");
  }
  if (r.is_ok("data.format") && d.format == DataFormat::kJsonl && r.is_set("data.split"))
    r.problem("data.split", "only used with data.format: text");
  if (!c.model.path.empty()) return;  // checked against config.json when the model loads
  if (r.is_ok("data.seq_len") && r.is_ok("model.max_position_embeddings") &&
      d.seq_len > c.model.max_position_embeddings) {
    r.problem("data.seq_len", fmt::format("must be <= model.max_position_embeddings ({} > {})",
                                          d.seq_len, c.model.max_position_embeddings));
  }
  if (r.is_ok("data.tokenizer") && d.tokenizer == TokenizerKind::kByte && r.is_ok("model.vocab_size") &&
      c.model.vocab_size < 257) {
    r.problem("model.vocab_size",
              fmt::format("the byte tokenizer needs at least 257 ids (256 bytes + EOS), got {}",
                          c.model.vocab_size));
  }
  if (r.is_ok("data.train")) {
    for (const DataSourceConfig& src : d.sources) {
      std::error_code ec;
      const auto status = std::filesystem::status(src.path, ec);
      if (ec || !std::filesystem::exists(status)) {
        r.problem("data.train", fmt::format("file not found: {}", src.path));
      } else if (!std::filesystem::is_regular_file(status)) {
        r.problem("data.train", fmt::format("not a regular file: {}", src.path));
      } else if (std::ifstream probe(src.path, std::ios::binary); !probe) {
        r.problem("data.train", fmt::format("cannot read: {}", src.path));
      }
    }
  }
}

void resolve_train(SchemaReader& r, ExperimentConfig& c) {
  TrainConfig& t = c.train;
  const std::int64_t dp = c.parallel.data;
  // parallel.data or train.micro_batch `auto` (0) are resolved against the job's size when it
  // starts (trainer); only explicit values are checked here.
  const bool sizes_ok = r.is_ok("train.global_batch") && r.is_ok("parallel.data") && dp > 0;
  if (t.micro_batch == 0) {
    if (sizes_ok && t.global_batch % dp != 0) {
      r.problem("train.global_batch", fmt::format("must be a multiple of parallel.data ({} % {} "
                                                  "!= 0)",
                                                  t.global_batch, dp));
    } else if (sizes_ok) {
      t.micro_batch = t.global_batch / dp;
    }
  } else if (sizes_ok && r.is_ok("train.micro_batch") &&
             t.global_batch % (dp * t.micro_batch) != 0) {
    r.problem("train.global_batch",
              fmt::format("must be a multiple of parallel.data * train.micro_batch ({} % ({} * {}) "
                          "!= 0)",
                          t.global_batch, dp, t.micro_batch));
  }
  if (r.is_set("schedule.warmup_steps") && r.is_ok("schedule.warmup_steps") &&
      r.is_ok("train.steps") && c.schedule.warmup_steps >= t.steps) {
    r.problem("schedule.warmup_steps",
              fmt::format("must be < train.steps ({} >= {})", c.schedule.warmup_steps, t.steps));
  }
}

void check_optimizer(SchemaReader& r, const ExperimentConfig& c) {
  const OptimizerConfig& o = c.optimizer;
  if (r.is_set("optimizer.momentum") && r.is_ok("optimizer.momentum") &&
      r.is_ok("optimizer.name") && o.name != OptimizerName::kSgd) {
    r.problem("optimizer.momentum", "only used by sgd");
  }
  if (r.is_ok("optimizer.moments") && o.moments == MomentsDType::kBF16) {
    if (r.is_ok("optimizer.name") && o.name != OptimizerName::kAdamW)
      r.problem("optimizer.moments",
                fmt::format("bf16 moments are AdamW's (optimizer.name is {})", o.name));
    else if (r.is_ok("runtime.device") && c.runtime.device == RuntimeDevice::kCpu)
      r.problem("optimizer.moments", "bf16 moments need runtime.device cuda (the CPU keeps f32)");
  }
}

// Features this build does not have yet: accepted by the schema, rejected here.
void check_build_limits(SchemaReader& r, const ExperimentConfig& c) {
#ifndef TAILOR_HAVE_CUDA
  // (TAILOR_EMULATE_CUDA=1 is the testing hook that emulates the device on the CPU.)
  const char* emulate = std::getenv("TAILOR_EMULATE_CUDA");
  if (c.runtime.device == RuntimeDevice::kCuda && (emulate == nullptr || std::string_view(emulate) != "1"))
    r.problem("runtime.device", "this build has no CUDA backend");
#endif
  if (r.is_ok("runtime.dtype") && r.is_ok("runtime.device")) {
    if (c.runtime.device == RuntimeDevice::kCpu && c.runtime.dtype == RuntimeDType::kBF16)
      r.problem("runtime.dtype", "bf16 needs runtime.device cuda (the CPU computes in f32 or f64)");
    if (c.runtime.device == RuntimeDevice::kCuda && c.runtime.dtype == RuntimeDType::kF64)
      r.problem("runtime.dtype", "f64 runs on the CPU only (runtime.device: cpu)");
  }
}

// PEFT cross-field rules. Prompt tuning: every document fragment of a row opens with the virtual
// tokens, so a row must hold them and at least one real token.
void check_peft(SchemaReader& r, const ExperimentConfig& c) {
  const PeftConfig& p = c.peft;
  if (!p.adapter.empty() && p.method != PeftMethod::kLora && p.method != PeftMethod::kPromptTuning) {
    r.problem("peft.adapter", "needs peft.method: lora or prompt_tuning");
  }
  if (p.method != PeftMethod::kPromptTuning) {
    if (r.is_set("peft.prompt_init_text"))
      r.problem("peft.prompt_init_text", "only used with peft.method: prompt_tuning");
    return;
  }
  if (r.is_ok("peft.num_virtual_tokens") && r.is_ok("data.seq_len") &&
      p.num_virtual_tokens >= c.data.seq_len) {
    r.problem("peft.num_virtual_tokens",
              fmt::format("must be < data.seq_len ({} >= {}): the virtual tokens open every "
                          "document of a row and count toward its length",
                          p.num_virtual_tokens, c.data.seq_len));
  }
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : UserError("", join_lines(problems)), problems_(std::move(problems)) {}

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
  read_sections(reader, problems, config);
  resolve_model(reader, config);
  check_data(reader, config);
  resolve_train(reader, config);
  check_optimizer(reader, config);
  check_build_limits(reader, config);
  check_peft(reader, config);
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
