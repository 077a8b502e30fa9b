// The interface every tokenizer implements: the byte tokenizer of the quickstart, Hugging Face
// `tokenizer.json` (HfTokenizer) and SentencePiece `.model` files (SentencePieceTokenizer).
//
// encode() never adds BOS/EOS (callers add them by id, so packing and loss masks stay in one
// place); special tokens written in the text are still recognised as such. decode() keeps special
// tokens, so decode(encode(text)) == text wherever the tokenizer is lossless. Implementations are
// immutable after loading and safe to use from several threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tailor::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  [[nodiscard]] virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;
  [[nodiscard]] virtual std::string decode(const std::vector<std::int32_t>& ids) const = 0;
  // One more than the largest id the tokenizer can produce (the embedding needs this many rows).
  [[nodiscard]] virtual std::int64_t vocab_size() const = 0;
  [[nodiscard]] virtual std::optional<std::int32_t> bos_token_id() const = 0;
  [[nodiscard]] virtual std::optional<std::int32_t> eos_token_id() const = 0;
  [[nodiscard]] virtual std::optional<std::int32_t> token_to_id(std::string_view token) const = 0;
  [[nodiscard]] virtual std::optional<std::string> id_to_token(std::int32_t id) const = 0;

 protected:
  Tokenizer() = default;
  Tokenizer(const Tokenizer&) = default;
  Tokenizer(Tokenizer&&) = default;
  Tokenizer& operator=(const Tokenizer&) = default;
  Tokenizer& operator=(Tokenizer&&) = default;
};

// The tokenizer of a model directory: tokenizer.json when present (HfTokenizer), else
// tokenizer.model (SentencePieceTokenizer). Neither → UserError naming the directory.
[[nodiscard]] std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir);

}  // namespace tailor::data
