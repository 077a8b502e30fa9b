// The BPE model of Hugging Face `tokenizers` (model.type "BPE" in tokenizer.json): vocabulary,
// ranked merges, unknown-token handling and byte fallback, applied to one pre-tokenized word.
//
// Semantics follow `tokenizers` exactly: a word is split into characters; a character missing from
// the vocabulary becomes its <0xXX> byte tokens (byte_fallback, when all of them exist), else the
// unk token (consecutive ones fused with fuse_unk), else it is dropped. Then the lowest-ranked
// adjacent pair is merged, leftmost first, until no pair has a merge. With ignore_merges a word
// that is itself in the vocabulary is one token. Results are cached per word (bounded,
// thread-safe).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tailor::data {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
using TokenMap = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  struct Options {
    std::optional<std::string> unk_token;
    bool fuse_unk = false;
    bool byte_fallback = false;
    bool ignore_merges = false;
  };

  // Throws std::invalid_argument with a reason on inconsistent input (a merge whose parts or
  // result are not in the vocabulary, an unk token outside it); the loader adds the file name.
  BpeModel(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           Options options);
  BpeModel(BpeModel&& other) noexcept;
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;
  BpeModel& operator=(BpeModel&&) = delete;
  ~BpeModel() = default;

  // Appends the ids of `word` (valid UTF-8, non-empty) to `out`.
  void encode_word(std::string_view word, std::vector<std::int32_t>& out) const;

  [[nodiscard]] std::optional<std::int32_t> token_to_id(std::string_view token) const;
  [[nodiscard]] const std::string* id_to_token(std::int32_t id) const;
  [[nodiscard]] std::size_t size() const noexcept { return vocab_.size(); }
  [[nodiscard]] std::int32_t max_id() const noexcept { return max_id_; }
  [[nodiscard]] std::size_t num_merges() const noexcept { return merges_.size(); }
  [[nodiscard]] const Options& options() const noexcept { return options_; }

 private:
  struct Merge {
    std::int32_t rank;
    std::int32_t new_id;
  };
  void merge_word(std::string_view word, std::vector<std::int32_t>& out) const;

  TokenMap vocab_;
  std::unordered_map<std::int32_t, std::string> id_to_token_;
  std::unordered_map<std::uint64_t, Merge> merges_;  // key: (left id << 32) | right id
  Options options_;
  std::optional<std::int32_t> unk_id_;
  std::int32_t byte_ids_[256];  // <0xXX> ids, -1 where missing
  std::int32_t max_id_ = -1;

  static constexpr std::size_t kMaxCachedWordBytes = 128;
  static constexpr std::size_t kMaxCacheEntries = 1 << 17;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>, StringHash, std::equal_to<>>
      cache_;
};

}  // namespace tailor::data
