// Fuzz entry point for the JSONL reader: any bytes are parsed (strict and with skip_invalid), and
// every record that parses is rendered with every preset and tokenized. The only acceptable
// outcomes are success or a UserError; records must satisfy the reader's promises (valid UTF-8 in
// every field, known roles and language codes, loss flags for every token).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/flores.h"
#include "data/jsonl_dataset.h"
#include "data/template.h"
#include "data/unicode.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) throw tailor::InternalError(std::string("jsonl fuzz invariant broken: ") + what);
}

void exercise(const std::string& text, bool skip_invalid) {
  using namespace tailor::data;
  JsonlData d;
  try {
    d = parse_jsonl(text, "fuzz.jsonl", skip_invalid);
  } catch (const tailor::UserError&) {
    return;
  }
  check(!d.records.empty(), "no records without an error");
  const ByteTokenizer tok;
  for (const Record& r : d.records) {
    check(r.line >= 1, "line number");
    if (r.kind == RecordKind::kTranslation)
      check(flores_language_name(r.src_lang) && flores_language_name(r.tgt_lang), "language code");
    for (const Message& m : r.messages)
      check(m.role == "system" || m.role == "user" || m.role == "assistant", "role");
    for (ChatPreset p : kChatPresets) {
      TemplateSpec spec;
      spec.preset = p;
      const auto segs = render_record(r, spec);
      check(!unicode::find_invalid_utf8(join_segments(segs)).has_value(), "UTF-8 of the rendering");
      std::vector<std::int32_t> ids;
      std::vector<std::uint8_t> loss;
      tokenize_record(segs, p, tok, ids, loss);
      check(ids.size() == loss.size() && !ids.empty() && ids.back() == ByteTokenizer::kEos,
            "tokens, flags and EOS");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  exercise(text, false);
  exercise(text, true);
  return 0;
}
