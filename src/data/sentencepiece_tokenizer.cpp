// SentencePieceTokenizer over libsentencepiece, and load_tokenizer(), which picks the tokenizer
// file of a model directory (tokenizer.json first, as transformers' fast tokenizers do).
#include "data/sentencepiece_tokenizer.h"

#include <fmt/format.h>
#include <sentencepiece_processor.h>

#include "core/error.h"
#include "data/hf_tokenizer.h"
#include "data/unicode.h"

namespace tailor::data {

SentencePieceTokenizer::SentencePieceTokenizer(
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp, std::string where)
    : sp_(std::move(sp)), where_(std::move(where)) {}
SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer& SentencePieceTokenizer::operator=(SentencePieceTokenizer&&) noexcept =
    default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

SentencePieceTokenizer SentencePieceTokenizer::load(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw UserError(path.string(), "cannot open file");
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->Load(path.string());
  if (!status.ok())
    throw UserError(path.string(), fmt::format("not a SentencePiece model ({})", status.message()));
  return SentencePieceTokenizer(std::move(sp), path.string());
}

std::vector<std::int32_t> SentencePieceTokenizer::encode(std::string_view text) const {
  if (const auto bad = unicode::find_invalid_utf8(text))
    throw UserError("", fmt::format("text to tokenize is not valid UTF-8 (byte {})", *bad));
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok())
    throw RuntimeError(
        fmt::format("{}: SentencePiece encode failed: {}", where_, status.message()));
  return {ids.begin(), ids.end()};
}

std::string SentencePieceTokenizer::decode(const std::vector<std::int32_t>& ids) const {
  // SentencePiece rejects out-of-range ids; drop them, as the HF tokenizers do.
  const int n = sp_->GetPieceSize();
  std::vector<int> in;
  in.reserve(ids.size());
  for (std::int32_t id : ids)
    if (id >= 0 && id < n) in.push_back(id);
  std::string out;
  const auto status = sp_->Decode(in, &out);
  if (!status.ok())
    throw RuntimeError(
        fmt::format("{}: SentencePiece decode failed: {}", where_, status.message()));
  return out;
}

std::int64_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::optional<std::int32_t> SentencePieceTokenizer::bos_token_id() const {
  const int id = sp_->bos_id();
  return id >= 0 ? std::optional<std::int32_t>(id) : std::nullopt;
}

std::optional<std::int32_t> SentencePieceTokenizer::eos_token_id() const {
  const int id = sp_->eos_id();
  return id >= 0 ? std::optional<std::int32_t>(id) : std::nullopt;
}

std::optional<std::int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const int id = sp_->PieceToId(token);
  // PieceToId answers unk_id for unknown pieces; only the unk piece itself maps there.
  if (id == sp_->unk_id() && sp_->IdToPiece(id) != token) return std::nullopt;
  return id;
}

std::optional<std::string> SentencePieceTokenizer::id_to_token(std::int32_t id) const {
  if (id < 0 || id >= sp_->GetPieceSize()) return std::nullopt;
  return sp_->IdToPiece(id);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir) {
  std::error_code ec;
  const auto json_path = model_dir / "tokenizer.json";
  if (std::filesystem::is_regular_file(json_path, ec))
    return std::make_unique<HfTokenizer>(HfTokenizer::load(json_path));
  const auto model_path = model_dir / "tokenizer.model";
  if (std::filesystem::is_regular_file(model_path, ec))
    return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::load(model_path));
  throw UserError(model_dir.string(), "no tokenizer.json or tokenizer.model in this directory");
}

}  // namespace tailor::data
