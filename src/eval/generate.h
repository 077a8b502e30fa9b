// Text generation: a batch of prompts through Transformer::extend() with a KV cache.
//
// The prompts (token ids, different lengths allowed) are prefilled together, right-padded, each
// at positions 0 .. len - 1 of its own cache row; then one token per row and step is chosen
// (sampling.h) and fed back. A row stops at the first of:
//   - a stop id (EOS, a chat template's end-of-turn token): kept in `tokens`, not in `text`;
//   - a stop string appearing in its text: the text is cut where the string begins;
//   - max_new_tokens generated, or max_length tokens in all (prompt + generated).
// Finished rows stay in the batch, idle, until every row has finished.
//
// Text: a row's completion is decoded with a few prompt tokens before it as context (then cut
// off), so a tokenizer that drops the leading space of a text's first word (SentencePiece) does
// not drop it at the start of the completion. Streaming hands out a row's text as soon as it is
// final: a trailing incomplete UTF-8 character, and a trailing piece that could still grow into a
// stop string, are held back until the next token settles them.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"
#include "eval/sampling.h"
#include "model/transformer.h"

namespace tailor::eval {

struct GenerateOptions {
  std::int64_t max_new_tokens = 128;
  std::int64_t max_length = 0;  // prompt + generated tokens per row; 0: no limit
  SamplingOptions sampling;
  std::vector<std::int32_t> stop_ids;     // EOS and end-of-turn ids
  std::vector<std::string> stop_strings;  // need a tokenizer
};

enum class FinishReason { kLength, kStopToken, kStopString };
[[nodiscard]] std::string_view finish_reason_name(FinishReason reason) noexcept;

struct Completion {
  std::vector<std::int32_t> tokens;  // generated ids, the stop id included
  std::string text;                  // decoded; without the stop id, cut before a stop string
  FinishReason finish = FinishReason::kLength;
};

// Receives each row's text as it becomes final; the pieces of a row concatenate to its text.
using TextSink = std::function<void(std::size_t row, std::string_view piece)>;

// One completion per prompt, in order. Every prompt needs at least one token and fewer than
// max_length (when set). `tokenizer` may be null when there are no stop strings and no text is
// wanted (texts then stay empty). Row r draws its random numbers from stream first_stream + r:
// give each record its own index and its tokens do not depend on the batch it ran in.
[[nodiscard]] std::vector<Completion> generate(model::Transformer& model,
                                               const data::Tokenizer* tokenizer,
                                               std::span<const std::vector<std::int32_t>> prompts,
                                               const GenerateOptions& options,
                                               const TextSink& sink = {},
                                               std::uint64_t first_stream = 0);

// How much of `text` may be shown while more tokens can follow: all but a trailing incomplete
// UTF-8 character or U+FFFD run, and a trailing piece that is the start of a stop string.
[[nodiscard]] std::size_t settled_length(std::string_view text,
                                         std::span<const std::string> stop_strings);

}  // namespace tailor::eval
