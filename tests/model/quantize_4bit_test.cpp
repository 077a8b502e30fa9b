// NF4 / FP4 block quantization against bitsandbytes itself (tests/golden/make_qlora_fixtures.py
// -> tests/golden/qlora/quant4_cases.json, bitsandbytes' CPU quantize_4bit / dequantize_4bit):
// the packed nibbles, the absmax (or, with double quantization, the 8-bit absmax codes, the
// second-level scales and the offset) and the dequantized values must be equal bit for bit, and
// Tailor's code tables must be bitsandbytes' tables. Cases: a ragged last block and an odd count
// (the padding nibble), an all-zero block, exact table values and midpoints, block 128, and 257
// blocks under double quantization (two 256-blocks of absmax, the second holding one value).
#include "model/quantize_4bit.h"

#include <bit>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

namespace tailor::model {
namespace {

const char* kCases = TAILOR_SOURCE_DIR "/tests/golden/qlora/quant4_cases.json";

const nlohmann::json& cases() {
  static const nlohmann::json j = [] {
    std::ifstream f(kCases);
    return nlohmann::json::parse(f);
  }();
  return j.at("cases");
}

float f32(std::uint32_t bits) { return std::bit_cast<float>(bits); }
std::uint32_t bits(float v) { return std::bit_cast<std::uint32_t>(v); }

std::vector<float> floats(const nlohmann::json& a) {
  std::vector<float> v;
  for (const auto& x : a) v.push_back(f32(x.get<std::uint32_t>()));
  return v;
}

// The fixture script's formula input (exact in f32), for cases too large to store.
std::vector<float> formula_input(std::int64_t rows, std::int64_t cols) {
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (std::int64_t i = 0; i < rows * cols; ++i) {
    const auto m = static_cast<float>((i * 40503) % 65521 - 32760);
    v[i] = m * 0x1p-21f * static_cast<float>(1 + (i / cols) % 7);
  }
  return v;
}

std::vector<float> input_of(const nlohmann::json& c) {
  if (c.contains("input")) return floats(c.at("input"));
  const auto shape = c.at("shape").get<std::vector<std::int64_t>>();
  return formula_input(shape.at(0), shape.at(1));
}

TEST(Quantize4bit, TablesAreBitsandbytesTables) {
  for (const auto& c : cases()) {
    if (!c.at("double_quant").get<bool>()) continue;
    const auto code8 = c.at("code8").get<std::vector<std::uint32_t>>();
    ASSERT_EQ(code8.size(), 256u);
    for (std::size_t i = 0; i < 256; ++i) {
      EXPECT_EQ(bits(dynamic_table_8bit()[i]), code8[i]) << "8-bit dynamic table entry " << i;
    }
  }
  // The 4-bit tables are checked through dequantization (every nibble occurs in the cases).
}

TEST(Quantize4bit, EqualsBitsandbytesBitwise) {
  ASSERT_FALSE(cases().empty());
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const Quant4Type type = c.at("quant_type") == "nf4" ? Quant4Type::kNf4 : Quant4Type::kFp4;
    const auto block = c.at("block_size").get<std::int64_t>();
    const bool dq = c.at("double_quant").get<bool>();
    const std::vector<float> w = input_of(c);
    const Quant4Tensor q = quantize_4bit(w, type, block, dq);

    EXPECT_EQ(q.packed, c.at("packed").get<std::vector<std::uint8_t>>());
    if (dq) {
      EXPECT_EQ(q.absmax_q, c.at("absmax_q").get<std::vector<std::uint8_t>>());
      EXPECT_EQ(c.at("absmax2_block_size").get<std::int64_t>(), kDoubleQuantBlock);
      const auto a2 = c.at("absmax2").get<std::vector<std::uint32_t>>();
      ASSERT_EQ(q.absmax2.size(), a2.size());
      for (std::size_t i = 0; i < a2.size(); ++i) EXPECT_EQ(bits(q.absmax2[i]), a2[i]) << i;
      EXPECT_EQ(bits(q.offset), c.at("offset").get<std::uint32_t>());
      EXPECT_TRUE(q.absmax.empty());
    } else {
      const auto a = c.at("absmax").get<std::vector<std::uint32_t>>();
      ASSERT_EQ(q.absmax.size(), a.size());
      for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(bits(q.absmax[i]), a[i]) << i;
    }

    // Dequantized as a whole and in ragged tiles that cross block boundaries: both bitwise equal.
    const auto stride = c.at("dequant_stride").get<std::size_t>();
    const auto want = c.at("dequantized").get<std::vector<std::uint32_t>>();
    std::vector<float> whole(w.size());
    dequantize_4bit(q, 0, whole);
    std::vector<float> tiled(w.size());
    const std::int64_t tile = 37;
    for (std::int64_t first = 0; first < q.numel; first += tile) {
      const std::int64_t n = std::min(tile, q.numel - first);
      dequantize_4bit(q, first, std::span<float>(tiled).subspan(first, n));
    }
    ASSERT_EQ(want.size(), (w.size() + stride - 1) / stride);
    int mismatches = 0;
    for (std::size_t k = 0; k < want.size(); ++k) {
      const std::size_t i = k * stride;
      if (bits(whole[i]) != want[k] && ++mismatches <= 5) {
        ADD_FAILURE() << "element " << i << ": " << whole[i] << " vs bitsandbytes " << f32(want[k]);
      }
      EXPECT_EQ(bits(tiled[i]), bits(whole[i])) << "tile-wise dequantization, element " << i;
    }
    EXPECT_EQ(mismatches, 0);
  }
}

TEST(Quantize4bit, StorageBytes) {
  // 1001 values in blocks of 64: 501 packed bytes + 16 f32 absmax.
  const std::vector<float> w(1001, 0.5f);
  EXPECT_EQ(quantize_4bit(w, Quant4Type::kNf4, 64, false).bytes(), 501 + 16 * 4);
  // Double quantization: 501 + 16 one-byte codes + one f32 second-level scale + the offset.
  EXPECT_EQ(quantize_4bit(w, Quant4Type::kNf4, 64, true).bytes(), 501 + 16 + 4 + 4);
}

}  // namespace
}  // namespace tailor::model
