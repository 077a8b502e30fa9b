#include "data/packing.h"

#include <algorithm>

#include "core/error.h"
#include "data/preference.h"

namespace tailor::data {

PackedSequences::PackedSequences(CorpusView corpus, std::int64_t seq_len,
                                 const std::string& name, std::int64_t virtual_tokens,
                                 PackingMode mode, std::int32_t pad_id)
    : corpus_(corpus), seq_len_(seq_len), virtual_tokens_(virtual_tokens), mode_(mode),
      pad_id_(pad_id) {
  TAILOR_ASSERT(seq_len >= 1, "seq_len {}", seq_len);
  TAILOR_ASSERT(corpus.loss.empty() || corpus.loss.size() == corpus.tokens.size(),
                "loss mask of {} for {} tokens", corpus.loss.size(), corpus.tokens.size());
  const auto n = static_cast<std::int64_t>(corpus.tokens.size());
  if (mode == PackingMode::kPairs) {
    TAILOR_ASSERT(virtual_tokens == 0, "virtual tokens with preference pairs");
    TAILOR_ASSERT(!corpus.loss.empty(), "preference pairs without their flags");
    num_sequences_ = corpus.num_documents();
    TAILOR_CHECK_USER(num_sequences_ >= 1, name, "the data has no preference pairs");
    return;
  }
  if (mode == PackingMode::kPad) {
    TAILOR_ASSERT(virtual_tokens >= 0 && virtual_tokens < seq_len, "{} virtual tokens in rows of {}",
                  virtual_tokens, seq_len);
    plan_padded_rows();
    num_sequences_ = static_cast<std::int64_t>(piece_start_.size());
    TAILOR_CHECK_USER(num_sequences_ >= 1, name, "the data has no documents");
    return;
  }
  if (virtual_tokens > 0) {
    TAILOR_ASSERT(virtual_tokens < seq_len, "{} virtual tokens in rows of {}", virtual_tokens,
                  seq_len);
    plan_virtual_rows();
    num_sequences_ = static_cast<std::int64_t>(row_start_.size());
    TAILOR_CHECK_USER(num_sequences_ >= 1, name,
                      "the data has {} tokens, too few for one sequence of data.seq_len = {} "
                      "with {} virtual tokens opening every document",
                      n, seq_len, virtual_tokens);
    return;
  }
  num_sequences_ = n > 0 ? (n - 1) / seq_len : 0;
  TAILOR_CHECK_USER(num_sequences_ >= 1, name,
                    "the data has {} tokens, too few for one sequence of data.seq_len = {} (needs "
                    "{})",
                    n, seq_len, seq_len + 1);
}

std::int64_t PackedSequences::document_of(std::int64_t token) const {
  const auto& starts = corpus_.doc_start;
  // Last start <= token.
  const auto it = std::upper_bound(starts.begin(), starts.end(), token);
  return static_cast<std::int64_t>(it - starts.begin()) - 1;
}

void PackedSequences::plan_virtual_rows() {
  // Greedy, in corpus order: a fragment needs its n slots and at least one real token; a row is
  // kept when it is full (the tail of the corpus that fills no row is dropped, as without
  // virtual tokens).
  const auto& starts = corpus_.doc_start;
  const auto total = static_cast<std::int64_t>(corpus_.tokens.size());
  const std::int64_t n = virtual_tokens_;
  std::int64_t p = 0;
  while (p < total) {
    const std::int64_t row = p;
    std::int64_t used = 0;
    while (used + n + 1 <= seq_len_ && p < total) {
      const std::int64_t end = starts[static_cast<std::size_t>(document_of(p) + 1)];
      const std::int64_t take = std::min(end - p, seq_len_ - used - n);
      p += take;
      used += n + take;
    }
    if (used + n + 1 <= seq_len_) break;  // the data ran out before the row was full
    row_start_.push_back(row);
  }
}

std::size_t PackedSequences::write_fragment(std::int64_t p, std::int64_t take, std::int32_t doc,
                                            std::size_t i, std::span<std::int32_t> ids,
                                            std::span<std::int32_t> targets,
                                            std::span<std::int32_t> positions,
                                            std::span<std::int32_t> doc_ids) const {
  const auto& tok = corpus_.tokens;
  const auto& loss = corpus_.loss;
  const std::int64_t n = virtual_tokens_;
  const std::int64_t d = document_of(p);
  const std::int64_t begin = corpus_.doc_start[static_cast<std::size_t>(d)];
  const std::int64_t end = corpus_.doc_start[static_cast<std::size_t>(d + 1)];
  const auto carries_loss = [&](std::int64_t g) {
    return loss.empty() || loss[static_cast<std::size_t>(g)] != 0;
  };
  for (std::int64_t k = 0; k < n; ++k, ++i) {
    ids[i] = virtual_token_id(k);
    positions[i] = static_cast<std::int32_t>(k);
    doc_ids[i] = doc;
    // The last virtual slot predicts a document's first token.
    const bool first = k == n - 1 && p == begin && carries_loss(p);
    targets[i] = first ? tok[static_cast<std::size_t>(p)] : kIgnoreTarget;
  }
  for (std::int64_t j = 0; j < take; ++j, ++i) {
    const std::int64_t g = p + j;
    ids[i] = tok[static_cast<std::size_t>(g)];
    positions[i] = static_cast<std::int32_t>(n + j);
    doc_ids[i] = doc;
    const bool trained = g + 1 < end && carries_loss(g + 1);
    targets[i] = trained ? tok[static_cast<std::size_t>(g + 1)] : kIgnoreTarget;
  }
  return i;
}

void PackedSequences::write_padding(std::size_t i, std::int32_t id, std::int32_t doc,
                                    std::span<std::int32_t> ids, std::span<std::int32_t> targets,
                                    std::span<std::int32_t> positions,
                                    std::span<std::int32_t> doc_ids) {
  for (std::int32_t pos = 0; i < ids.size(); ++i, ++pos) {
    ids[i] = id;
    targets[i] = kIgnoreTarget;
    positions[i] = pos;
    doc_ids[i] = doc;
  }
}

void PackedSequences::fill_virtual(std::int64_t s, std::span<std::int32_t> ids,
                                   std::span<std::int32_t> targets,
                                   std::span<std::int32_t> positions,
                                   std::span<std::int32_t> doc_ids) const {
  const auto total = static_cast<std::int64_t>(corpus_.tokens.size());
  const std::int64_t n = virtual_tokens_;
  std::int64_t p = row_start_[static_cast<std::size_t>(s)];
  std::size_t i = 0;
  std::int32_t fragment = 0;
  const auto t_len = static_cast<std::size_t>(seq_len_);
  for (; i + static_cast<std::size_t>(n) + 1 <= t_len && p < total; ++fragment) {
    const std::int64_t end = corpus_.doc_start[static_cast<std::size_t>(document_of(p) + 1)];
    const std::int64_t take = std::min(end - p, static_cast<std::int64_t>(t_len - i) - n);
    i = write_fragment(p, take, fragment, i, ids, targets, positions, doc_ids);
    p += take;
  }
  write_padding(i, 0, fragment, ids, targets, positions, doc_ids);  // no loss, attends to itself
}

void PackedSequences::plan_padded_rows() {
  const std::int64_t room = seq_len_ - virtual_tokens_;  // real tokens a sequence holds
  const auto& starts = corpus_.doc_start;
  for (std::size_t d = 0; d + 1 < starts.size(); ++d)
    for (std::int64_t p = starts[d]; p < starts[d + 1]; p += room) piece_start_.push_back(p);
}

void PackedSequences::fill_padded(std::int64_t s, std::span<std::int32_t> ids,
                                  std::span<std::int32_t> targets,
                                  std::span<std::int32_t> positions,
                                  std::span<std::int32_t> doc_ids) const {
  const std::int64_t p = piece_start_[static_cast<std::size_t>(s)];
  const std::int64_t end = corpus_.doc_start[static_cast<std::size_t>(document_of(p) + 1)];
  const std::int64_t take = std::min(end - p, seq_len_ - virtual_tokens_);
  const std::size_t i = write_fragment(p, take, 0, 0, ids, targets, positions, doc_ids);
  write_padding(i, pad_id_, 1, ids, targets, positions, doc_ids);  // padding: a document of its own
}

void PackedSequences::fill_pair(std::int64_t s, std::span<std::int32_t> ids,
                                std::span<std::int32_t> targets,
                                std::span<std::int32_t> positions,
                                std::span<std::int32_t> doc_ids) const {
  const auto& tok = corpus_.tokens;
  const auto& flags = corpus_.loss;
  const std::int64_t begin = corpus_.doc_start[static_cast<std::size_t>(s)];
  const std::int64_t end = corpus_.doc_start[static_cast<std::size_t>(s) + 1];
  const std::int64_t split =
      begin + rejected_start(flags.subspan(static_cast<std::size_t>(begin),
                                           static_cast<std::size_t>(end - begin)));
  const auto t_len = static_cast<std::size_t>(seq_len_);
  const std::int64_t ranges[2][2] = {{begin, split}, {split, end}};
  for (std::size_t row = 0; row < 2; ++row) {
    const auto [b, e] = ranges[row];
    TAILOR_ASSERT(e > b && e - b <= seq_len_, "pair {} side {}: {} tokens in rows of {}", s, row,
                  e - b, seq_len_);
    const std::size_t off = row * t_len;
    std::size_t i = off;
    for (std::int64_t g = b; g < e; ++g, ++i) {
      ids[i] = tok[static_cast<std::size_t>(g)];
      positions[i] = static_cast<std::int32_t>(g - b);
      doc_ids[i] = 0;
      const bool trained =
          g + 1 < e && (flags[static_cast<std::size_t>(g + 1)] & kLossAnswer) != 0;
      targets[i] = trained ? tok[static_cast<std::size_t>(g + 1)] : kIgnoreTarget;
    }
    write_padding(i - off, pad_id_, 1, ids.subspan(off, t_len), targets.subspan(off, t_len),
                  positions.subspan(off, t_len), doc_ids.subspan(off, t_len));
  }
}

void PackedSequences::fill(std::int64_t s, std::span<std::int32_t> ids,
                           std::span<std::int32_t> targets, std::span<std::int32_t> positions,
                           std::span<std::int32_t> doc_ids) const {
  TAILOR_ASSERT(s >= 0 && s < num_sequences_, "sequence {} of {}", s, num_sequences_);
  const auto t_len = static_cast<std::size_t>(seq_len_);
  const auto item_len = t_len * static_cast<std::size_t>(rows_per_item());
  TAILOR_ASSERT(ids.size() == item_len && targets.size() == item_len &&
                    positions.size() == item_len && doc_ids.size() == item_len,
                "row spans must have rows_per_item * seq_len elements");
  if (mode_ == PackingMode::kPairs) {
    fill_pair(s, ids, targets, positions, doc_ids);
    return;
  }
  if (mode_ == PackingMode::kPad) {
    fill_padded(s, ids, targets, positions, doc_ids);
    return;
  }
  if (virtual_tokens_ > 0) {
    fill_virtual(s, ids, targets, positions, doc_ids);
    return;
  }
  const auto& tok = corpus_.tokens;
  const auto& starts = corpus_.doc_start;
  const auto& loss = corpus_.loss;
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
