#include "data/packing.h"

#include <algorithm>

#include "core/error.h"

namespace tailor::data {

PackedSequences::PackedSequences(const TokenizedCorpus& corpus, std::int64_t seq_len,
                                 const std::string& name)
    : corpus_(&corpus), seq_len_(seq_len) {
  TAILOR_ASSERT(seq_len >= 1, "seq_len {}", seq_len);
  TAILOR_ASSERT(corpus.loss.empty() || corpus.loss.size() == corpus.tokens.size(),
                "loss mask of {} for {} tokens", corpus.loss.size(), corpus.tokens.size());
  const auto n = static_cast<std::int64_t>(corpus.tokens.size());
  num_sequences_ = n > 0 ? (n - 1) / seq_len : 0;
  TAILOR_CHECK_USER(num_sequences_ >= 1, name,
                    "the data has {} tokens, too few for one sequence of data.seq_len = {} (needs "
                    "{})",
                    n, seq_len, seq_len + 1);
}

std::int64_t PackedSequences::document_of(std::int64_t token) const {
  const auto& starts = corpus_->doc_start;
  // Last start <= token.
  const auto it = std::upper_bound(starts.begin(), starts.end(), token);
  return static_cast<std::int64_t>(it - starts.begin()) - 1;
}

void PackedSequences::fill(std::int64_t s, std::span<std::int32_t> ids,
                           std::span<std::int32_t> targets, std::span<std::int32_t> positions,
                           std::span<std::int32_t> doc_ids) const {
  TAILOR_ASSERT(s >= 0 && s < num_sequences_, "sequence {} of {}", s, num_sequences_);
  const auto t_len = static_cast<std::size_t>(seq_len_);
  TAILOR_ASSERT(ids.size() == t_len && targets.size() == t_len && positions.size() == t_len &&
                    doc_ids.size() == t_len,
                "row spans must have seq_len elements");
  const auto& tok = corpus_->tokens;
  const auto& starts = corpus_->doc_start;
  const auto& loss = corpus_->loss;
  const std::int64_t row_start = s * seq_len_;
  std::int64_t doc = document_of(row_start);
  const std::int64_t first_doc = doc;
  std::int64_t fragment_start = row_start;
  for (std::size_t i = 0; i < t_len; ++i) {
    const std::int64_t g = row_start + static_cast<std::int64_t>(i);
    while (g >= starts[static_cast<std::size_t>(doc + 1)]) {
      ++doc;
      fragment_start = g;
    }
    ids[i] = tok[static_cast<std::size_t>(g)];
    const bool next_in_doc = g + 1 < starts[static_cast<std::size_t>(doc + 1)];
    const auto next = static_cast<std::size_t>(g + 1);
    const bool trained = next_in_doc && (loss.empty() || loss[next] != 0);
    targets[i] = trained ? tok[next] : kIgnoreTarget;
    positions[i] = static_cast<std::int32_t>(g - fragment_start);
    doc_ids[i] = static_cast<std::int32_t>(doc - first_doc);
  }
}

}  // namespace tailor::data
