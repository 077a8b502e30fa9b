// Checked reading of JSON files that come from outside (checkpoint manifests, tokenizer.json,
// adapter_config.json, metrics.jsonl, cache manifests): every problem — malformed text, a number
// out of range such as 1e999, a missing key, a value of the wrong type or out of its range — is a
// UserError naming the file and the key path ("dir/manifest.json: optimizer.steps: expected an
// integer, got "x""), never one of nlohmann's exceptions (which the CLI would report as an
// internal error).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tailor {

// Parses `text`; `where` names its origin ("path", or "path:line" for a JSONL line).
// UserError "where: malformed JSON at line L, column C" or "where: malformed JSON: <why>".
[[nodiscard]] nlohmann::json parse_json_text(std::string_view text, const std::string& where);
// nlohmann's explanation of an exception without its "[json.exception...]" prefix, for parsers
// that need nlohmann's own entry points (a SAX callback).
[[nodiscard]] std::string json_error_reason(const nlohmann::json::exception& e);
// Reads and parses the file at `path`. UserError "path: cannot read" when it cannot be read.
[[nodiscard]] nlohmann::json read_json_file(const std::string& path);

// A value inside a parsed document with its place for messages: the file (`where`) and the key
// path inside it ("optimizer.steps", "files[2].name"). Holds a reference: the document must
// outlive it.
class JsonValue {
 public:
  JsonValue(const nlohmann::json& value, std::string where, std::string path = "")
      : v_(&value), where_(std::move(where)), path_(std::move(path)) {}

  [[nodiscard]] const nlohmann::json& raw() const noexcept { return *v_; }
  [[nodiscard]] const std::string& where() const noexcept { return where_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[noreturn]] void fail(const std::string& reason) const;

  // Members of an object (this value must be one).
  [[nodiscard]] bool has(std::string_view key) const;  // present and not null
  [[nodiscard]] JsonValue at(std::string_view key) const;                  // required
  [[nodiscard]] std::optional<JsonValue> find(std::string_view key) const;  // absent or null: none
  // Elements of an array (this value must be one).
  [[nodiscard]] std::vector<JsonValue> elements() const;
  // Members of an object, in the document's order.
  [[nodiscard]] std::vector<std::pair<std::string, JsonValue>> members() const;

  // This value, of the type asked for; integers within [min, max].
  [[nodiscard]] std::int64_t integer(
      std::int64_t min = std::numeric_limits<std::int64_t>::min(),
      std::int64_t max = std::numeric_limits<std::int64_t>::max()) const;
  [[nodiscard]] std::uint64_t unsigned_integer(
      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) const;
  [[nodiscard]] double number() const;  // any JSON number (finite by construction)
  [[nodiscard]] bool boolean() const;
  [[nodiscard]] std::string string() const;
  void expect_object() const;

  // Optional members with a fallback when absent or null.
  [[nodiscard]] std::int64_t integer_or(std::string_view key, std::int64_t fallback,
                                        std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                                        std::int64_t max =
                                            std::numeric_limits<std::int64_t>::max()) const;
  [[nodiscard]] bool boolean_or(std::string_view key, bool fallback) const;
  [[nodiscard]] std::string string_or(std::string_view key, const std::string& fallback) const;

 private:
  [[nodiscard]] std::string child(std::string_view key) const;
  const nlohmann::json* v_;
  std::string where_, path_;
};

}  // namespace tailor
