// Preference pairs: rendering, tokenization and truncation (see preference.h).
#include "data/preference.h"

#include <algorithm>

#include "core/error.h"

namespace tailor::data {
namespace {

PairSide tokenize_side(const Record& pair, const std::string& answer, const TemplateSpec& spec,
                       const Tokenizer& tokenizer) {
  PairSide side;
  tokenize_record(render_record(preference_answer(pair, answer), spec), spec.chat_format(),
                  tokenizer, side.tokens, side.loss);
  const auto first = std::find(side.loss.begin(), side.loss.end(), kLossAnswer);
  side.prompt = first - side.loss.begin();
  return side;
}

// Keeps the last `keep` prompt tokens.
void keep_prompt_end(PairSide& s, std::int64_t keep) {
  if (s.prompt <= keep) return;
  const std::int64_t drop = s.prompt - keep;
  s.tokens.erase(s.tokens.begin(), s.tokens.begin() + drop);
  s.loss.erase(s.loss.begin(), s.loss.begin() + drop);
  s.prompt = keep;
}

void keep_answer_start(PairSide& s, std::int64_t keep) {
  const auto len = static_cast<std::int64_t>(s.tokens.size());
  if (len - s.prompt <= keep) return;
  s.tokens.resize(static_cast<std::size_t>(s.prompt + keep));
  s.loss.resize(static_cast<std::size_t>(s.prompt + keep));
}

std::int64_t answer_length(const PairSide& s) {
  return static_cast<std::int64_t>(s.tokens.size()) - s.prompt;
}

}  // namespace

void truncate_pair(PairSide& chosen, PairSide& rejected, const PairLimits& limits) {
  TAILOR_ASSERT(limits.max_prompt_tokens >= 0 && limits.max_prompt_tokens < limits.seq_len,
                "prompt limit {} for sequences of {}", limits.max_prompt_tokens, limits.seq_len);
  const std::int64_t longer = std::max(answer_length(chosen), answer_length(rejected));
  const std::int64_t prompt = std::max(chosen.prompt, rejected.prompt);
  if (prompt + longer <= limits.seq_len) return;
  keep_prompt_end(chosen, limits.max_prompt_tokens);
  keep_prompt_end(rejected, limits.max_prompt_tokens);
  for (PairSide* s : {&chosen, &rejected}) keep_answer_start(*s, limits.seq_len - s->prompt);
}

void tokenize_pair(const Record& pair, const TemplateSpec& spec, const Tokenizer& tokenizer,
                   const PairLimits& limits, std::vector<std::int32_t>& tokens,
                   std::vector<std::uint8_t>& loss) {
  TAILOR_ASSERT(pair.kind == RecordKind::kPreference, "not a preference pair");
  PairSide chosen = tokenize_side(pair, pair.chosen, spec, tokenizer);
  PairSide rejected = tokenize_side(pair, pair.rejected, spec, tokenizer);
  truncate_pair(chosen, rejected, limits);
  tokens.insert(tokens.end(), chosen.tokens.begin(), chosen.tokens.end());
  loss.insert(loss.end(), chosen.loss.begin(), chosen.loss.end());
  tokens.insert(tokens.end(), rejected.tokens.begin(), rejected.tokens.end());
  for (const std::uint8_t f : rejected.loss) loss.push_back(f | kLossRejected);
}

std::int64_t rejected_start(std::span<const std::uint8_t> flags) {
  const auto it = std::find_if(flags.begin(), flags.end(),
                               [](std::uint8_t f) { return (f & kLossRejected) != 0; });
  return it - flags.begin();
}

}  // namespace tailor::data
