// The resolved config as YAML: every key with the value the run uses, in the order of config.h.
//
// Floats are written in fmt's shortest round-trip form, so load_config_text(to_yaml(c)) gives back
// exactly c. Strings stay plain only when no YAML reader could take them for anything else
// (a number, a bool, null, or syntax); otherwise they are double-quoted with escapes.
#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "config/config.h"

namespace tailor::config {
namespace {

bool is_safe_plain(std::string_view s) {
  if (s.empty()) return false;
  const auto letter = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  const auto safe = [&](char c) {
    return letter(c) || (c >= '0' && c <= '9') || c == '.' || c == '/' || c == '-';
  };
  // A leading letter or '_' (or a '/' or './' path) keeps numbers, '-' and '.inf' out.
  if (!(letter(s.front()) || s.front() == '/')) return false;
  for (char c : s) {
    if (!safe(c)) return false;
  }
  // Words that YAML 1.1 readers (PyYAML among them) take for booleans or null.
  std::string lower;
  for (char c : s) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  for (std::string_view word : {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}) {
    if (lower == word) return false;
  }
  return true;
}

// Shortest round-trip digits, with ".0" added to whole numbers so that every YAML reader takes
// the value for a float (10000 -> 10000.0; 1e-05 stays).
std::string yaml_float(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string yaml_string(std::string_view s) {
  if (is_safe_plain(s)) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;  // UTF-8 passes through
        }
    }
  }
  out += '"';
  return out;
}

class Writer {
 public:
  void section(std::string_view name) { fmt::format_to(std::back_inserter(out_), "{}:\n", name); }
  void str(std::string_view key, std::string_view value) { line(key, yaml_string(value)); }
  void num(std::string_view key, double value) { line(key, yaml_float(value)); }
  void num(std::string_view key, std::int64_t value) { line(key, fmt::format("{}", value)); }
  void num(std::string_view key, std::uint64_t value) { line(key, fmt::format("{}", value)); }
  void boolean(std::string_view key, bool value) { line(key, value ? "true" : "false"); }
  void line(std::string_view key, std::string_view value) {
    fmt::format_to(std::back_inserter(out_), "  {}: {}\n", key, value);
  }
  void raw(std::string_view text) { out_ += text; }
  void comment(std::string_view text) {
    fmt::format_to(std::back_inserter(out_), "  # {}\n", text);
  }
  [[nodiscard]] std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// `preset: NAME`, or a template from a file or inline written out as a mapping (so the resolved
// config does not depend on the file), each line starting with `indent`.
std::string preset_yaml(const TemplateConfig& t, std::string_view indent) {
  if (!t.chat) return fmt::format("{}preset: {}\n", indent, yaml_string(t.preset));
  const ChatTemplateConfig& c = *t.chat;
  const auto role = [](const ChatRoleConfig& r) {
    return fmt::format("prefix: {}, suffix: {}, separator: {}", yaml_string(r.prefix),
                       yaml_string(r.suffix), yaml_string(r.separator));
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
  line("trim", c.trim ? "true" : "false");
  line("system", fmt::format("{{placement: {}, {}}}", yaml_string(name_of(c.system_placement)),
                             role(c.system)));
  line("user", fmt::format("{{{}}}", role(c.user)));
  line("assistant", fmt::format("{{{}, final_suffix: {}}}", role(c.assistant),
                                yaml_string(c.assistant_final_suffix)));
  line("prompt_completion", yaml_string(name_of(c.prompt_completion)));
  line("special_tokens", fmt::format("[{}]", tokens));
  return out;
}

}  // namespace

std::string to_yaml(const ExperimentConfig& c) {
  Writer body;
  body.section("output");
  body.str("dir", c.output.dir);

  const ModelConfig& m = c.model;
  body.section("model");
  if (!m.path.empty()) {
    body.str("path", m.path);
    body.num("init_std", m.init_std);
  } else {
  body.str("family", name_of(m.family));
  body.num("vocab_size", m.vocab_size);
  body.num("hidden_size", m.hidden_size);
  body.num("num_layers", m.num_layers);
  body.num("num_heads", m.num_heads);
  body.num("num_kv_heads", m.num_kv_heads);
  body.num("head_dim", m.head_dim);
  body.num("intermediate_size", m.intermediate_size);
  body.num("max_position_embeddings", m.max_position_embeddings);
  body.str("norm", name_of(m.norm));
  body.num("norm_eps", m.norm_eps);
  body.str("position", name_of(m.position));
  body.num("rope_theta", m.rope_theta);
  body.str("mlp", name_of(m.mlp));
  body.boolean("attention_bias", m.attention_bias);
  body.boolean("mlp_bias", m.mlp_bias);
  body.boolean("tie_embeddings", m.tie_embeddings);
  body.num("init_std", m.init_std);
  }

  const DataConfig& d = c.data;
  body.section("data");
  if (d.train_is_list) {
    body.line("train", "");
    for (const DataSourceConfig& src : d.sources)
      body.raw(fmt::format("    - {{path: {}, weight: {}}}\n", yaml_string(src.path),
                           yaml_float(src.weight)));
  } else {
    body.str("train", d.train);
  }
  body.str("format", name_of(d.format));
  body.str("tokenizer", name_of(d.tokenizer));
  body.num("seq_len", d.seq_len);
  if (d.format == DataFormat::kText) {
    body.str("split", name_of(d.split));
  } else {
    const TemplateConfig& t = d.prompt_template;
    body.line("template", "");
    body.raw(preset_yaml(t, "    "));
    body.raw(fmt::format("    system: {}\n", yaml_string(t.system)));
    if (!t.few_shot.empty()) {
      body.raw("    few_shot:\n");
      for (const FewShotConfig& ex : t.few_shot)
        body.raw(fmt::format("      - {{prompt: {}, completion: {}}}\n", yaml_string(ex.prompt),
                             yaml_string(ex.completion)));
    }
    if (!t.few_shot_file.empty()) {
      body.raw(fmt::format("    few_shot_file: {}\n", yaml_string(t.few_shot_file)));
      body.raw(fmt::format("    few_shot_count: {}\n", t.few_shot_count));
    }
    body.raw(fmt::format("    translation: {}\n", yaml_string(t.translation)));
    body.boolean("train_on_prompt", d.train_on_prompt);
    body.boolean("skip_invalid", d.skip_invalid);
  }
  body.str("cache_dir", d.cache_dir);
  body.str("overlong", name_of(d.overlong));
  body.str("packing", name_of(d.packing));
  if (!d.valid.empty()) body.str("valid", d.valid);
  body.num("valid_fraction", d.valid_fraction);

  const TrainConfig& t = c.train;
  body.section("train");
  body.num("steps", t.steps);
  body.num("seed", t.seed);
  body.num("global_batch", t.global_batch);
  if (t.micro_batch == 0) body.line("micro_batch", "auto"); else body.num("micro_batch", t.micro_batch);
  body.str("resume", t.resume);
  body.num("log_every", t.log_every);
  body.num("max_skipped_steps", t.max_skipped_steps);
  body.num("eval_every", t.eval_every);
  body.str("recompute", name_of(t.recompute));

  const OptimizerConfig& o = c.optimizer;
  body.section("optimizer");
  body.str("name", name_of(o.name));
  body.num("lr", o.lr);
  body.line("betas", fmt::format("[{}, {}]", yaml_float(o.beta1), yaml_float(o.beta2)));
  body.num("eps", o.eps);
  body.num("weight_decay", o.weight_decay);
  if (o.name == OptimizerName::kSgd) {
    body.num("momentum", o.momentum);
  } else {
    body.comment(fmt::format("momentum: not used by {}", o.name));  // setting it would be an error
  }
  body.num("grad_clip", o.grad_clip);
  body.num("zero", std::int64_t{o.zero});
  body.str("moments", name_of(o.moments));

  const ScheduleConfig& s = c.schedule;
  body.section("schedule");
  body.str("type", name_of(s.type));
  body.num("warmup_steps", s.warmup_steps);
  body.num("min_lr_ratio", s.min_lr_ratio);

  body.section("checkpoint");
  body.num("every_steps", c.checkpoint.every_steps);
  body.num("keep_last", c.checkpoint.keep_last);
  body.num("keep_every", c.checkpoint.keep_every);

  body.section("parallel");
  body.num("tensor", c.parallel.tensor);
  if (c.parallel.data == 0) body.line("data", "auto"); else body.num("data", c.parallel.data);

  const RuntimeConfig& rt = c.runtime;
  body.section("runtime");
  body.str("device", name_of(rt.device));
  body.num("threads", rt.threads);
  body.str("dtype", name_of(rt.dtype));
  body.str("log_level", name_of(rt.log_level));
  body.num("watchdog_s", rt.watchdog_s);

  body.section("peft");
  body.str("method", name_of(c.peft.method));
  body.num("rank", c.peft.rank);
  body.num("alpha", c.peft.alpha);
  body.num("dropout", c.peft.dropout);
  {
    std::string list = "[";
    for (std::size_t i = 0; i < c.peft.target_modules.size(); ++i)
      list += (i ? ", " : "") + c.peft.target_modules[i];
    body.line("target_modules", list + "]");
  }
  body.boolean("use_rslora", c.peft.use_rslora);
  body.num("bottleneck", c.peft.bottleneck);
  if (c.peft.method == PeftMethod::kPromptTuning) {  // only then: older resolved configs stay the same
    body.num("num_virtual_tokens", c.peft.num_virtual_tokens);
    body.str("prompt_init_text", c.peft.prompt_init_text);
  }
  if (!c.peft.adapter.empty()) body.str("adapter", c.peft.adapter);
  if (!c.prompt_search.candidates.empty()) {
    const PromptSearchConfig& ps = c.prompt_search;
    body.section("prompt_search");
    body.str("metric", name_of(ps.metric));
    body.num("max_records", ps.max_records);
    body.num("max_new_tokens", ps.max_new_tokens);
    body.raw("  candidates:\n");
    for (const PromptCandidateConfig& cand : ps.candidates) {
      const TemplateConfig& ct = cand.tmpl;
      body.raw(fmt::format("    - name: {}\n", yaml_string(cand.name)));
      body.raw(preset_yaml(ct, "      "));
      body.raw(fmt::format("      system: {}\n", yaml_string(ct.system)));
      body.raw(fmt::format("      translation: {}\n", yaml_string(ct.translation)));
      if (!ct.few_shot_file.empty()) {
        body.raw(fmt::format("      few_shot_file: {}\n", yaml_string(ct.few_shot_file)));
        body.raw(fmt::format("      few_shot_count: {}\n", ct.few_shot_count));
      }
    }
  }
  return "# Tailor resolved config: every key with the value the run uses.\n" + body.take();
}

}  // namespace tailor::config
