// The peft section: the parameter-efficient method and its settings. peft.target_modules and
// peft.feedforward_modules, lists of names, are read and written by hand.
#include <algorithm>
#include <filesystem>
#include <iterator>

#include "config/schema.h"
#include "core/limits.h"

namespace tailor::config {
namespace {

// A list of linears (peft.target_modules, peft.feedforward_modules).
void read_module_list(ReadContext& c, std::vector<std::string>& out, const std::string& key) {
  SchemaReader& r = c.reader;
  const YamlNode* n = r.read_node(key);
  if (n == nullptr) return;
  static constexpr std::string_view kModules[] = {
      "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "all-linear"};
  std::vector<std::string> targets;
  bool ok = n->kind == YamlNode::Kind::kSequence && !n->items.empty();
  for (const YamlNode& item : n->items) {
    const bool known =
        item.kind == YamlNode::Kind::kScalar &&
        std::find(std::begin(kModules), std::end(kModules), item.scalar) != std::end(kModules);
    ok = ok && known;
    if (item.kind == YamlNode::Kind::kScalar) targets.push_back(item.scalar);
  }
  if (ok) {
    out = targets;
  } else {
    r.problem_at(n->loc, "peft." + key,
                 "must be a non-empty list of q_proj, k_proj, v_proj, o_proj, gate_proj, "
                 "up_proj, down_proj or all-linear");
    r.mark_bad("peft." + key);
  }
}

void read_target_modules(ReadContext& c, PeftConfig& p) {
  read_module_list(c, p.target_modules, "target_modules");
}
void read_feedforward_modules(ReadContext& c, PeftConfig& p) {
  read_module_list(c, p.feedforward_modules, "feedforward_modules");
}

void write_list(YamlWriter& w, const std::string& key, const std::vector<std::string>& items) {
  std::string list = "[";
  for (std::size_t i = 0; i < items.size(); ++i) list += (i ? ", " : "") + items[i];
  w.line(key, list + "]");
}

bool is_ia3(const PeftConfig& p) { return p.method == PeftMethod::kIa3; }

// LoRA's default is written out (as it always was); IA3's (the family's) is left out.
void write_target_modules(YamlWriter& w, const PeftConfig& p) {
  write_list(w, "target_modules",
             p.target_modules.empty() ? std::vector<std::string>{"q_proj", "v_proj"}
                                      : p.target_modules);
}
bool target_modules_written(const PeftConfig& p) {
  return !is_ia3(p) || !p.target_modules.empty();
}
void write_feedforward_modules(YamlWriter& w, const PeftConfig& p) {
  write_list(w, "feedforward_modules", p.feedforward_modules);
}
bool feedforward_modules_written(const PeftConfig& p) {
  return is_ia3(p) && !p.feedforward_modules.empty();
}

void check_adapter(SchemaReader& r, const std::string& path, const PeftConfig& p) {
  if (!p.adapter.empty() &&
      !std::filesystem::exists(std::filesystem::path(p.adapter) / "adapter_config.json"))
    r.problem(path, fmt::format("no adapter_config.json in {}", p.adapter));
}

// DoRA is LoRA's (peft's LoraConfig(use_dora=True)); written only when set, so the resolved
// configs of other runs stay as they were before the key existed.
void check_use_dora(SchemaReader& r, const std::string& path, const PeftConfig& p) {
  if (!p.use_dora) return;
  if (p.method != PeftMethod::kLora) {
    r.problem(path, "only used with peft.method: lora");
  } else if (p.dropout > 0.0) {
    r.problem(path, "DoRA with peft.dropout > 0 is not supported yet (set peft.dropout: 0)");
  }
}
bool uses_dora(const PeftConfig& p) { return p.use_dora; }

bool is_prompt_tuning(const PeftConfig& p) { return p.method == PeftMethod::kPromptTuning; }
bool has_adapter(const PeftConfig& p) { return !p.adapter.empty(); }

// target_modules is read last: problems found at one place (a whole-section override) keep the
// order in which this section has always reported them.
// feedforward_modules after them (its check reads target_modules and method).
void read_peft(SectionReader<PeftConfig>& r) {
  r.read_rest({"target_modules", "feedforward_modules"});
  r.read("target_modules");
  r.read("feedforward_modules");
}

// IA3 as peft: feed-forward modules are a subset of the targets (when both are given).
void check_feedforward_modules(SchemaReader& r, const std::string& path, const PeftConfig& p) {
  if (p.feedforward_modules.empty()) return;
  if (!is_ia3(p)) {
    r.problem(path, "only used with peft.method: ia3");
    return;
  }
  const auto targeted = [&](const std::string& m) {
    return std::find(p.target_modules.begin(), p.target_modules.end(), m) !=
               p.target_modules.end() ||
           std::find(p.target_modules.begin(), p.target_modules.end(), "all-linear") !=
               p.target_modules.end();
  };
  if (p.target_modules.empty()) return;
  for (const std::string& m : p.feedforward_modules)
    if (m != "all-linear" && !targeted(m)) {
      r.problem(path, fmt::format("{} is not in peft.target_modules (feed-forward modules are "
                                  "targets whose input is scaled)", m));
      return;
    }
}

}  // namespace

const Section<PeftConfig>& peft_section() {
  using S = PeftConfig;
  using F = Field<S>;
  static const Section<S> section{
      "peft",
      &ExperimentConfig::peft,
      {
          {"method", choice(&S::method), Resume::kFixed,
           "parameter-efficient method (none: every weight trains)"},
          {"rank", integer(&S::rank, IntRange{1, limits::kLoraRank}), Resume::kFixed, "LoRA rank r"},
          {"alpha", real(&S::alpha, kPositive), Resume::kFixed,
           "LoRA scale = alpha / r (alpha / sqrt(r) with use_rslora)"},
          {"dropout", real(&S::dropout, kUnitHalfOpen), Resume::kFixed,
           "LoRA dropout on the adapter input, training batches only"},
          F{"target_modules",
            custom("list", Presence::kOptional, read_target_modules, write_target_modules),
            Resume::kFixed, "linears that get LoRA / IA3 adapters (or [all-linear])"}
              .written_if(target_modules_written),
          // Written for IA3 only, when given.
          F{"feedforward_modules",
            custom("list", Presence::kOptional, read_feedforward_modules,
                   write_feedforward_modules),
            Resume::kFixed, "IA3: targets whose input (not output) is scaled"}
              .checked_by(check_feedforward_modules)
              .written_if(feedforward_modules_written),
          {"use_rslora", boolean(&S::use_rslora), Resume::kFixed, "rank-stabilised LoRA scaling"},
          F{"use_dora", boolean(&S::use_dora), Resume::kFixed,
            "LoRA: DoRA (a learned magnitude per output row times the normalized W + s B A)"}
              .checked_by(check_use_dora)
              .written_if(uses_dora),
          {"bottleneck", integer(&S::bottleneck, IntRange{1, limits::kBottleneck}), Resume::kFixed,
           "width of the bottleneck adapters (method: adapter)"},
          // Written for prompt tuning only, so the resolved configs of other methods stay as they
          // were before these keys existed.
          F{"num_virtual_tokens", integer(&S::num_virtual_tokens, IntRange{1, limits::kVirtualTokens}), Resume::kFixed,
            "prompt tuning: trainable virtual tokens opening every document (count toward "
            "data.seq_len)"}
              .written_if(is_prompt_tuning),
          F{"prompt_init_text", text(&S::prompt_init_text), Resume::kFixed,
            "prompt tuning: initialize from this text's token embeddings (empty: random)"}
              .written_if(is_prompt_tuning),
          F{"adapter", text(&S::adapter), Resume::kFixed,
            "a PEFT adapter directory to start from (LoRA, IA3 or prompt tuning)"}
              .checked_by(check_adapter)
              .written_if(has_adapter),
      },
      read_peft};
  return section;
}

}  // namespace tailor::config
