// BPE merging for one word (see hf_tokenizer_bpe.h). The merge loop keeps the symbols in a linked
// list and candidate merges in a min-heap ordered by (rank, position); an entry whose symbols have
// changed since it was pushed is stale and skipped. This is the rank-ordered, leftmost-first order
// of `tokenizers`, in O(n log n) per word.
#include "data/hf_tokenizer_bpe.h"

#include <queue>
#include <stdexcept>

#include <fmt/format.h>

#include "data/unicode.h"

namespace tailor::data {
namespace {

std::uint64_t pair_key(std::int32_t a, std::int32_t b) noexcept {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
         static_cast<std::uint32_t>(b);
}

struct Symbol {
  std::int32_t id;
  std::int32_t prev;  // index of the previous live symbol, -1 at the start
  std::int32_t next;  // index of the next live symbol, -1 at the end
  bool live;
};

struct Candidate {
  std::int32_t rank;
  std::int32_t pos;  // index of the left symbol
  std::int32_t new_id;
  bool operator>(const Candidate& o) const noexcept {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

}  // namespace

BpeModel::BpeModel(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                   Options options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  for (const auto& [token, id] : vocab_) {
    id_to_token_[id] = token;
    max_id_ = std::max(max_id_, id);
  }
  merges_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = vocab_.find(a);
    const auto ib = vocab_.find(b);
    const auto iab = vocab_.find(a + b);
    for (const auto& [it, tok] : {std::pair{ia, &a}, std::pair{ib, &b}}) {
      if (it == vocab_.end())
        throw std::invalid_argument(
            fmt::format("model.merges[{}]: token '{}' is not in the vocabulary", rank, *tok));
    }
    if (iab == vocab_.end())
      throw std::invalid_argument(
          fmt::format("model.merges[{}]: merged token '{}' is not in the vocabulary", rank, a + b));
    // A pair listed twice keeps its last rank, as `tokenizers` does.
    merges_[pair_key(ia->second, ib->second)] = Merge{static_cast<std::int32_t>(rank), iab->second};
  }
  if (options_.unk_token) {
    const auto it = vocab_.find(*options_.unk_token);
    if (it == vocab_.end())
      throw std::invalid_argument(
          fmt::format("model.unk_token '{}' is not in the vocabulary", *options_.unk_token));
    unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(fmt::format("<0x{:02X}>", b));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
}

BpeModel::BpeModel(BpeModel&& other) noexcept
    : vocab_(std::move(other.vocab_)),
      id_to_token_(std::move(other.id_to_token_)),
      merges_(std::move(other.merges_)),
      options_(std::move(other.options_)),
      unk_id_(other.unk_id_),
      max_id_(other.max_id_) {
  std::copy(std::begin(other.byte_ids_), std::end(other.byte_ids_), std::begin(byte_ids_));
}

std::optional<std::int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(std::int32_t id) const {
  const auto it = id_to_token_.find(id);
  return it == id_to_token_.end() ? nullptr : &it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<std::int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    const std::lock_guard lock(cache_mutex_);
    if (const auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<std::int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    const std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<std::int32_t>& out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto add = [&](std::int32_t id) {
    const auto n = static_cast<std::int32_t>(symbols.size());
    symbols.push_back(Symbol{id, n - 1, -1, true});
    if (n > 0) symbols[static_cast<std::size_t>(n - 1)].next = n;
  };

  // Characters → initial symbols. A pending unk is held back so that consecutive ones can be fused;
  // like `tokenizers`, byte-fallback tokens do not flush it.
  std::int32_t pending_unk = -1;
  std::size_t pos = 0;
  while (pos < word.size()) {
    const std::size_t start = pos;
    (void)unicode::next_code_point(word, pos);
    const std::string_view ch = word.substr(start, pos - start);
    if (const auto it = vocab_.find(ch); it != vocab_.end()) {
      if (pending_unk >= 0) {
        add(pending_unk);
        pending_unk = -1;
      }
      add(it->second);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (char b : ch) all = all && byte_ids_[static_cast<unsigned char>(b)] >= 0;
      if (all) {
        for (char b : ch) add(byte_ids_[static_cast<unsigned char>(b)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !options_.fuse_unk) add(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) add(pending_unk);

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const auto push_pair = [&](std::int32_t left) {
    const std::int32_t right = symbols[static_cast<std::size_t>(left)].next;
    if (right < 0) return;
    const auto it = merges_.find(pair_key(symbols[static_cast<std::size_t>(left)].id,
                                          symbols[static_cast<std::size_t>(right)].id));
    if (it != merges_.end()) heap.push(Candidate{it->second.rank, left, it->second.new_id});
  };
  for (std::size_t i = 0; i + 1 < symbols.size(); ++i) push_pair(static_cast<std::int32_t>(i));

  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[static_cast<std::size_t>(top.pos)];
    if (!left.live || left.next < 0) continue;
    Symbol& right = symbols[static_cast<std::size_t>(left.next)];
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.rank != top.rank || it->second.new_id != top.new_id)
      continue;  // stale: one of the two symbols changed since this entry was pushed
    left.id = top.new_id;
    right.live = false;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (const Symbol& s : symbols)
    if (s.live) out.push_back(s.id);
}

}  // namespace tailor::data
