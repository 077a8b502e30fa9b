// The byte-level tokenizer: every byte of UTF-8 text is one token (ids 0..255), and id 256 is
// the end-of-sequence token that closes every document. Needs no vocabulary file, so the
// quickstart runs with nothing downloaded. (HF BPE and SentencePiece tokenizers come with the
// Hugging Face interop work.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tailor::data {

class ByteTokenizer {
 public:
  static constexpr std::int32_t kEos = 256;
  static constexpr std::int64_t kVocabSize = 257;

  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text) const;
  // Bytes for ids 0..255; EOS and out-of-range ids are dropped.
  [[nodiscard]] std::string decode(const std::vector<std::int32_t>& ids) const;
  [[nodiscard]] std::int64_t vocab_size() const noexcept { return kVocabSize; }
  [[nodiscard]] std::int32_t eos_id() const noexcept { return kEos; }
};

}  // namespace tailor::data
