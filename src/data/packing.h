// Packing: the token stream of a corpus cut into fixed-length training sequences.
//
// Sequence s covers stream tokens [s*T, s*T + T] : inputs are tokens [s*T, s*T + T), targets the
// next token of each. Documents are never mixed inside attention: each token carries its
// document's id within the row (doc_ids) and its position within its document fragment, which
// restarts at 0 at every document start and at the start of every row. A target that would cross
// a document boundary (the token after EOS) is kIgnoreIndex, so the model learns to emit EOS and
// is never asked to guess the next document from the previous one. A target whose token carries
// no loss (corpus.loss == 0: a prompt token) is kIgnoreTarget too.
//
// Prompt tuning (virtual_tokens = n > 0): every document fragment of a row opens with n slots for
// the trainable virtual tokens, ids virtual_token_id(0..n-1) at positions 0..n-1, carrying no
// loss themselves; the fragment's real tokens follow at positions n, n+1, ... (ARCHITECTURE.md:
// the virtual tokens count toward T). The last virtual slot predicts the document's first token
// (when it carries loss), as PEFT's prepended prompt does; a fragment that continues a document
// from the previous row predicts nothing there (that token was the previous row's last target).
// Rows then hold whole fragments of at least one real token: the few slots left at the end of a
// row that cannot hold another fragment are padding (id 0, no loss, a document of their own).
//
// Padding mode (PackingMode::kPad, data.packing: pad): sequence s holds one document alone,
// from its start (a document longer than a row, under data.overlong: split, continues in the
// next sequences, each a piece of up to T - n tokens after the virtual slots). The rest of the
// row is padding: the pad id (never EOS), targets kIgnoreTarget, positions restarting at 0, and a
// document id of its own, so no real token attends to padding and padding never carries loss;
// the pad id itself therefore changes nothing. Sequences are the pieces in corpus order.
//
// Pairs mode (PackingMode::kPairs, preference objectives): every document is a preference pair
// (preference.h) and an item is that pair as two padded rows, the chosen sequence then the
// rejected one, each laid out as in padding mode (a target carries loss where the next token is an
// answer token). size() counts pairs, and fill() writes rows_per_item() = 2 rows, so the data
// order, global batches and data-parallel sharding move whole pairs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "data/text_dataset.h"

namespace tailor::data {

inline constexpr std::int32_t kIgnoreTarget = -100;  // == backend::kIgnoreIndex

// The id of virtual token k (prompt tuning) in a packed row: -1 - k.
[[nodiscard]] constexpr std::int32_t virtual_token_id(std::int64_t k) noexcept {
  return static_cast<std::int32_t>(-1 - k);
}

enum class PackingMode { kPack, kPad, kPairs };

// The id padding uses: 0, or 1 when 0 is the EOS (padding is never EOS; its value is masked out).
[[nodiscard]] constexpr std::int32_t pad_token_id(std::int32_t eos) noexcept {
  return eos == 0 ? 1 : 0;
}

class PackedSequences {
 public:
  // `name` is used in the error raised when the corpus is shorter than one sequence.
  // `virtual_tokens` > 0: prompt tuning's slots open every document fragment (< seq_len).
  // The corpus is viewed, not copied: it must outlive this object.
  // `mode` kPad: one document per sequence, padded with `pad_id` (see above).
  PackedSequences(CorpusView corpus, std::int64_t seq_len, const std::string& name,
                  std::int64_t virtual_tokens = 0, PackingMode mode = PackingMode::kPack,
                  std::int32_t pad_id = 0);

  // Items: sequences, or pairs (kPairs).
  [[nodiscard]] std::int64_t size() const noexcept { return num_sequences_; }
  [[nodiscard]] std::int64_t seq_len() const noexcept { return seq_len_; }
  // Rows one item fills: 2 for pairs, else 1.
  [[nodiscard]] std::int64_t rows_per_item() const noexcept {
    return mode_ == PackingMode::kPairs ? 2 : 1;
  }

  // Writes item s into the four spans of length rows_per_item() * seq_len.
  void fill(std::int64_t s, std::span<std::int32_t> ids, std::span<std::int32_t> targets,
            std::span<std::int32_t> positions, std::span<std::int32_t> doc_ids) const;

 private:
  [[nodiscard]] std::int64_t document_of(std::int64_t token) const;
  // Prompt tuning: the first corpus token of every row, and one row's slots.
  void plan_virtual_rows();
  // Writes a fragment at row offset i: the n virtual slots, then tokens [p, p + take) of their
  // document (positions n, n + 1, ...), all with document id `doc`; returns the offset after it.
  std::size_t write_fragment(std::int64_t p, std::int64_t take, std::int32_t doc, std::size_t i,
                             std::span<std::int32_t> ids, std::span<std::int32_t> targets,
                             std::span<std::int32_t> positions,
                             std::span<std::int32_t> doc_ids) const;
  // Fills the row from offset i to its end with `id`, no loss, positions from 0, document `doc`.
  static void write_padding(std::size_t i, std::int32_t id, std::int32_t doc,
                            std::span<std::int32_t> ids, std::span<std::int32_t> targets,
                            std::span<std::int32_t> positions, std::span<std::int32_t> doc_ids);
  void fill_virtual(std::int64_t s, std::span<std::int32_t> ids, std::span<std::int32_t> targets,
                    std::span<std::int32_t> positions, std::span<std::int32_t> doc_ids) const;

  // Padding mode: the first corpus token of every sequence, and one sequence.
  void plan_padded_rows();
  void fill_padded(std::int64_t s, std::span<std::int32_t> ids, std::span<std::int32_t> targets,
                   std::span<std::int32_t> positions, std::span<std::int32_t> doc_ids) const;

  // Pairs mode: rows 2s (chosen) and 2s + 1 (rejected).
  void fill_pair(std::int64_t s, std::span<std::int32_t> ids, std::span<std::int32_t> targets,
                 std::span<std::int32_t> positions, std::span<std::int32_t> doc_ids) const;

  CorpusView corpus_;
  std::int64_t seq_len_;
  std::int64_t num_sequences_;
  std::int64_t virtual_tokens_ = 0;
  std::vector<std::int64_t> row_start_;  // prompt tuning only
  PackingMode mode_ = PackingMode::kPack;
  std::int32_t pad_id_ = 0;
  std::vector<std::int64_t> piece_start_;  // padding mode only
};

}  // namespace tailor::data
