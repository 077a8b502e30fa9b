// 4-bit block quantization of frozen base weights (QLoRA, issue 25): NF4 and FP4 in bitsandbytes'
// storage layout, so a weight quantized here is the same bytes bitsandbytes would hold.
//
//   packed:   [ceil(numel / 2)] uint8, element 2i in the high nibble, 2i+1 in the low nibble
//   absmax:   [ceil(numel / block_size)] f32, max |x| of each block of the flattened weight
//   with double quantization the absmax is stored instead as
//   absmax_q: [blocks] uint8 codes of (absmax - offset) in bitsandbytes' signed 8-bit dynamic
//             table, in blocks of 256 absmax values
//   absmax2:  [ceil(blocks / 256)] f32 scale of each such block; offset: mean of the absmax
//
// A value's nibble is the index of the nearest table entry to x / absmax (clamped to [-1, 1]);
// its dequantized value is table[nibble] * absmax, in f32. The rules that decide equal-distance
// cases, the reciprocal-vs-division of the last short block and the 8-bit search follow
// bitsandbytes' CPU path; tests/model/quantize_4bit_test.cpp holds them to its output bit for bit.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace tailor::model {

enum class Quant4Type : std::uint8_t { kNf4, kFp4 };

std::string_view quant4_name(Quant4Type type) noexcept;

// The 16 values a nibble stands for (bitsandbytes' get_4bit_type: NF4's normal quantiles; FP4's
// 1-2-1 float codes in bit-pattern order, divided by 12 so the largest is 1).
const std::array<float, 16>& quant4_table(Quant4Type type) noexcept;

// bitsandbytes' signed 8-bit dynamic table (create_dynamic_map()), sorted, used for the absmax
// under double quantization.
const std::array<float, 256>& dynamic_table_8bit() noexcept;

inline constexpr std::int64_t kDoubleQuantBlock = 256;

struct Quant4Tensor {
  Quant4Type type = Quant4Type::kNf4;
  std::int64_t numel = 0;
  std::int64_t block_size = 64;
  bool double_quant = false;
  std::vector<std::uint8_t> packed;
  std::vector<float> absmax;           // without double quantization
  std::vector<std::uint8_t> absmax_q;  // with double quantization
  std::vector<float> absmax2;
  float offset = 0.0f;

  [[nodiscard]] std::int64_t blocks() const noexcept {
    return (numel + block_size - 1) / block_size;
  }
  // The scale of block b as dequantization uses it (absmax, or its double-quantized value).
  [[nodiscard]] float block_scale(std::int64_t b) const noexcept;
  // Bytes this storage holds (what the weight costs in memory).
  [[nodiscard]] std::int64_t bytes() const noexcept;
};

// Quantizes the flattened weight `w`. block_size must be a positive even number (bitsandbytes
// accepts 32 .. 4096, powers of two); the config layer refuses other values with a clear line.
Quant4Tensor quantize_4bit(std::span<const float> w, Quant4Type type, std::int64_t block_size,
                           bool double_quant);

// Writes elements [first, first + out.size()) of the dequantized weight to `out` (f32): a tile of
// the frozen base for the GEMM, so no full-precision copy of the whole weight need exist.
void dequantize_4bit(const Quant4Tensor& q, std::int64_t first, std::span<float> out);

}  // namespace tailor::model
