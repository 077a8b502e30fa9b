#include "eval/generation_prompt.h"

#include <algorithm>
#include <fstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tailor::eval {
namespace {

using nlohmann::json;

std::string string_field(const json& obj, const char* key, const std::string& where,
                         bool required = true) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) throw_user_error(where, "missing field \"{}\"", key);
    return {};
  }
  if (!it->is_string()) throw_user_error(where, "field \"{}\" must be a string", key);
  return it->get<std::string>();
}

data::Record parse_chat(const json& msgs, const std::string& where) {
  if (!msgs.is_array() || msgs.empty())
    throw_user_error(where, "field \"messages\" must be a non-empty array");
  data::Record r;
  r.kind = data::RecordKind::kChat;
  for (const json& m : msgs) {
    if (!m.is_object()) throw_user_error(where, "every message must be an object");
    data::Message msg{string_field(m, "role", where), string_field(m, "content", where)};
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      throw_user_error(where, "unknown role \"{}\" (expected system, user or assistant)", msg.role);
    r.messages.push_back(std::move(msg));
  }
  return r;
}

// A preference pair: its prompt (a string, or messages under "prompt" or "messages") and its
// chosen answer (a string or one assistant message), the reference a generation is scored
// against.
data::Record parse_pair(const json& j, const std::string& where) {
  data::Record r;
  r.kind = data::RecordKind::kPreference;
  const json* prompt = j.contains("prompt") ? &j["prompt"] : j.contains("messages") ? &j["messages"] : nullptr;
  if (prompt == nullptr) throw_user_error(where, "missing field \"prompt\" of a preference pair");
  if (prompt->is_string()) r.prompt = prompt->get<std::string>();
  else r.messages = parse_chat(*prompt, where).messages;
  const json& chosen = j["chosen"];
  if (chosen.is_string()) r.chosen = chosen.get<std::string>();
  else if (chosen.is_array() && chosen.size() == 1 && chosen[0].is_object())
    r.chosen = string_field(chosen[0], "content", where);
  else throw_user_error(where, "field \"chosen\" must be a string or one assistant message");
  return r;
}

data::Record parse_record(const json& j, const std::string& where) {
  if (!j.is_object()) throw_user_error(where, "expected a JSON object");
  if (j.contains("chosen")) return parse_pair(j, where);
  if (j.contains("messages")) return parse_chat(j["messages"], where);
  data::Record r;
  if (j.contains("src")) {
    r.kind = data::RecordKind::kTranslation;
    r.src = string_field(j, "src", where);
    r.src_lang = string_field(j, "src_lang", where);
    r.tgt_lang = string_field(j, "tgt_lang", where);
    r.tgt = string_field(j, "tgt", where, /*required=*/false);
  } else if (j.contains("prompt")) {
    r.kind = data::RecordKind::kPromptCompletion;
    r.prompt = string_field(j, "prompt", where);
    r.completion = string_field(j, "completion", where, /*required=*/false);
    if (j.contains("rationale")) r.rationale = string_field(j, "rationale", where);
  } else if (j.contains("text")) {
    r.kind = data::RecordKind::kText;
    r.text = string_field(j, "text", where);
  } else {
    throw_user_error(where, "expected a \"prompt\", \"messages\", \"src\" or \"text\" field");
  }
  return r;
}

// Stands for the response while a template renders: the prompt is the text before it.
constexpr std::string_view kResponseMark = "\x01tailor-response\x01";

// The record with kResponseMark as its answer, and the answer it had.
data::Record with_marked_answer(const data::Record& r, std::optional<std::string>& reference) {
  data::Record q = r;
  const std::string mark(kResponseMark);
  switch (r.kind) {
    case data::RecordKind::kPromptCompletion:
      if (!r.completion.empty()) reference = r.completion;
      q.completion = mark;
      q.rationale.clear();
      break;
    case data::RecordKind::kTranslation:
      if (!r.tgt.empty()) reference = r.tgt;
      q.tgt = mark;
      break;
    case data::RecordKind::kChat:
      if (!q.messages.empty() && q.messages.back().role == "assistant") {
        reference = q.messages.back().content;
        q.messages.pop_back();
      }
      q.messages.push_back({"assistant", mark});  // the turn the model writes
      break;
    case data::RecordKind::kPreference:  // the chosen answer is the reference
      reference = r.chosen;
      q = data::preference_answer(r, mark);
      break;
    case data::RecordKind::kText:
      break;
  }
  return q;
}

std::string own_prompt(const data::Record& r) {
  switch (r.kind) {
    case data::RecordKind::kPromptCompletion:
      return r.prompt;
    case data::RecordKind::kTranslation:
      return r.src;
    case data::RecordKind::kText:
      return r.text;
    case data::RecordKind::kPreference:
      if (r.messages.empty()) return r.prompt;
      break;
    case data::RecordKind::kChat:
      break;
  }
  for (auto it = r.messages.rbegin(); it != r.messages.rend(); ++it)
    if (it->role == "user") return it->content;
  return {};
}

// Everything the template renders before the response.
std::string rendered_prompt(const data::Record& marked, const data::TemplateSpec& spec) {
  const std::string text = data::join_segments(data::render_record(marked, spec));
  const std::size_t at = text.rfind(kResponseMark);
  TAILOR_ASSERT(at != std::string::npos, "the template dropped the response");
  return text.substr(0, at);
}

}  // namespace

std::vector<data::Record> read_generation_records(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw_user_error(path, "cannot read the file");
  std::vector<data::Record> out;
  std::string line;
  for (std::int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw_user_error(where, "not valid JSON (or not UTF-8)");
    out.push_back(parse_record(j, where));
    out.back().line = n;
  }
  if (out.empty()) throw_user_error(path, "no records");
  return out;
}

GenerationPrompt generation_prompt(const data::Record& record, const data::TemplateSpec& spec,
                                   const data::Tokenizer& tokenizer) {
  GenerationPrompt p;
  p.prompt = own_prompt(record);
  p.reasoned = record.kind == data::RecordKind::kPromptCompletion && !record.rationale.empty();
  data::TemplateSpec s = spec;
  s.train_on_prompt = false;
  const data::Record q = with_marked_answer(record, p.reference);
  const bool plain = q.kind == data::RecordKind::kText || s.chat_format().tokenizer_bos;
  if (plain)
    if (const auto bos = tokenizer.bos_token_id()) p.ids.push_back(*bos);
  const std::string text = q.kind == data::RecordKind::kText ? q.text : rendered_prompt(q, s);
  const std::vector<std::int32_t> ids = tokenizer.encode(text);
  p.ids.insert(p.ids.end(), ids.begin(), ids.end());
  return p;
}

std::string final_answer(const GenerationPrompt& prompt, const std::string& text) {
  if (!prompt.reasoned) return text;
  const std::size_t end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return text;
  const std::size_t nl = text.rfind('\n', end);
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

std::vector<std::int32_t> response_end_ids(const data::ChatFormat& format,
                                           const data::Tokenizer& tokenizer) {
  std::vector<std::int32_t> ids;
  if (const auto eos = tokenizer.eos_token_id()) ids.push_back(*eos);
  for (const std::string& special : format.special_tokens) {
    const bool ends_turn = format.assistant.suffix.find(special) != std::string::npos ||
                           format.assistant_final_suffix.find(special) != std::string::npos ||
                           format.end.find(special) != std::string::npos;
    if (!ends_turn) continue;
    if (const auto id = tokenizer.token_to_id(special);
        id && std::find(ids.begin(), ids.end(), *id) == ids.end())
      ids.push_back(*id);
  }
  return ids;
}

std::vector<std::int32_t> response_end_ids(data::ChatPreset preset,
                                           const data::Tokenizer& tokenizer) {
  return response_end_ids(data::builtin_chat_format(preset), tokenizer);
}

}  // namespace tailor::eval
