// The safetensors header: parsing and validation, with no file I/O (the fuzz target's entry point).
//
// Layout of a file: 8 bytes little-endian N, then N bytes of UTF-8 JSON (an object, possibly padded
// with trailing spaces), then the data section. Every JSON key but `__metadata__` (a string -> string
// map) names a tensor: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, offsets
// relative to the data section.
//
// parse_header() accepts only what it has fully checked, so whoever holds a SafetensorsHeader may
// index the data section without further checks:
//   - 8 + N <= file size, N <= kMaxHeaderBytes (HF's own limit);
//   - names are valid tensor names (tensor_name_problem) and unique;
//   - rank <= kMaxTensorRank, numel and byte counts computed without overflow;
//   - begin <= end <= data size, end - begin == the byte size of dtype x shape;
//   - tensors with bytes do not overlap (empty ones may sit anywhere in range; gaps are allowed).
// Every violation is a UserError(name, "header: ..." or "tensor 'x': ...") on one line; names and
// strings from the file are shown escaped and shortened (printable_name).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace tailor::checkpoint {

inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // as huggingface/safetensors
inline constexpr std::size_t kMaxTensorNameBytes = 1024;
inline constexpr int kMaxTensorRank = Shape::kMaxRank;

// One element type of the format. `bits` allows the packed sub-byte types (F4, F6_*).
struct SafetensorsDType {
  std::string_view name;        // as written in the header: "F32", "BF16", ...
  int bits = 0;
  std::optional<DType> tailor;  // set for the types Tailor reads: F32, F16, BF16
};
// nullptr when the format has no such dtype.
[[nodiscard]] const SafetensorsDType* find_safetensors_dtype(std::string_view name) noexcept;
// "F32", "F16", "BF16", "F64", "I32".
[[nodiscard]] std::string_view safetensors_dtype_name(DType t) noexcept;

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;                  // as in the file
  std::optional<DType> element;       // F32 / F16 / BF16; empty for the types Tailor cannot read
  std::vector<std::int64_t> shape;    // rank 0 .. kMaxTensorRank
  std::int64_t numel = 0;
  std::uint64_t data_begin = 0;       // byte range within the data section
  std::uint64_t data_end = 0;
  [[nodiscard]] std::uint64_t bytes() const noexcept { return data_end - data_begin; }
};

struct SafetensorsHeader {
  std::vector<SafetensorsTensorInfo> tensors;   // in file order
  std::map<std::string, std::string> metadata;  // `__metadata__`, empty when absent
  std::uint64_t data_start = 0;                 // 8 + N: where the data section begins in the file
  std::uint64_t data_size = 0;                  // file size - data_start
};

// Parses and validates the header of a whole file's bytes; `name` is the `where` of every error.
[[nodiscard]] SafetensorsHeader parse_header(std::span<const std::byte> file_bytes,
                                             const std::string& name);

// Why `name` cannot be a tensor name (empty, too long, not UTF-8, a control character), or an empty
// string when it can.
[[nodiscard]] std::string tensor_name_problem(std::string_view name);
// `text` as shown inside quotes in a one-line message: control characters and bytes that are not
// UTF-8 escaped as \xNN, a backslash and a quote escaped, cut to 64 bytes with "...".
[[nodiscard]] std::string printable_name(std::string_view text);
// "[2, 3]"
[[nodiscard]] std::string shape_string(std::span<const std::int64_t> shape);

}  // namespace tailor::checkpoint
