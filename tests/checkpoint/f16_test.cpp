// f16 conversion: every bit pattern round-trips, and f32 -> f16 equals an independent reference
// (nearest representable value by exhaustive search in double, ties to the even bit pattern).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "checkpoint/f16.h"

namespace tailor::checkpoint {
namespace {

// Positive finite f16 values in bit order (which is value order): 0x0000 .. 0x7bff.
const std::vector<double>& positive_f16_table() {
  static const std::vector<double> table = [] {
    std::vector<double> t;
    for (std::uint32_t h = 0; h <= 0x7bff; ++h) {
      const std::uint32_t e = h >> 10, m = h & 0x3ff;
      t.push_back(e == 0 ? std::ldexp(static_cast<double>(m), -24)
                         : std::ldexp(static_cast<double>(m + 1024), static_cast<int>(e) - 25));
    }
    return t;
  }();
  return table;
}

std::uint16_t reference_f16(float f) {
  const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return static_cast<std::uint16_t>(sign | 0x7c00);  // includes inf
  const auto& t = positive_f16_table();
  const auto hi = static_cast<std::size_t>(std::lower_bound(t.begin(), t.end(), a) - t.begin());
  if (hi == t.size()) return static_cast<std::uint16_t>(sign | 0x7bff);
  if (t[hi] == a || hi == 0) return static_cast<std::uint16_t>(sign | hi);
  const std::size_t lo = hi - 1;
  const double dlo = a - t[lo], dhi = t[hi] - a;
  const std::size_t pick = dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi);
  return static_cast<std::uint16_t>(sign | pick);
}

TEST(F16, EveryBitPatternRoundTrips) {
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = f16_to_float(static_cast<std::uint16_t>(h));
    ASSERT_EQ(float_to_f16(f), h) << std::hex << h;
    if (((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff) != 0) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
    }
  }
}

TEST(F16, DecodesKnownValues) {
  EXPECT_EQ(f16_to_float(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_float(0xc000), -2.0f);
  EXPECT_EQ(f16_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_float(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(std::bit_cast<std::uint32_t>(f16_to_float(0x8000)), 0x80000000u);
  EXPECT_EQ(f16_to_float(0x7c00), INFINITY);
  EXPECT_EQ(f16_to_float(0xfc00), -INFINITY);
}

TEST(F16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_f16(65519.99f), 0x7bff);
  EXPECT_EQ(float_to_f16(65520.0f), 0x7c00);        // halfway to 65536: ties to even = inf
  EXPECT_EQ(float_to_f16(-1e6f), 0xfc00);
  EXPECT_EQ(float_to_f16(2049.0f), 0x6800);         // 2048 | 2050: tie -> even 2048
  EXPECT_EQ(float_to_f16(2051.0f), 0x6802);         // 2050 | 2052: tie -> even 2052
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // half the smallest subnormal
  EXPECT_EQ(float_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 * 2^-24: tie -> even 2
  EXPECT_EQ(float_to_f16(std::ldexp(3.0f, -26)), 0x0001);  // 0.75 * 2^-24 -> 1
  EXPECT_EQ(float_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(float_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_f16(std::ldexp(1023.5f, -24)), 0x0400);  // rounds up into the smallest normal
  EXPECT_EQ(float_to_f16(std::bit_cast<float>(0x7f800001u)), 0x7e00);  // NaN stays NaN
}

TEST(F16, MatchesReferenceOnEdgesAndRandomValues) {
  std::vector<float> values;
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {  // every value, its neighbours and midpoints
    const float f = f16_to_float(static_cast<std::uint16_t>(h));
    const float next = f16_to_float(static_cast<std::uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(f) + static_cast<double>(next)) / 2);
    for (float v : {f, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 300000; ++i) {
    const float f = std::bit_cast<float>(bits(rng));
    if (!std::isnan(f)) values.push_back(f);
  }
  for (float v : values)
    ASSERT_EQ(float_to_f16(v), reference_f16(v)) << "value " << v << " bits 0x" << std::hex
                                                 << std::bit_cast<std::uint32_t>(v);
}

}  // namespace
}  // namespace tailor::checkpoint
