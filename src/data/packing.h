// Packing: the token stream of a corpus cut into fixed-length training sequences.
//
// Sequence s covers stream tokens [s*T, s*T + T] : inputs are tokens [s*T, s*T + T), targets the
// next token of each. Documents are never mixed inside attention: each token carries its
// document's id within the row (doc_ids) and its position within its document fragment, which
// restarts at 0 at every document start and at the start of every row. A target that would cross
// a document boundary (the token after EOS) is kIgnoreIndex, so the model learns to emit EOS and
// is never asked to guess the next document from the previous one. A target whose token carries
// no loss (corpus.loss == 0: a prompt token) is kIgnoreTarget too.
#pragma once

#include <cstdint>
#include <span>

#include "data/text_dataset.h"

namespace tailor::data {

inline constexpr std::int32_t kIgnoreTarget = -100;  // == backend::kIgnoreIndex

class PackedSequences {
 public:
  // `name` is used in the error raised when the corpus is shorter than one sequence.
  PackedSequences(const TokenizedCorpus& corpus, std::int64_t seq_len, const std::string& name);

  [[nodiscard]] std::int64_t size() const noexcept { return num_sequences_; }
  [[nodiscard]] std::int64_t seq_len() const noexcept { return seq_len_; }

  // Writes sequence s into the four spans of length seq_len.
  void fill(std::int64_t s, std::span<std::int32_t> ids, std::span<std::int32_t> targets,
            std::span<std::int32_t> positions, std::span<std::int32_t> doc_ids) const;

 private:
  [[nodiscard]] std::int64_t document_of(std::int64_t token) const;

  const TokenizedCorpus* corpus_;
  std::int64_t seq_len_;
  std::int64_t num_sequences_;
};

}  // namespace tailor::data
