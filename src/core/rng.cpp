#include "core/rng.h"

#include <cmath>
#include <numbers>

namespace tailor {
namespace {

constexpr std::uint32_t kMul0 = 0xD2511F53u;
constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;
constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;

inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

}  // namespace

Philox4x32 philox4x32(std::array<std::uint32_t, 4> c, std::array<std::uint32_t, 2> k) noexcept {
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c[0], hi0, lo0);
    mulhilo(kMul1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kWeyl0;
    k[1] += kWeyl1;
  }
  return c;
}

Philox4x32 CounterRng::block(std::uint64_t b) const noexcept {
  return philox4x32({static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32),
                     static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)},
                    {static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)});
}

std::uint32_t CounterRng::bits(std::uint64_t index) const noexcept {
  return block(index >> 2)[index & 3u];
}

double CounterRng::uniform(std::uint64_t index) const noexcept {
  return static_cast<double>(bits(index) >> 8) * (1.0 / 16777216.0);
}

double CounterRng::normal(std::uint64_t index) const noexcept {
  const Philox4x32 r = block(index);
  // u1 in (0, 1] so the log is finite; u2 in [0, 1). 53-bit precision from two words each.
  const double u1 = (static_cast<double>((static_cast<std::uint64_t>(r[0]) << 21) ^ r[1]) + 1.0) /
                    9007199254740992.0;
  const double u2 = static_cast<double>((static_cast<std::uint64_t>(r[2]) << 21) ^ r[3]) /
                    9007199254740992.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t CounterRng::below(std::uint64_t index, std::uint64_t n) const noexcept {
  const Philox4x32 r = block(index);
  const std::uint64_t x = (static_cast<std::uint64_t>(r[0]) << 32) | r[1];
  __extension__ using U128 = unsigned __int128;
  return static_cast<std::uint64_t>((static_cast<U128>(x) * n) >> 64);
}

std::uint64_t stream_id(std::string_view name) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char ch : name) {
    h ^= static_cast<unsigned char>(ch);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace tailor
