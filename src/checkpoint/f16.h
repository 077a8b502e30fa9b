// IEEE 754 binary16 ("F16", numpy's float16) conversion, written out by hand.
//
// f16 -> f32 is exact (every f16 value is an f32 value). f32 -> f16 rounds to nearest, ties to even,
// overflows to ±inf (|x| >= 65520, halfway past the largest finite 65504), produces subnormals
// below 2^-14, and keeps a NaN a NaN with its top payload bits (forcing the quiet bit only when
// the payload would vanish), so f16 -> f32 -> f16 gives back every one of the 65536 bit patterns.
// core/dtype.h holds the bf16 counterpart.
#pragma once

#include <bit>
#include <cstdint>

namespace tailor::checkpoint {

[[nodiscard]] inline float f16_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in f32 (a 10-bit integer times a power of two).
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) | sign);
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));  // bias 15 -> 127
}

[[nodiscard]] inline std::uint16_t float_to_f16(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) {  // NaN: keep the top 10 payload bits, never let them become inf's zero
    std::uint32_t payload = (a >> 13) & 0x3ffu;
    if (payload == 0) payload = 0x200u;
    return static_cast<std::uint16_t>(sign | 0x7c00u | payload);
  }
  if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 (or inf)
  const std::uint32_t exponent = a >> 23;
  if (exponent < 113) {
    // Below 2^-14: a subnormal f16, i.e. round(|f| * 2^24). |f| = m * 2^(e-150) with the implicit
    // bit, so the quotient is m >> (126 - e). Below 2^-25 (e < 102) everything rounds to zero.
    if (exponent < 102) return sign;
    const std::uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - exponent;  // 14 .. 24
    std::uint32_t q = m >> shift;
    const std::uint32_t rest = m & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u))) ++q;  // may carry into the smallest normal
    return static_cast<std::uint16_t>(sign | q);
  }
  // Normal: rebias the exponent, keep 10 mantissa bits, round on the 13 dropped ones. A carry out of
  // the mantissa correctly bumps the exponent; the overflow check above keeps it below inf.
  std::uint32_t h = ((exponent - 112u) << 10) | ((a >> 13) & 0x3ffu);
  const std::uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

}  // namespace tailor::checkpoint
