// SentencePiece `.model` tokenizers (tokenizer.model of Llama-2, Mistral, Gemma, T5 …), run by
// libsentencepiece itself, so ids are exactly what SentencePiece gives. encode() adds no BOS/EOS.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tailor::data {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // A file that SentencePiece cannot load → UserError(path, reason).
  [[nodiscard]] static SentencePieceTokenizer load(const std::filesystem::path& path);

  SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept;
  SentencePieceTokenizer& operator=(SentencePieceTokenizer&&) noexcept;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;
  ~SentencePieceTokenizer() override;

  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text) const override;
  [[nodiscard]] std::string decode(const std::vector<std::int32_t>& ids) const override;
  [[nodiscard]] std::int64_t vocab_size() const override;
  [[nodiscard]] std::optional<std::int32_t> bos_token_id() const override;
  [[nodiscard]] std::optional<std::int32_t> eos_token_id() const override;
  [[nodiscard]] std::optional<std::int32_t> token_to_id(std::string_view token) const override;
  [[nodiscard]] std::optional<std::string> id_to_token(std::int32_t id) const override;

 private:
  SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp,
                         std::string where);
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string where_;
};

}  // namespace tailor::data
