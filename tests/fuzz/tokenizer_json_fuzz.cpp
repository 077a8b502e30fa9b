// Fuzz entry point for the Hugging Face tokenizer.json reader (data/hf_tokenizer.h): any bytes as
// a tokenizer.json. It is either refused with a UserError or yields a tokenizer that encodes and
// decodes a few texts (ASCII, accents, CJK, emoji, digits, whitespace runs) without failing, with
// every id inside its vocabulary.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "data/hf_tokenizer.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tailor::data::HfTokenizer;
  std::optional<HfTokenizer> tok;
  try {
    tok.emplace(HfTokenizer::from_json(tailor::fuzz::as_text(data, size), "fuzz/tokenizer.json"));
  } catch (const tailor::UserError&) {
    return 0;
  }
  for (const char* text : {"Hello, world!", "  two  spaces\n\nand 12345 digits",
                           "na\xc3\xafve caf\xc3\xa9", "\xe4\xb8\xad\xe6\x96\x87",
                           "\xf0\x9f\x98\x80 emoji", ""}) {
    std::vector<std::int32_t> ids;
    try {
      ids = tok->encode(text);
    } catch (const tailor::UserError&) {
      continue;  // e.g. a byte the vocabulary cannot represent, reported with its offset
    }
    for (const std::int32_t id : ids)
      if (id < 0 || id >= tok->vocab_size()) throw std::logic_error("tokenizer fuzz: id out of range");
    (void)tok->decode(ids);
  }
  return 0;
}
