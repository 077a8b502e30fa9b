// Hugging Face `tokenizer.json` tokenizers with a BPE model: the byte-level families (GPT-2,
// Llama-3, Qwen2) and the SentencePiece-style byte-fallback families (Llama-2, Mistral).
//
// The pipeline is the one of Hugging Face `tokenizers`, reproduced exactly (docs/tokenizers.md
// lists the supported components; anything else is refused at load time with a UserError naming
// the file and the component, never silently approximated):
//   added tokens with normalized=false are cut out of the raw text (leftmost, longest first) →
//   each remaining piece is normalized → added tokens with normalized=true are cut out →
//   pre-tokenizers split the rest into words → BPE merges each word (ranked merges, cached).
// Decoding maps ids to tokens (added tokens first) and runs the decoder chain.
// Loaded tokenizers are immutable; encode/decode are safe to call from several threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"

namespace tailor::data {

class HfTokenizer final : public Tokenizer {
 public:
  // Reads `path` (a tokenizer.json). bos/eos come from tokenizer_config.json beside it when there
  // is one, else from the TemplateProcessing post-processor, else from well-known token names.
  // Bad or unsupported content → UserError(path, reason).
  [[nodiscard]] static HfTokenizer load(const std::filesystem::path& path);
  // The same from JSON text; `where` names it in errors.
  [[nodiscard]] static HfTokenizer from_json(std::string_view json, const std::string& where);

  HfTokenizer(HfTokenizer&&) noexcept;
  HfTokenizer& operator=(HfTokenizer&&) noexcept;
  HfTokenizer(const HfTokenizer&) = delete;
  HfTokenizer& operator=(const HfTokenizer&) = delete;
  ~HfTokenizer() override;

  // Token ids without BOS/EOS (HF's encode(text, add_special_tokens=False)). `text` must be valid
  // UTF-8 (UserError with the byte offset otherwise).
  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text) const override;
  // HF's decode(ids, skip_special_tokens=False); unknown ids are dropped, as HF does.
  [[nodiscard]] std::string decode(const std::vector<std::int32_t>& ids) const override;
  [[nodiscard]] std::string decode(const std::vector<std::int32_t>& ids,
                                   bool skip_special_tokens) const;

  [[nodiscard]] std::int64_t vocab_size() const override;
  [[nodiscard]] std::optional<std::int32_t> bos_token_id() const override;
  [[nodiscard]] std::optional<std::int32_t> eos_token_id() const override;
  [[nodiscard]] std::optional<std::int32_t> token_to_id(std::string_view token) const override;
  [[nodiscard]] std::optional<std::string> id_to_token(std::int32_t id) const override;

  // A one-line summary of the pipeline ("BPE 128256 tokens; pre-tokenizer Split(llama3) …").
  [[nodiscard]] std::string describe() const;

 private:
  struct Impl;
  explicit HfTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tailor::data
