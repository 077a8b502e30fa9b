// JSONL reading: split into lines, check each, turn each into a Record or a per-line problem.
#include "data/jsonl_dataset.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/flores.h"
#include "data/unicode.h"

namespace tailor::data {
namespace {

using nlohmann::json;

// A bad line: `kind` groups lines for the skip report, `reason` is the full message.
struct LineProblem {
  std::string kind;
  std::string reason;
};

[[noreturn]] void bad(std::string kind, std::string reason) {
  throw LineProblem{std::move(kind), std::move(reason)};
}

const char* type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

// A required string field; `path` names it in messages ("prompt", "messages[1].content").
std::string string_field(const json& obj, const char* key, const std::string& path,
                         bool allow_empty = false) {
  const auto it = obj.find(key);
  if (it == obj.end()) bad("missing field", fmt::format("missing field \"{}\"", path));
  if (!it->is_string())
    bad("wrong type", fmt::format("field \"{}\" must be a string, got {}", path, type_name(*it)));
  std::string s = it->get<std::string>();
  if (!allow_empty && s.empty()) bad("empty field", fmt::format("field \"{}\" is empty", path));
  return s;
}

std::string language_field(const json& obj, const char* key) {
  std::string code = string_field(obj, key, key);
  if (!flores_language_name(code))
    bad("unknown language code",
        fmt::format("unknown language code \"{}\" in \"{}\" (expected a FLORES-200 code such as "
                    "eng_Latn or deu_Latn)",
                    code, key));
  return code;
}

// A list of chat messages (`key` names it in messages), each with a known role; only an
// assistant message may have empty content.
std::vector<Message> message_list(const json& msgs, const std::string& key) {
  if (!msgs.is_array())
    bad("wrong type", fmt::format("field \"{}\" must be an array, got {}", key, type_name(msgs)));
  if (msgs.empty()) bad("empty field", fmt::format("field \"{}\" is empty", key));
  std::vector<Message> out;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const std::string path = fmt::format("{}[{}]", key, i);
    if (!msgs[i].is_object())
      bad("wrong type", fmt::format("{} must be an object with \"role\" and \"content\", got {}",
                                    path, type_name(msgs[i])));
    Message m;
    m.role = string_field(msgs[i], "role", path + ".role");
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      bad("unknown role", fmt::format("{}.role: unknown role \"{}\" (expected system, user or "
                                      "assistant)",
                                      path, m.role));
    m.content = string_field(msgs[i], "content", path + ".content", m.role != "assistant");
    out.push_back(std::move(m));
  }
  return out;
}

// A preference answer: a non-empty string, or a list of one assistant message (TRL's
// conversational form).
std::string answer_field(const json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end()) bad("missing field", fmt::format("missing field \"{}\"", key));
  if (it->is_string()) return string_field(obj, key, key);
  if (!it->is_array())
    bad("wrong type", fmt::format("field \"{}\" must be a string or a list of one assistant "
                                  "message, got {}",
                                  key, type_name(*it)));
  std::vector<Message> msgs = message_list(*it, key);
  if (msgs.size() != 1 || msgs[0].role != "assistant")
    bad("wrong type", fmt::format("field \"{}\" must hold exactly one assistant message, got {} "
                                  "message{}{}",
                                  key, msgs.size(), msgs.size() == 1 ? "" : "s",
                                  msgs.size() == 1 ? " of role " + msgs[0].role : ""));
  if (msgs[0].content.empty()) bad("empty field", fmt::format("field \"{}[0].content\" is empty", key));
  return std::move(msgs[0].content);
}

void parse_preference(const json& j, Record& r) {
  r.kind = RecordKind::kPreference;
  const bool has_prompt = j.contains("prompt"), has_messages = j.contains("messages");
  if (has_prompt && has_messages)
    bad("ambiguous prompt", "give the prompt as \"prompt\" or as \"messages\", not both");
  if (!has_prompt && !has_messages)
    bad("missing field", "missing field \"prompt\" (or \"messages\") of a preference pair");
  const char* key = has_prompt ? "prompt" : "messages";
  const json& p = j[key];
  if (p.is_string()) {
    r.prompt = p.get<std::string>();  // may be empty: the answers alone
  } else if (p.is_array()) {
    r.messages = message_list(p, key);
    if (r.messages.back().role == "assistant")
      bad("wrong type", fmt::format("field \"{}\": the prompt's last message is the assistant's; "
                                    "it must end with the turn the answers reply to",
                                    key));
  } else {
    bad("wrong type", fmt::format("field \"{}\" must be a string or a list of messages, got {}",
                                  key, type_name(p)));
  }
  r.chosen = answer_field(j, "chosen");
  r.rejected = answer_field(j, "rejected");
}

Record parse_record(const json& j) {
  if (!j.is_object())
    bad("not an object", fmt::format("expected a JSON object, got {}", type_name(j)));
  Record r;
  if (j.contains("chosen") || j.contains("rejected")) {
    parse_preference(j, r);
  } else if (j.contains("messages")) {
    r.kind = RecordKind::kChat;
    r.messages = message_list(j["messages"], "messages");
    bool any_assistant = false;
    for (const Message& m : r.messages) any_assistant = any_assistant || m.role == "assistant";
    if (!any_assistant)
      bad("no assistant message", "no assistant message in \"messages\" (nothing to train on)");
  } else if (j.contains("src") || j.contains("tgt") || j.contains("src_lang") ||
             j.contains("tgt_lang")) {
    r.kind = RecordKind::kTranslation;
    r.src = string_field(j, "src", "src");
    r.tgt = string_field(j, "tgt", "tgt");
    r.src_lang = language_field(j, "src_lang");
    r.tgt_lang = language_field(j, "tgt_lang");
  } else if (j.contains("prompt") || j.contains("completion")) {
    r.kind = RecordKind::kPromptCompletion;
    r.prompt = string_field(j, "prompt", "prompt", /*allow_empty=*/true);
    r.completion = string_field(j, "completion", "completion");
    if (j.contains("rationale")) r.rationale = string_field(j, "rationale", "rationale");
  } else if (j.contains("text")) {
    r.kind = RecordKind::kText;
    r.text = string_field(j, "text", "text");
  } else {
    bad("unknown record kind",
        "no known fields: expected \"text\", \"prompt\"/\"completion\", \"messages\", "
        "\"src\"/\"tgt\"/\"src_lang\"/\"tgt_lang\" or \"prompt\"/\"chosen\"/\"rejected\"");
  }
  return r;
}

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

std::int64_t JsonlData::skipped_total() const {
  std::int64_t n = 0;
  for (const auto& [kind, count] : skipped) n += count;
  return n;
}

namespace {

// What one line turned into: a record, a problem, or nothing (a blank line).
struct LineResult {
  std::optional<Record> record;
  std::optional<LineProblem> problem;
};

LineResult parse_line(std::string_view line, std::int64_t line_no, bool last_unterminated) {
  LineResult out;
  try {
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF"))
      bad("byte order mark", "the file starts with a UTF-8 byte order mark (BOM); save it "
                             "without one");
    if (const auto off = unicode::find_invalid_utf8(line))
      bad("invalid UTF-8",
          fmt::format("invalid UTF-8 (byte 0x{:02x} at column {})",
                      static_cast<unsigned>(static_cast<unsigned char>(line[*off])), *off + 1));
    if (is_blank(line)) return out;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      if (last_unterminated)
        bad("truncated last line", "truncated last line (no newline at the end and not valid JSON)");
      bad("malformed JSON", fmt::format("malformed JSON at column {}", e.byte));
    } catch (const json::exception&) {  // e.g. a number too large for a double
      bad("malformed JSON", "malformed JSON: a number is out of range");
    }
    out.record = parse_record(j);
    out.record->line = line_no;
  } catch (const LineProblem& p) {
    out.problem = p;
  }
  return out;
}

}  // namespace

namespace {

// Bad lines listed one per line, as the config lists its problems; the rest are counted.
constexpr std::size_t kMaxReportedLines = 20;

}  // namespace

JsonlData parse_jsonl(const std::string& text, const std::string& name, bool skip_invalid,
                      int threads, std::atomic<std::int64_t>* bytes_parsed,
                      std::atomic<std::int64_t>* records_parsed) {
  // Line boundaries first, then the lines are parsed in parallel blocks; results are merged in
  // line order, so the first bad line reported and the records are the same for any thread count.
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t nl = text.find('\n', pos);
    const std::size_t end = nl == std::string::npos ? text.size() : nl;
    lines.emplace_back(text.data() + pos, end - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
  }
  const bool last_unterminated = !text.empty() && text.back() != '\n';
  std::vector<LineResult> results(lines.size());
  const auto work = [&](std::size_t b, std::size_t e) {
    // Bytes and records not yet added to the counters (added every 256 lines).
    std::int64_t pending = 0, pending_records = 0;
    for (std::size_t i = b; i < e; ++i) {
      const bool last = last_unterminated && i + 1 == lines.size();
      results[i] = parse_line(lines[i], static_cast<std::int64_t>(i) + 1, last);
      pending += static_cast<std::int64_t>(lines[i].size()) + (last ? 0 : 1);
      pending_records += results[i].record ? 1 : 0;
      if ((i - b) % 256 == 255 || i + 1 == e) {
        if (bytes_parsed != nullptr) bytes_parsed->fetch_add(pending, std::memory_order_relaxed);
        if (records_parsed != nullptr)
          records_parsed->fetch_add(pending_records, std::memory_order_relaxed);
        pending = pending_records = 0;
      }
    }
  };
  const auto t = static_cast<std::size_t>(std::max(1, threads));
  if (t == 1 || lines.size() < 256) {
    work(0, lines.size());
  } else {
    std::vector<std::thread> pool;  // parse_line catches everything it expects; nothing escapes
    for (std::size_t k = 0; k < t; ++k)
      pool.emplace_back(work, lines.size() * k / t, lines.size() * (k + 1) / t);
    for (auto& th : pool) th.join();
  }
  JsonlData out;
  std::vector<std::string> bad;  // the first kMaxReportedLines bad lines, as messages
  std::size_t first_bad = 0;     // its index in `results`
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].problem) {
      if (bad.empty()) first_bad = i;
      if (bad.size() < kMaxReportedLines)
        bad.push_back(fmt::format("{}:{}: {}", name, i + 1, results[i].problem->reason));
      ++out.skipped[results[i].problem->kind];
    } else if (results[i].record) {
      out.records.push_back(std::move(*results[i].record));
    }
  }
  if (!skip_invalid && !bad.empty()) {
    const std::int64_t n_bad = out.skipped_total();
    if (n_bad == 1)
      throw UserError(fmt::format("{}:{}", name, first_bad + 1), results[first_bad].problem->reason);
    if (n_bad > static_cast<std::int64_t>(bad.size()))
      bad.push_back(fmt::format("{}: {} more bad lines not listed ({} of {} lines are bad; "
                                "data.skip_invalid: true leaves them out)",
                                name, n_bad - static_cast<std::int64_t>(bad.size()), n_bad,
                                results.size()));
    throw UserErrors(std::move(bad));
  }
  if (out.records.empty()) {
    if (out.skipped.empty()) throw_user_error(name + ":1", "no records (the file is empty)");
    throw_user_error(name + ":1", "no valid records ({} lines skipped as invalid)",
                     out.skipped_total());
  }
  return out;
}

std::string read_data_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_user_error(path, "cannot read: {}", std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw_user_error(path, "read failed: {}", std::strerror(errno));
  return ss.str();
}

JsonlData load_jsonl(const std::string& path, bool skip_invalid, int threads) {
  return parse_jsonl(read_data_file(path), path, skip_invalid, threads);
}

}  // namespace tailor::data
