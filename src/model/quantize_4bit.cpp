// NF4 / FP4 block quantization in bitsandbytes' layout (see quantize_4bit.h for the layout and
// tests/golden/make_qlora_fixtures.py for the reference it is held to).
#include "model/quantize_4bit.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace tailor::model {
namespace {

// bitsandbytes get_4bit_type("nf4"): create_normal_map(offset=0.9677083), rounded to f32.
constexpr std::array<float, 16> kNf4 = {
    -1.0f,           -0x1.647362p-1f, -0x1.0cd66p-1f,  -0x1.94654p-2f,
    -0x1.23449ap-2f, -0x1.7a6a7ep-3f, -0x1.74f0e2p-4f, 0.0f,
    0x1.45f5fep-4f,  0x1.4995c6p-3f,  0x1.f809bap-3f,  0x1.5a0674p-2f,
    0x1.c3497p-2f,   0x1.200f56p-1f,  0x1.722766p-1f,  1.0f};

// bitsandbytes get_4bit_type("fp4"): sign, 2 exponent bits (bias 2), 1 mantissa bit; the codes
// {0, 0.0625, 8, 12, 4, 6, 2, 3} and their negatives, divided by 12 in f32.
constexpr std::array<float, 16> kFp4 = {0.0f,          0.0625f / 12.0f,  8.0f / 12.0f,  1.0f,
                                        4.0f / 12.0f,  6.0f / 12.0f,     2.0f / 12.0f,  0.25f,
                                        0.0f,          -0.0625f / 12.0f, -8.0f / 12.0f, -1.0f,
                                        -4.0f / 12.0f, -6.0f / 12.0f,    -2.0f / 12.0f, -0.25f};

// bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), sorted: a
// dynamic exponent (powers of ten) with a shrinking linear fraction, plus 0 and 1.
constexpr std::array<float, 256> kDynamic8 = {
    -0x1.fc6666p-1f,  -0x1.f53334p-1f,  -0x1.eep-1f,      -0x1.e6ccccp-1f,
    -0x1.df999ap-1f,  -0x1.d86666p-1f,  -0x1.d13334p-1f,  -0x1.cap-1f,
    -0x1.c2ccccp-1f,  -0x1.bb999ap-1f,  -0x1.b46666p-1f,  -0x1.ad3334p-1f,
    -0x1.a6p-1f,      -0x1.9eccccp-1f,  -0x1.97999ap-1f,  -0x1.906666p-1f,
    -0x1.893334p-1f,  -0x1.82p-1f,      -0x1.7accccp-1f,  -0x1.73999ap-1f,
    -0x1.6c6668p-1f,  -0x1.653334p-1f,  -0x1.5ep-1f,      -0x1.56ccccp-1f,
    -0x1.4f999ap-1f,  -0x1.486668p-1f,  -0x1.413334p-1f,  -0x1.3ap-1f,
    -0x1.32ccccp-1f,  -0x1.2b999ap-1f,  -0x1.246668p-1f,  -0x1.1d3334p-1f,
    -0x1.16p-1f,      -0x1.0eccccp-1f,  -0x1.079998p-1f,  -0x1.006666p-1f,
    -0x1.f26664p-2f,  -0x1.e4p-2f,      -0x1.d59998p-2f,  -0x1.c73334p-2f,
    -0x1.b8ccccp-2f,  -0x1.aa6666p-2f,  -0x1.9cp-2f,      -0x1.8d9998p-2f,
    -0x1.7f3334p-2f,  -0x1.70ccccp-2f,  -0x1.626666p-2f,  -0x1.54p-2f,
    -0x1.459998p-2f,  -0x1.373334p-2f,  -0x1.28ccccp-2f,  -0x1.1a6668p-2f,
    -0x1.0cp-2f,      -0x1.fb3332p-3f,  -0x1.de6666p-3f,  -0x1.c1999ap-3f,
    -0x1.a4ccccp-3f,  -0x1.88p-3f,      -0x1.6b3334p-3f,  -0x1.4e6666p-3f,
    -0x1.31999ap-3f,  -0x1.14ccccp-3f,  -0x1.fp-4f,       -0x1.b66668p-4f,
    -0x1.93d70ap-4f,  -0x1.8851eep-4f,  -0x1.7ccccep-4f,  -0x1.7147aep-4f,
    -0x1.65c29p-4f,   -0x1.5a3d7p-4f,   -0x1.4eb854p-4f,  -0x1.433334p-4f,
    -0x1.37ae14p-4f,  -0x1.2c28f6p-4f,  -0x1.20a3d6p-4f,  -0x1.151ebap-4f,
    -0x1.09999ap-4f,  -0x1.fc28f6p-5f,  -0x1.e51ebap-5f,  -0x1.ce147ap-5f,
    -0x1.b70a3ep-5f,  -0x1.ap-5f,       -0x1.88f5c2p-5f,  -0x1.71eb86p-5f,
    -0x1.5ae146p-5f,  -0x1.43d70ap-5f,  -0x1.2ccccep-5f,  -0x1.15c29p-5f,
    -0x1.fd70a4p-6f,  -0x1.cf5c2ap-6f,  -0x1.a147aep-6f,  -0x1.733334p-6f,
    -0x1.451ebap-6f,  -0x1.170a3ep-6f,  -0x1.d1eb86p-7f,  -0x1.75c29p-7f,
    -0x1.3e76c8p-7f,  -0x1.2c083p-7f,   -0x1.19999ap-7f,  -0x1.072b02p-7f,
    -0x1.e978d4p-8f,  -0x1.c49ba6p-8f,  -0x1.9fbe76p-8f,  -0x1.7ae148p-8f,
    -0x1.56041ap-8f,  -0x1.3126e8p-8f,  -0x1.0c49bap-8f,  -0x1.ced914p-9f,
    -0x1.851eb8p-9f,  -0x1.3b645ap-9f,  -0x1.e353f8p-10f, -0x1.4fdf3ap-10f,
    -0x1.eecbfep-11f, -0x1.b3d07cp-11f, -0x1.78d5p-11f,   -0x1.3dd982p-11f,
    -0x1.02de02p-11f, -0x1.8fc506p-12f, -0x1.19ce0ap-12f, -0x1.47ae16p-13f,
    -0x1.743e96p-14f, -0x1.15df66p-14f, -0x1.6f0068p-15f, -0x1.64840cp-16f,
    -0x1.040bfep-17f, -0x1.b43528p-19f, -0x1.27476ep-21f, 0.0f,
    0x1.27476ep-21f,  0x1.b43528p-19f,  0x1.040bfep-17f,  0x1.64840cp-16f,
    0x1.6f0068p-15f,  0x1.15df66p-14f,  0x1.743e96p-14f,  0x1.47ae16p-13f,
    0x1.19ce0ap-12f,  0x1.8fc506p-12f,  0x1.02de02p-11f,  0x1.3dd982p-11f,
    0x1.78d5p-11f,    0x1.b3d07cp-11f,  0x1.eecbfep-11f,  0x1.4fdf3ap-10f,
    0x1.e353f8p-10f,  0x1.3b645ap-9f,   0x1.851eb8p-9f,   0x1.ced914p-9f,
    0x1.0c49bap-8f,   0x1.3126e8p-8f,   0x1.56041ap-8f,   0x1.7ae148p-8f,
    0x1.9fbe76p-8f,   0x1.c49ba6p-8f,   0x1.e978d4p-8f,   0x1.072b02p-7f,
    0x1.19999ap-7f,   0x1.2c083p-7f,    0x1.3e76c8p-7f,   0x1.75c29p-7f,
    0x1.d1eb86p-7f,   0x1.170a3ep-6f,   0x1.451ebap-6f,   0x1.733334p-6f,
    0x1.a147aep-6f,   0x1.cf5c2ap-6f,   0x1.fd70a4p-6f,   0x1.15c29p-5f,
    0x1.2ccccep-5f,   0x1.43d70ap-5f,   0x1.5ae146p-5f,   0x1.71eb86p-5f,
    0x1.88f5c2p-5f,   0x1.ap-5f,        0x1.b70a3ep-5f,   0x1.ce147ap-5f,
    0x1.e51ebap-5f,   0x1.fc28f6p-5f,   0x1.09999ap-4f,   0x1.151ebap-4f,
    0x1.20a3d6p-4f,   0x1.2c28f6p-4f,   0x1.37ae14p-4f,   0x1.433334p-4f,
    0x1.4eb854p-4f,   0x1.5a3d7p-4f,    0x1.65c29p-4f,    0x1.7147aep-4f,
    0x1.7ccccep-4f,   0x1.8851eep-4f,   0x1.93d70ap-4f,   0x1.b66668p-4f,
    0x1.fp-4f,        0x1.14ccccp-3f,   0x1.31999ap-3f,   0x1.4e6666p-3f,
    0x1.6b3334p-3f,   0x1.88p-3f,       0x1.a4ccccp-3f,   0x1.c1999ap-3f,
    0x1.de6666p-3f,   0x1.fb3332p-3f,   0x1.0cp-2f,       0x1.1a6668p-2f,
    0x1.28ccccp-2f,   0x1.373334p-2f,   0x1.459998p-2f,   0x1.54p-2f,
    0x1.626666p-2f,   0x1.70ccccp-2f,   0x1.7f3334p-2f,   0x1.8d9998p-2f,
    0x1.9cp-2f,       0x1.aa6666p-2f,   0x1.b8ccccp-2f,   0x1.c73334p-2f,
    0x1.d59998p-2f,   0x1.e4p-2f,       0x1.f26664p-2f,   0x1.006666p-1f,
    0x1.079998p-1f,   0x1.0eccccp-1f,   0x1.16p-1f,       0x1.1d3334p-1f,
    0x1.246668p-1f,   0x1.2b999ap-1f,   0x1.32ccccp-1f,   0x1.3ap-1f,
    0x1.413334p-1f,   0x1.486668p-1f,   0x1.4f999ap-1f,   0x1.56ccccp-1f,
    0x1.5ep-1f,       0x1.653334p-1f,   0x1.6c6668p-1f,   0x1.73999ap-1f,
    0x1.7accccp-1f,   0x1.82p-1f,       0x1.893334p-1f,   0x1.906666p-1f,
    0x1.97999ap-1f,   0x1.9eccccp-1f,   0x1.a6p-1f,       0x1.ad3334p-1f,
    0x1.b46666p-1f,   0x1.bb999ap-1f,   0x1.c2ccccp-1f,   0x1.cap-1f,
    0x1.d13334p-1f,   0x1.d86666p-1f,   0x1.df999ap-1f,   0x1.e6ccccp-1f,
    0x1.eep-1f,       0x1.f53334p-1f,   0x1.fc6666p-1f,   0x1.0p+0f};

// A 4-bit table sorted ascending, with the midpoints between neighbours (in f32, as
// bitsandbytes' (code[a] + code[b]) / 2) and the nibble of each sorted position.
struct SortedTable {
  std::array<float, 15> bounds{};
  std::array<std::uint8_t, 16> nibble{};
};

SortedTable sorted_table(const std::array<float, 16>& table) {
  SortedTable s;
  std::array<std::uint8_t, 16> order{};
  for (std::uint8_t i = 0; i < 16; ++i) order[i] = i;
  // Stable, so of two equal entries (FP4's +0 and -0) the lower nibble comes first, as in
  // bitsandbytes' argsort of the table.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint8_t a, std::uint8_t b) { return table[a] < table[b]; });
  s.nibble = order;
  for (int i = 0; i < 15; ++i) s.bounds[i] = (table[order[i]] + table[order[i + 1]]) / 2.0f;
  return s;
}

const SortedTable& sorted(Quant4Type type) {
  static const SortedTable nf4 = sorted_table(kNf4);
  static const SortedTable fp4 = sorted_table(kFp4);
  return type == Quant4Type::kNf4 ? nf4 : fp4;
}

// The nibble of a scaled value: the number of midpoints strictly below it (torch.bucketize,
// right=False: a value on a midpoint goes to the lower entry), mapped back to its nibble.
std::uint8_t encode(const SortedTable& t, float v) {
  const auto pos = std::lower_bound(t.bounds.begin(), t.bounds.end(), v) - t.bounds.begin();
  return t.nibble[static_cast<std::size_t>(pos)];
}

// bitsandbytes' CPU 8-bit blockwise quantizer (quantize_blockwise on f32): per block of 256 the
// absmax; each value divided by it; the table entry at or left of it (binary search; the first
// entry for values below the table), moved right when the right neighbour is strictly nearer.
void quantize_8bit(std::span<const float> x, std::span<std::uint8_t> q, std::span<float> absmax) {
  const std::array<float, 256>& code = kDynamic8;
  const auto n = static_cast<std::int64_t>(x.size());
  for (std::int64_t b = 0; b * kDoubleQuantBlock < n; ++b) {
    const std::int64_t begin = b * kDoubleQuantBlock;
    const std::int64_t end = std::min(n, begin + kDoubleQuantBlock);
    float amax = -std::numeric_limits<float>::max();
    for (std::int64_t i = begin; i < end; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    absmax[b] = amax;
    for (std::int64_t i = begin; i < end; ++i) {
      const float v = x[i] / amax;
      auto idx = std::upper_bound(code.begin(), code.end(), v) - code.begin() - 1;
      idx = std::max<std::ptrdiff_t>(idx, 0);
      if (idx < 255 && std::fabs(v - code[idx + 1]) < std::fabs(v - code[idx])) ++idx;
      q[i] = static_cast<std::uint8_t>(idx);
    }
  }
}

}  // namespace

std::string_view quant4_name(Quant4Type type) noexcept {
  return type == Quant4Type::kNf4 ? "nf4" : "fp4";
}

const std::array<float, 16>& quant4_table(Quant4Type type) noexcept {
  return type == Quant4Type::kNf4 ? kNf4 : kFp4;
}

const std::array<float, 256>& dynamic_table_8bit() noexcept { return kDynamic8; }

float Quant4Tensor::block_scale(std::int64_t b) const noexcept {
  if (!double_quant) return absmax[static_cast<std::size_t>(b)];
  // bitsandbytes: dequantize_blockwise(absmax_q, absmax2) + offset, in f32.
  const float a = kDynamic8[absmax_q[static_cast<std::size_t>(b)]] *
                  absmax2[static_cast<std::size_t>(b / kDoubleQuantBlock)];
  return a + offset;
}

std::int64_t Quant4Tensor::bytes() const noexcept {
  return static_cast<std::int64_t>(packed.size() + absmax.size() * sizeof(float) + absmax_q.size() +
                                   absmax2.size() * sizeof(float) +
                                   (double_quant ? sizeof(float) : 0));
}

Quant4Tensor quantize_4bit(std::span<const float> w, Quant4Type type, std::int64_t block_size,
                           bool double_quant) {
  TAILOR_ASSERT(block_size > 0 && block_size % 2 == 0,
                "quantize_4bit: block size {} is not a positive even number", block_size);
  Quant4Tensor q;
  q.type = type;
  q.numel = static_cast<std::int64_t>(w.size());
  q.block_size = block_size;
  q.double_quant = double_quant;
  const std::int64_t blocks = q.blocks();
  const std::int64_t full = q.numel / block_size;  // blocks of block_size elements
  std::vector<float> absmax(static_cast<std::size_t>(blocks));
  std::vector<std::uint8_t> nibbles(static_cast<std::size_t>(q.numel + 1), 0);
  const SortedTable& table = sorted(type);
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t begin = b * block_size;
    const std::int64_t end = std::min(q.numel, begin + block_size);
    float amax = 0.0f;
    for (std::int64_t i = begin; i < end; ++i) amax = std::max(amax, std::fabs(w[i]));
    absmax[b] = amax;
    const float denom = std::max(amax, 1e-38f);
    // bitsandbytes multiplies full blocks by the reciprocal and divides the last short one.
    const float recip = 1.0f / denom;
    for (std::int64_t i = begin; i < end; ++i) {
      const float s = b < full ? w[i] * recip : w[i] / denom;
      nibbles[i] = encode(table, std::clamp(s, -1.0f, 1.0f));
    }
  }
  // An odd count is padded with a scaled 0 (the low nibble of the last byte).
  if (q.numel % 2 != 0) nibbles[q.numel] = encode(table, 0.0f);
  q.packed.resize(static_cast<std::size_t>((q.numel + 1) / 2));
  for (std::size_t i = 0; i < q.packed.size(); ++i) {
    q.packed[i] = static_cast<std::uint8_t>((nibbles[2 * i] << 4) | nibbles[2 * i + 1]);
  }
  if (!double_quant) {
    q.absmax = std::move(absmax);
    return q;
  }
  // The offset is the mean of the absmax (summed in f64, rounded once to f32).
  double sum = 0.0;
  for (const float a : absmax) sum += a;
  q.offset = static_cast<float>(sum / static_cast<double>(blocks));
  for (float& a : absmax) a -= q.offset;
  q.absmax_q.resize(absmax.size());
  q.absmax2.resize(static_cast<std::size_t>((blocks + kDoubleQuantBlock - 1) / kDoubleQuantBlock));
  quantize_8bit(absmax, q.absmax_q, q.absmax2);
  return q;
}

void dequantize_4bit(const Quant4Tensor& q, std::int64_t first, std::span<float> out) {
  const auto count = static_cast<std::int64_t>(out.size());
  TAILOR_ASSERT(first >= 0 && first + count <= q.numel,
                "dequantize_4bit: elements [{}, {}) outside a weight of {}", first, first + count,
                q.numel);
  const std::array<float, 16>& table = quant4_table(q.type);
  std::int64_t i = first;
  while (i < first + count) {
    const std::int64_t b = i / q.block_size;
    const std::int64_t end = std::min(first + count, (b + 1) * q.block_size);
    const float scale = q.block_scale(b);
    for (; i < end; ++i) {
      const std::uint8_t byte = q.packed[static_cast<std::size_t>(i / 2)];
      const std::uint8_t nibble = (i % 2 == 0) ? (byte >> 4) : (byte & 0x0F);
      out[i - first] = table[nibble] * scale;
    }
  }
}

}  // namespace tailor::model
