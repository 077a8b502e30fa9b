// Records as generation prompts, rendered with the prompt templates of training (data/template.h)
// so that a model is prompted the way it was fine-tuned.
//
// Input records (JSONL, one object per line; the answer fields are optional here, unlike in
// training data, and become the record's reference when present):
//     {"prompt": ..., "completion"?: ...}
//     {"messages": [{"role": ..., "content": ...}, ...]}   a trailing assistant turn is the
//                                                          reference; the model writes that turn
//     {"src": ..., "src_lang": ..., "tgt_lang": ..., "tgt"?: ...}
//     {"text": ...}                                         continued as it is, no template
// The prompt is everything the template renders before the response: e.g. with chatml,
// "<|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n"; with plain, the prompt text. It is
// tokenized as training tokenizes records (the tokenizer's BOS first for plain and text records;
// the other presets spell their own).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/jsonl_dataset.h"
#include "data/template.h"
#include "data/tokenizer.h"

namespace tailor::eval {

struct GenerationPrompt {
  std::vector<std::int32_t> ids;         // what the model reads
  std::string prompt;                    // the record's own prompt (user turn, source sentence)
  std::optional<std::string> reference;  // the answer the record carries, if any
  // The record carries a rationale (chain of thought): the model writes its reasoning, a
  // newline, then the answer (data.md), and the answer alone is scored (final_answer).
  bool reasoned = false;
};

// What of generated `text` is scored against the reference: for a reasoned prompt its last
// non-blank line (the answer after the chain of thought; all of it when there is one line),
// else the text itself.
[[nodiscard]] std::string final_answer(const GenerationPrompt& prompt, const std::string& text);

// Reads generation records; every bad line is a UserError `path:line: reason`, and a file with
// no record is one too.
[[nodiscard]] std::vector<data::Record> read_generation_records(const std::string& path);

[[nodiscard]] GenerationPrompt generation_prompt(const data::Record& record,
                                                 const data::TemplateSpec& spec,
                                                 const data::Tokenizer& tokenizer);

// The ids that end a response under a chat format: the tokenizer's EOS and every special token of
// the format that closes an assistant turn or the conversation (in its suffix, final suffix or
// end: <|eot_id|>, <|im_end|>, </s>, <|end|>, <end_of_turn>) when the tokenizer knows it.
[[nodiscard]] std::vector<std::int32_t> response_end_ids(const data::ChatFormat& format,
                                                         const data::Tokenizer& tokenizer);
[[nodiscard]] std::vector<std::int32_t> response_end_ids(data::ChatPreset preset,
                                                         const data::Tokenizer& tokenizer);

}  // namespace tailor::eval
