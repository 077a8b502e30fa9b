// Element types and bf16/f16 conversion.
//
// f32 and f64 are the CPU backend's compute types (f64 for gradient checks and layout-equivalence
// tests); bf16 is the CUDA storage type; i32 holds token ids, positions and targets.
// bf16 conversion rounds to nearest even and keeps NaN a NaN, as the GPU's cvt.rn.bf16.f32 does.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tailor {

enum class DType : std::uint8_t { kF32, kF64, kBF16, kF16, kI32 };

[[nodiscard]] constexpr std::size_t dtype_size(DType t) noexcept {
  switch (t) {
    case DType::kF64: return 8;
    case DType::kF32:
    case DType::kI32: return 4;
    case DType::kBF16:
    case DType::kF16: return 2;
  }
  return 0;
}

[[nodiscard]] std::string_view dtype_name(DType t) noexcept;

// The type that accumulates what a tensor of storage type t feeds: f32 for the 16-bit types
// (gradients of parameters, norm and softmax statistics, losses, master weights), t otherwise.
[[nodiscard]] constexpr DType accum_dtype(DType t) noexcept {
  return t == DType::kBF16 || t == DType::kF16 ? DType::kF32 : t;
}
// Parses "f32|f64|bf16|f16|i32"; returns false on anything else.
bool parse_dtype(std::string_view text, DType& out) noexcept;

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::kF64; };
template <> struct DTypeOf<std::int32_t> { static constexpr DType value = DType::kI32; };

// bf16 stored as its 16 raw bits.
struct BF16 {
  std::uint16_t bits = 0;
};
template <> struct DTypeOf<BF16> { static constexpr DType value = DType::kBF16; };

[[nodiscard]] inline BF16 float_to_bf16(float f) noexcept {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return BF16{static_cast<std::uint16_t>((u >> 16) | 0x40u)};  // quiet NaN
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return BF16{static_cast<std::uint16_t>((u + rounding) >> 16)};
}
[[nodiscard]] inline float bf16_to_float(BF16 b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b.bits) << 16);
}
// f32 -> nearest bf16 -> f32: what a value becomes when stored in bf16.
[[nodiscard]] inline float round_to_bf16(float f) noexcept { return bf16_to_float(float_to_bf16(f)); }

}  // namespace tailor
