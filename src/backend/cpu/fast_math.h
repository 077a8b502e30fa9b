// exp, sigmoid and tanh for f32 written to vectorize: branch-free, no library calls, so a loop
// over them compiles to SIMD code without -ffast-math. The f64 versions call the C library
// (f64 serves gradient checks and equivalence tests, where speed does not matter).
//
// exp_f32: x = n ln2 + r with n = round(x / ln2), |r| <= ln2 / 2 (Cody-Waite split of ln2 so
// that n * ln2_hi is exact), e^r by its degree-7 Taylor polynomial (truncation error < 1e-8
// relative on that interval), then scaled by 2^n through the float's exponent bits. Checked
// against a double exp over the float range (ops tests): within 2 ulp for normal results;
// subnormal results, 0 and +inf come out of the same arithmetic, NaN stays NaN. No branches and
// nothing that depends on the vector width: the same results on every x86-64 machine.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace tailor::backend::cpu {

[[nodiscard]] inline float exp_f32(float x) noexcept {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;  // 15 significant bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = 1.42860682030941723e-6f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  constexpr std::int32_t kRoundBits = 0x4b400000;
  // Outside [kMin, kMax] the result is 0 or +inf anyway; the clamp keeps 2^n representable in
  // two halves. NaN passes both comparisons and propagates through the polynomial. The clamp
  // selects bits through masks: written as `x < kMin ? kMin : x`, GCC threads the constant
  // through the whole polynomial, and the resulting branch stops vectorization.
  constexpr float kMin = -110.0f;
  constexpr float kMax = 89.0f;
  const std::uint32_t below = x < kMin ? ~0u : 0u;
  const std::uint32_t above = x > kMax ? ~0u : 0u;
  const std::uint32_t keep = ~(below | above);
  const float xc = std::bit_cast<float>((std::bit_cast<std::uint32_t>(x) & keep) |
                                        (std::bit_cast<std::uint32_t>(kMin) & below) |
                                        (std::bit_cast<std::uint32_t>(kMax) & above));
  const float t = xc * kLog2e + kRound;  // kRound + n, n = round(x / ln2), |n| <= 159
  const float n = t - kRound;
  const std::int32_t ni = std::bit_cast<std::int32_t>(t) - kRoundBits;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // p * 2^n, the scaling split in two exact halves so that neither factor leaves the normal
  // range; the second product rounds once into the subnormals or overflows to +inf.
  const std::int32_t n1 = ni >> 1;
  const std::int32_t n2 = ni - n1;
  const float s1 = std::bit_cast<float>((n1 + 127) << 23);
  const float s2 = std::bit_cast<float>((n2 + 127) << 23);
  return (p * s1) * s2;
}

template <typename T>
[[nodiscard]] inline T fast_exp(T x) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return exp_f32(x);
  } else {
    return std::exp(x);
  }
}

// tanh(u) = 1 - 2 / (e^{2u} + 1): absolute error a few ulp of 1, which is what gelu's
// 1 + tanh and 1 - tanh^2 need (their relative error stays at the ulp level).
template <typename T>
[[nodiscard]] inline T fast_tanh(T u) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return 1.0f - 2.0f / (exp_f32(2.0f * u) + 1.0f);
  } else {
    return std::tanh(u);
  }
}

}  // namespace tailor::backend::cpu
