// Preference pairs in the token stream: a pair {prompt, chosen, rejected} is one document of the
// corpus, its chosen sequence (prompt + chosen answer) followed by its rejected sequence (prompt
// + rejected answer). Each token's loss flag (TokenizedCorpus::loss) says, in bit 0, whether it is
// an answer token (its log-probability counts) and, in bit 1, that it belongs to the rejected
// sequence. A pair therefore stays one unit through everything that moves documents (mixing of
// sources, the validation split, the tokenized cache, the data order and data-parallel sharding),
// and packing (packing.h, PackingMode::kPairs) turns it into two padded rows.
//
// Truncation (TRL's rule, with data.seq_len as the length limit and data.max_prompt_tokens as the
// prompt's): when the prompt plus the longer answer exceed seq_len, the prompt keeps its last
// max_prompt_tokens tokens; when they still exceed it, each answer keeps its first
// seq_len - (prompt tokens) tokens. Both sequences then fit one row.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "data/jsonl_dataset.h"
#include "data/template.h"
#include "data/tokenizer.h"

namespace tailor::data {

inline constexpr std::uint8_t kLossAnswer = 1;    // bit 0: an answer token (carries loss)
inline constexpr std::uint8_t kLossRejected = 2;  // bit 1: of the rejected sequence

struct PairLimits {
  std::int64_t seq_len = 0;            // tokens per sequence (each side of a pair)
  std::int64_t max_prompt_tokens = 0;  // the prompt's limit when a pair is too long (< seq_len)
};

// The tokens of one side of a pair: its prompt length (tokens before the first answer token)
// and its tokens and flags (0 or kLossAnswer).
struct PairSide {
  std::vector<std::int32_t> tokens;
  std::vector<std::uint8_t> loss;
  std::int64_t prompt = 0;
};

// Applies the truncation rule above to both sides of a pair (in place).
void truncate_pair(PairSide& chosen, PairSide& rejected, const PairLimits& limits);

// Renders (template.h), tokenizes and truncates a preference record, and appends its document:
// the chosen sequence, then the rejected one (flags | kLossRejected).
void tokenize_pair(const Record& pair, const TemplateSpec& spec, const Tokenizer& tokenizer,
                   const PairLimits& limits, std::vector<std::int32_t>& tokens,
                   std::vector<std::uint8_t>& loss);

// Where a pair document's rejected sequence starts: the offset of its first flag with
// kLossRejected (flags: the document's).
[[nodiscard]] std::int64_t rejected_start(std::span<const std::uint8_t> flags);

}  // namespace tailor::data
