// Header parsing as a SAX state machine over nlohmann's tokenizer: no JSON DOM is built, so
// neither a deep nesting, a long array nor millions of keys can make the parser slow or large
// before it says no. Each tensor entry is checked as soon as its closing brace is read (errors come
// in file order); the overlap check runs once all entries are known.
#include "checkpoint/safetensors_header.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tailor::checkpoint {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";
constexpr std::uint64_t kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

constexpr std::array<SafetensorsDType, 20> kDTypes{{
    {"F32", 32, DType::kF32},  {"F16", 16, DType::kF16},  {"BF16", 16, DType::kBF16},
    {"F64", 64, std::nullopt}, {"I64", 64, std::nullopt}, {"U64", 64, std::nullopt},
    {"I32", 32, std::nullopt}, {"U32", 32, std::nullopt}, {"I16", 16, std::nullopt},
    {"U16", 16, std::nullopt}, {"I8", 8, std::nullopt},   {"U8", 8, std::nullopt},
    {"BOOL", 8, std::nullopt}, {"F8_E5M2", 8, std::nullopt}, {"F8_E4M3", 8, std::nullopt},
    {"F8_E8M0", 8, std::nullopt}, {"C64", 64, std::nullopt}, {"F6_E2M3", 6, std::nullopt},
    {"F6_E3M2", 6, std::nullopt}, {"F4", 4, std::nullopt},
}};

// Length of the valid UTF-8 sequence at text[i] and its code point; length 0 when invalid.
std::size_t utf8_sequence(std::string_view text, std::size_t i, std::uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  std::size_t n = 0;
  if (b0 < 0x80) { cp = b0; return 1; }
  if ((b0 & 0xE0) == 0xC0) { n = 2; cp = b0 & 0x1Fu; }
  else if ((b0 & 0xF0) == 0xE0) { n = 3; cp = b0 & 0x0Fu; }
  else if ((b0 & 0xF8) == 0xF0) { n = 4; cp = b0 & 0x07u; }
  else return 0;
  if (i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  static constexpr std::array<std::uint32_t, 5> kMin{0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_control(std::uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

std::string u64_shape_string(const std::vector<std::uint64_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

// a * b, or false when it exceeds `limit`.
bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t limit, std::uint64_t& out) {
  if (a != 0 && b > limit / a) return false;
  out = a * b;
  return out <= limit;
}

// The entry of one tensor while its JSON object is being read.
struct Draft {
  bool has_dtype = false, has_shape = false, has_offsets = false;
  std::string dtype;
  std::vector<std::uint64_t> dims;
  std::vector<std::uint64_t> offsets;
};

// Depth counts open containers: 1 inside the root object, 2 inside a tensor entry or
// `__metadata__`, 3 inside `shape` / `data_offsets`. Nothing deeper is valid.
class HeaderSax final : public nlohmann::json_sax<Json> {
 public:
  HeaderSax(const std::string& where, SafetensorsHeader& out) : where_(where), out_(out) {}

  bool null() override { return scalar(Kind::kNull); }
  bool boolean(bool) override { return scalar(Kind::kOther); }
  bool number_integer(number_integer_t v) override {
    if (v < 0) return scalar(Kind::kOther);
    return scalar(Kind::kUnsigned, static_cast<std::uint64_t>(v));
  }
  bool number_unsigned(number_unsigned_t v) override { return scalar(Kind::kUnsigned, v); }
  bool number_float(number_float_t, const string_t&) override { return scalar(Kind::kOther); }
  bool string(string_t& s) override { return scalar(Kind::kString, 0, &s); }
  bool binary(binary_t&) override { return scalar(Kind::kOther); }
  bool start_object(std::size_t) override { return start(true); }
  bool start_array(std::size_t) override { return start(false); }
  bool end_object() override { return end(); }
  bool end_array() override { return end(); }
  bool key(string_t& k) override;
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) override {
    fail_header(fmt::format("not valid JSON (error at byte {})", position));
  }

 private:
  enum class Kind { kNull, kUnsigned, kString, kOther };

  bool scalar(Kind kind, std::uint64_t value = 0, string_t* text = nullptr);
  bool start(bool is_object);
  bool end();
  void finish_tensor();

  [[nodiscard]] bool in_metadata() const { return key1_ == kMetadataKey; }
  [[noreturn]] void fail_header(const std::string& reason) const {
    throw UserError(where_, "header: " + reason);
  }
  [[noreturn]] void fail_tensor(const std::string& reason) const {
    throw UserError(where_, fmt::format("tensor '{}': {}", printable_name(key1_), reason));
  }
  // A value of the wrong JSON type under field key2_ of a tensor entry.
  [[noreturn]] void field_type_error() const {
    if (key2_ == "dtype") fail_tensor("dtype must be a string");
    if (key2_ == "shape") fail_tensor("shape must be a list of non-negative integers");
    fail_tensor("data_offsets must be two non-negative integers [begin, end]");
  }
  [[noreturn]] void metadata_value_error() const {
    fail_header(fmt::format("__metadata__ '{}' is not a string", printable_name(key2_)));
  }

  const std::string& where_;
  SafetensorsHeader& out_;
  int depth_ = 0;
  std::string key1_;  // the tensor name (or __metadata__) being read
  std::string key2_;  // the field of that entry being read
  bool seen_metadata_ = false;
  std::unordered_set<std::string> names_;
  Draft draft_;
};

bool HeaderSax::key(string_t& k) {
  if (depth_ == 1) {
    key1_ = k;
    if (in_metadata()) {
      if (seen_metadata_) fail_header("__metadata__ appears twice");
      seen_metadata_ = true;
      return true;
    }
    if (const std::string problem = tensor_name_problem(k); !problem.empty()) fail_tensor(problem);
    if (!names_.insert(k).second) fail_tensor("appears twice in the header");
    draft_ = Draft{};
    return true;
  }
  // depth_ == 2: objects deeper than that are refused in start().
  key2_ = k;
  if (in_metadata()) {
    if (out_.metadata.contains(k))
      fail_header(fmt::format("__metadata__ key '{}' appears twice", printable_name(k)));
    return true;
  }
  bool* seen = nullptr;
  if (k == "dtype") seen = &draft_.has_dtype;
  else if (k == "shape") seen = &draft_.has_shape;
  else if (k == "data_offsets") seen = &draft_.has_offsets;
  else fail_tensor(fmt::format("unknown field '{}'", printable_name(k)));
  if (*seen) fail_tensor(fmt::format("field '{}' appears twice", k));
  *seen = true;
  return true;
}

bool HeaderSax::scalar(Kind kind, std::uint64_t value, string_t* text) {
  if (depth_ == 1) {
    if (in_metadata()) {
      if (kind == Kind::kNull) return true;  // `"__metadata__": null` means none
      fail_header("__metadata__ is not an object");
    }
    fail_tensor("entry is not an object");
  }
  if (depth_ == 2) {
    if (in_metadata()) {
      if (kind != Kind::kString) metadata_value_error();
      out_.metadata.emplace(key2_, std::move(*text));
      return true;
    }
    if (key2_ != "dtype" || kind != Kind::kString) field_type_error();
    draft_.dtype = std::move(*text);
    return true;
  }
  // depth_ == 3: an element of shape or data_offsets.
  if (kind != Kind::kUnsigned) field_type_error();
  if (key2_ == "shape") {
    if (draft_.dims.size() == static_cast<std::size_t>(kMaxTensorRank))
      fail_tensor(fmt::format("shape has more than {} dimensions", kMaxTensorRank));
    draft_.dims.push_back(value);
  } else {
    if (draft_.offsets.size() == 2) field_type_error();
    draft_.offsets.push_back(value);
  }
  return true;
}

bool HeaderSax::start(bool is_object) {
  if (depth_ == 1) {
    if (in_metadata()) {
      if (!is_object) fail_header("__metadata__ is not an object");
    } else if (!is_object) {
      fail_tensor("entry is not an object");
    }
  } else if (depth_ == 2) {
    if (in_metadata()) metadata_value_error();
    if (is_object || key2_ == "dtype") field_type_error();
  } else if (depth_ >= 3) {
    field_type_error();
  }
  ++depth_;
  return true;
}

bool HeaderSax::end() {
  --depth_;
  if (depth_ == 1 && !in_metadata()) finish_tensor();
  return true;
}

void HeaderSax::finish_tensor() {
  // Only reached when an entry object closes at depth 1; arrays at depth 2 close into depth 2.
  if (!draft_.has_dtype) fail_tensor("missing dtype");
  if (!draft_.has_shape) fail_tensor("missing shape");
  if (!draft_.has_offsets) fail_tensor("missing data_offsets");
  const SafetensorsDType* dt = find_safetensors_dtype(draft_.dtype);
  if (dt == nullptr) fail_tensor(fmt::format("unknown dtype '{}'", printable_name(draft_.dtype)));
  if (draft_.offsets.size() != 2) {
    key2_ = "data_offsets";
    field_type_error();
  }
  const std::uint64_t begin = draft_.offsets[0];
  const std::uint64_t end = draft_.offsets[1];
  if (begin > end) fail_tensor(fmt::format("data_offsets [{}, {}]: begin is after end", begin, end));

  const std::string shape_text = u64_shape_string(draft_.dims);
  std::uint64_t numel = 1;
  for (std::uint64_t d : draft_.dims)
    if (d > kInt64Max || !checked_mul(numel, d, kInt64Max, numel))
      fail_tensor(fmt::format("shape {} is too large", shape_text));
  std::uint64_t bits = 0;
  if (!checked_mul(numel, static_cast<std::uint64_t>(dt->bits), std::numeric_limits<std::uint64_t>::max(),
                   bits))
    fail_tensor(fmt::format("shape {} is too large", shape_text));
  if (bits % 8 != 0)
    fail_tensor(fmt::format("{} {} is not a whole number of bytes", dt->name, shape_text));
  if (end - begin != bits / 8)
    fail_tensor(fmt::format("data_offsets [{}, {}] hold {} bytes but {} {} needs {}", begin, end,
                            end - begin, dt->name, shape_text, bits / 8));
  if (end > out_.data_size)
    fail_tensor(fmt::format("data_offsets [{}, {}] run past the end of the data ({} bytes)", begin,
                            end, out_.data_size));

  SafetensorsTensorInfo info;
  info.name = key1_;
  info.dtype = dt->name;
  info.element = dt->tailor;
  info.shape.assign(draft_.dims.begin(), draft_.dims.end());  // each <= INT64_MAX, checked above
  info.numel = static_cast<std::int64_t>(numel);
  info.data_begin = begin;
  info.data_end = end;
  out_.tensors.push_back(std::move(info));
}

// Tensors that hold bytes must not share any; sorted by range, each must start at or after the
// furthest end seen so far.
void check_overlaps(const SafetensorsHeader& header, const std::string& where) {
  std::vector<std::size_t> order(header.tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto& x = header.tensors[a];
    const auto& y = header.tensors[b];
    return x.data_begin != y.data_begin ? x.data_begin < y.data_begin : x.data_end < y.data_end;
  });
  const SafetensorsTensorInfo* furthest = nullptr;
  for (std::size_t i : order) {
    const SafetensorsTensorInfo& t = header.tensors[i];
    if (t.bytes() == 0) continue;
    if (furthest != nullptr && t.data_begin < furthest->data_end)
      throw UserError(where, fmt::format("tensor '{}': data_offsets [{}, {}] overlap tensor '{}' [{}, {}]",
                                         printable_name(t.name), t.data_begin, t.data_end,
                                         printable_name(furthest->name), furthest->data_begin,
                                         furthest->data_end));
    if (furthest == nullptr || t.data_end > furthest->data_end) furthest = &t;
  }
}

}  // namespace

const SafetensorsDType* find_safetensors_dtype(std::string_view name) noexcept {
  for (const SafetensorsDType& d : kDTypes)
    if (d.name == name) return &d;
  return nullptr;
}

std::string_view safetensors_dtype_name(DType t) noexcept {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF64: return "F64";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kI32: return "I32";
  }
  return "?";
}

std::string tensor_name_problem(std::string_view name) {
  if (name.empty()) return "name is empty";
  if (name.size() > kMaxTensorNameBytes)
    return fmt::format("name is longer than {} bytes", kMaxTensorNameBytes);
  for (std::size_t i = 0; i < name.size();) {
    std::uint32_t cp = 0;
    const std::size_t n = utf8_sequence(name, i, cp);
    if (n == 0) return "name is not valid UTF-8";
    if (is_control(cp)) return fmt::format("name contains control character U+{:04X}", cp);
    i += n;
  }
  return {};
}

std::string printable_name(std::string_view text) {
  constexpr std::size_t kShown = 64;
  std::string out;
  std::size_t i = 0;
  while (i < text.size() && i < kShown) {
    std::uint32_t cp = 0;
    const std::size_t n = utf8_sequence(text, i, cp);
    if (n == 0 || is_control(cp)) {
      // Escape every byte of the offending sequence (one byte when it is not UTF-8 at all).
      for (std::size_t k = 0; k < std::max<std::size_t>(n, 1); ++k)
        out += fmt::format("\\x{:02x}", static_cast<unsigned>(static_cast<unsigned char>(text[i + k])));
      i += std::max<std::size_t>(n, 1);
      continue;
    }
    if (cp == '\\' || cp == '\'') out += '\\';
    out.append(text.substr(i, n));
    i += n;
  }
  if (i < text.size()) out += "...";
  return out;
}

std::string shape_string(std::span<const std::int64_t> shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

SafetensorsHeader parse_header(std::span<const std::byte> file_bytes, const std::string& name) {
  const std::uint64_t size = file_bytes.size();
  if (size < 8)
    throw UserError(name, fmt::format("header: file is {} bytes, too short for a safetensors header", size));
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i)
    length = (length << 8) | static_cast<std::uint64_t>(file_bytes[static_cast<std::size_t>(i)]);
  if (length > kMaxHeaderBytes)
    throw UserError(name, fmt::format("header: length {} exceeds the limit of {} bytes", length,
                                      kMaxHeaderBytes));
  if (length > size - 8)
    throw UserError(name, fmt::format("header: length {} runs past the end of the file ({} bytes)",
                                      length, size));
  const auto* text = reinterpret_cast<const char*>(file_bytes.data()) + 8;
  if (length == 0 || text[0] != '{') throw UserError(name, "header: not a JSON object");

  // nlohmann's tokenizer takes a NUL byte for the end of input; in JSON text it is never valid.
  if (const void* nul = std::memchr(text, 0, length); nul != nullptr)
    throw UserError(name, fmt::format("header: not valid JSON (error at byte {})",
                                      static_cast<const char*>(nul) - text + 1));

  SafetensorsHeader header;
  header.data_start = 8 + length;
  header.data_size = size - header.data_start;
  HeaderSax sax(name, header);
  // strict: trailing bytes other than whitespace (HF pads with spaces) are a parse error.
  Json::sax_parse(text, text + length, &sax, nlohmann::detail::input_format_t::json, true, false);
  check_overlaps(header, name);
  return header;
}

}  // namespace tailor::checkpoint
