// The byte-level tokenizer: every byte of UTF-8 text is one token (ids 0..255), and id 256 is
// the end-of-sequence token that closes every document. Needs no vocabulary file, so the
// quickstart runs with nothing downloaded. (HF BPE and SentencePiece tokenizers come with the
// Hugging Face interop work.)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"

namespace tailor::data {

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr std::int32_t kEos = 256;
  static constexpr std::int64_t kVocabSize = 257;

  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text) const override;
  // Bytes for ids 0..255; EOS and out-of-range ids are dropped.
  [[nodiscard]] std::string decode(const std::vector<std::int32_t>& ids) const override;
  [[nodiscard]] std::int64_t vocab_size() const noexcept override { return kVocabSize; }
  [[nodiscard]] std::int32_t eos_id() const noexcept { return kEos; }

  // Tokenizer interface: no BOS; EOS is kEos; tokens are the single bytes ("\x41" is "A").
  [[nodiscard]] std::optional<std::int32_t> bos_token_id() const override { return std::nullopt; }
  [[nodiscard]] std::optional<std::int32_t> eos_token_id() const override { return kEos; }
  [[nodiscard]] std::optional<std::int32_t> token_to_id(std::string_view token) const override {
    if (token.size() != 1) return std::nullopt;
    return static_cast<std::int32_t>(static_cast<unsigned char>(token[0]));
  }
  [[nodiscard]] std::optional<std::string> id_to_token(std::int32_t id) const override {
    if (id < 0 || id >= 256) return std::nullopt;
    return std::string(1, static_cast<char>(id));
  }

  // The name the Hugging Face files give id 256 (kEos).
  static constexpr const char* kEosToken = "<|endoftext|>";
  // The files that make this tokenizer a Hugging Face one (file name -> content): tokenizer.json
  // (byte-level BPE over the 256 single-byte tokens, no merges, no pre-tokenizer split, so id b is
  // byte b; kEosToken is an added special token) and tokenizer_config.json. transformers'
  // AutoTokenizer and Tailor's HfTokenizer both load them and encode text to the bytes' ids, so a
  // byte-tokenizer model's export is usable by every command that takes a model directory. One
  // difference: the literal text "<|endoftext|>" encodes as the special token, not as 13 bytes.
  [[nodiscard]] static std::map<std::string, std::string> hf_files(std::int64_t model_max_length);
};

}  // namespace tailor::data
