// The peft section: the parameter-efficient method and its settings. peft.target_modules, a list
// of names, is read and written by hand.
#include <algorithm>
#include <filesystem>
#include <iterator>

#include "config/schema.h"
#include "core/limits.h"

namespace tailor::config {
namespace {

void read_target_modules(ReadContext& c, PeftConfig& p) {
  SchemaReader& r = c.reader;
  const YamlNode* n = r.read_node("target_modules");
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
    p.target_modules = targets;
  } else {
    r.problem_at(n->loc, "peft.target_modules",
                 "must be a non-empty list of q_proj, k_proj, v_proj, o_proj, gate_proj, "
                 "up_proj, down_proj or all-linear");
    r.mark_bad("peft.target_modules");
  }
}

void write_target_modules(YamlWriter& w, const PeftConfig& p) {
  std::string list = "[";
  for (std::size_t i = 0; i < p.target_modules.size(); ++i)
    list += (i ? ", " : "") + p.target_modules[i];
  w.line("target_modules", list + "]");
}

void check_adapter(SchemaReader& r, const std::string& path, const PeftConfig& p) {
  if (!p.adapter.empty() &&
      !std::filesystem::exists(std::filesystem::path(p.adapter) / "adapter_config.json"))
    r.problem(path, fmt::format("no adapter_config.json in {}", p.adapter));
}

bool is_prompt_tuning(const PeftConfig& p) { return p.method == PeftMethod::kPromptTuning; }
bool has_adapter(const PeftConfig& p) { return !p.adapter.empty(); }

// target_modules is read last: problems found at one place (a whole-section override) keep the
// order in which this section has always reported them.
void read_peft(SectionReader<PeftConfig>& r) {
  r.read_rest({"target_modules"});
  r.read("target_modules");
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
          {"target_modules",
           custom("list", Presence::kOptional, read_target_modules, write_target_modules),
           Resume::kFixed, "linears that get LoRA adapters (or [all-linear])"},
          {"use_rslora", boolean(&S::use_rslora), Resume::kFixed, "rank-stabilised LoRA scaling"},
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
            "a PEFT adapter directory to start from (LoRA or prompt tuning)"}
              .checked_by(check_adapter)
              .written_if(has_adapter),
      },
      read_peft};
  return section;
}

}  // namespace tailor::config
