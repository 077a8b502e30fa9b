// Scoring: the mean negative log-likelihood and perplexity of a model on JSONL records.
//
// Records are {"text": ...} (every token after the first is predicted) or {"prompt": ...,
// "completion": ...} (only the completion's tokens and the closing EOS are scored). Each record
// is [BOS] + tokens + [EOS] and is scored on its own (no packing), so the result is exactly
// exp(mean NLL over the scored tokens), the perplexity of ARCHITECTURE.md. With a prompt-tuning
// model the virtual tokens open each record (positions 0..n-1), as in training; they are not
// scored. Bad records are a UserError `file:line: reason`.
#pragma once

#include <cstdint>
#include <string>

#include "backend/ops.h"
#include "data/tokenizer.h"
#include "model/transformer.h"

namespace tailor::eval {

struct ScoreResult {
  std::int64_t records = 0;
  std::int64_t tokens = 0;   // scored (predicted) tokens
  double nll = 0.0;          // mean negative log-likelihood per scored token, nats
  double ppl = 0.0;          // exp(nll)
};

[[nodiscard]] ScoreResult score_jsonl(model::Transformer& model, const data::Tokenizer& tokenizer,
                                      const std::string& path);

}  // namespace tailor::eval
