// JSONL datasets: one JSON object per line, of one of four kinds detected per line by its keys
// (ARCHITECTURE.md, Contracts: data formats):
//     {"text": ...}                                             plain text, all of it trained on
//     {"prompt": ..., "completion": ..., "rationale"?: ...}     the rationale goes before the answer
//     {"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}
//     {"src": ..., "tgt": ..., "src_lang": "eng_Latn", "tgt_lang": "deu_Latn"}   FLORES-200 codes
//     {"prompt": ..., "chosen": ..., "rejected": ...}           a preference pair (TRL's layout)
// A preference pair's prompt is a string (may be empty) or a list of messages, given as "prompt"
// or "messages" (the conversational form); each answer is a non-empty string or a list of one
// assistant message ([{"role": "assistant", "content": ...}], as TRL writes them).
// Every bad line is a `file:line: reason` UserError, checked before anything is tokenized: invalid
// UTF-8, a byte order mark, malformed JSON, a truncated last line, a non-object, missing,
// mistyped or empty fields, an unknown role or language code. With skip_invalid, bad lines are
// left out instead and counted per reason (Invalid::kind) for the caller to report.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tailor::data {

enum class RecordKind { kText, kPromptCompletion, kChat, kTranslation, kPreference };

struct Message {
  std::string role;  // system | user | assistant
  std::string content;
};

struct Record {
  RecordKind kind = RecordKind::kText;
  std::int64_t line = 0;  // 1-based line in its file
  std::string text;                               // kText
  std::string prompt, completion, rationale;      // kPromptCompletion (rationale may be empty)
  std::vector<Message> messages;                  // kChat
  std::string src, tgt, src_lang, tgt_lang;       // kTranslation
  // kPreference: the prompt is `prompt` or, in the conversational form, `messages` (non-empty);
  // the two answers follow it as the assistant's reply.
  std::string chosen, rejected;
};

struct JsonlData {
  std::vector<Record> records;
  // Lines left out under skip_invalid, by reason kind ("malformed JSON", "unknown role", ...).
  std::map<std::string, std::int64_t> skipped;
  std::int64_t skipped_total() const;
};

// Parses JSONL text already in memory (`threads` at a time; the result does not depend on it);
// `name` stands for the file in messages. Without skip_invalid, bad lines are a UserError (one
// bad line) or UserErrors listing each (`name:LINE: reason`, the first 20, then a count). No valid
// record at all is a UserError even with skip_invalid.
// `bytes_parsed`, when given, advances by each line's bytes as it is parsed, and
// `records_parsed` by each record found (progress counters another thread may read).
[[nodiscard]] JsonlData parse_jsonl(const std::string& text, const std::string& name,
                                    bool skip_invalid, int threads = 1,
                                    std::atomic<std::int64_t>* bytes_parsed = nullptr,
                                    std::atomic<std::int64_t>* records_parsed = nullptr);
[[nodiscard]] JsonlData load_jsonl(const std::string& path, bool skip_invalid, int threads = 1);

// Reads a whole file (UserError `path: cannot read: ...`).
[[nodiscard]] std::string read_data_file(const std::string& path);

}  // namespace tailor::data
