#include "core/json_reader.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tailor {

using nlohmann::json;

namespace {

}  // namespace

std::string json_error_reason(const json::exception& e) {
  std::string s = e.what();
  if (s.rfind("[json.exception.", 0) == 0) {
    const std::size_t end = s.find("] ");
    if (end != std::string::npos) s = s.substr(end + 2);
  }
  return s;
}

namespace {

// A short rendering of a value for messages.
std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

const char* type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

}  // namespace

json parse_json_text(std::string_view text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    const std::size_t at = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < at; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw UserError(where, fmt::format("malformed JSON at line {}, column {}", line, col));
  } catch (const json::exception& e) {  // e.g. "number overflow parsing '1e999'"
    throw UserError(where, "malformed JSON: " + json_error_reason(e));
  }
}

json read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UserError(path, "cannot read");
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw UserError(path, "cannot read");
  return parse_json_text(ss.str(), path);
}

void JsonValue::fail(const std::string& reason) const {
  throw UserError(where_, path_.empty() ? reason : path_ + ": " + reason);
}

std::string JsonValue::child(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void JsonValue::expect_object() const {
  if (!v_->is_object()) fail(fmt::format("expected an object, got {}", shown(*v_)));
}

bool JsonValue::has(std::string_view key) const {
  expect_object();
  const auto it = v_->find(key);
  return it != v_->end() && !it->is_null();
}

std::optional<JsonValue> JsonValue::find(std::string_view key) const {
  expect_object();
  const auto it = v_->find(key);
  if (it == v_->end() || it->is_null()) return std::nullopt;
  return JsonValue(*it, where_, child(key));
}

JsonValue JsonValue::at(std::string_view key) const {
  expect_object();
  const auto it = v_->find(key);
  if (it == v_->end()) throw UserError(where_, child(key) + ": missing");
  return JsonValue(*it, where_, child(key));
}

std::vector<JsonValue> JsonValue::elements() const {
  if (!v_->is_array()) fail(fmt::format("expected an array, got {}", shown(*v_)));
  std::vector<JsonValue> out;
  for (std::size_t i = 0; i < v_->size(); ++i)
    out.emplace_back((*v_)[i], where_, fmt::format("{}[{}]", path_, i));
  return out;
}

std::vector<std::pair<std::string, JsonValue>> JsonValue::members() const {
  expect_object();
  std::vector<std::pair<std::string, JsonValue>> out;
  for (auto it = v_->begin(); it != v_->end(); ++it)
    out.emplace_back(it.key(), JsonValue(it.value(), where_, child(it.key())));
  return out;
}

std::int64_t JsonValue::integer(std::int64_t min, std::int64_t max) const {
  if (!v_->is_number_integer()) fail(fmt::format("expected an integer, got {}", shown(*v_)));
  if (v_->is_number_unsigned() &&
      v_->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    fail(fmt::format("{} is out of range [{}, {}]", shown(*v_), min, max));
  const std::int64_t x = v_->get<std::int64_t>();
  if (x < min || x > max) fail(fmt::format("{} is out of range [{}, {}]", x, min, max));
  return x;
}

std::uint64_t JsonValue::unsigned_integer(std::uint64_t max) const {
  if (!v_->is_number_integer()) fail(fmt::format("expected an integer, got {}", shown(*v_)));
  if (!v_->is_number_unsigned() && v_->get<std::int64_t>() < 0)
    fail(fmt::format("{} is out of range [0, {}]", shown(*v_), max));
  const std::uint64_t x = v_->get<std::uint64_t>();
  if (x > max) fail(fmt::format("{} is out of range [0, {}]", x, max));
  return x;
}

double JsonValue::number() const {
  if (!v_->is_number()) fail(fmt::format("expected a number, got {}", shown(*v_)));
  return v_->get<double>();
}

bool JsonValue::boolean() const {
  if (!v_->is_boolean()) fail(fmt::format("expected true or false, got {}", shown(*v_)));
  return v_->get<bool>();
}

std::string JsonValue::string() const {
  if (!v_->is_string()) fail(fmt::format("expected a string, got {} ({})", shown(*v_), type_name(*v_)));
  return v_->get<std::string>();
}

std::int64_t JsonValue::integer_or(std::string_view key, std::int64_t fallback, std::int64_t min,
                                   std::int64_t max) const {
  const auto v = find(key);
  return v ? v->integer(min, max) : fallback;
}

bool JsonValue::boolean_or(std::string_view key, bool fallback) const {
  const auto v = find(key);
  return v ? v->boolean() : fallback;
}

std::string JsonValue::string_or(std::string_view key, const std::string& fallback) const {
  const auto v = find(key);
  return v ? v->string() : fallback;
}

}  // namespace tailor
