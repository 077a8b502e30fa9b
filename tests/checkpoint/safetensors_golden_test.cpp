// Files written by Hugging Face's `safetensors` package (tests/golden/make_safetensors_fixture.py):
// Tailor reads back exactly what the reference stored, its f16 rounding equals numpy's, and its
// writer reproduces the reference's bytes for the same tensors in the same order.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/f16.h"
#include "checkpoint/safetensors.h"
#include "checkpoint_test_util.h"

namespace tailor::checkpoint {
namespace {

using testing::expect_user_error;
using testing::read_file;
using testing::TempDir;

const std::string kDir = std::string(TAILOR_SOURCE_DIR) + "/tests/golden/safetensors/";

nlohmann::json expected() {
  std::ifstream f(kDir + "reference.json");
  return nlohmann::json::parse(f);
}

std::vector<std::uint32_t> f32_bits(const SafetensorsFile& f, const std::string& name) {
  std::vector<float> v(static_cast<std::size_t>(f.info(name).numel));
  f.read_f32(name, v);
  std::vector<std::uint32_t> out;
  for (float x : v) out.push_back(std::bit_cast<std::uint32_t>(x));
  return out;
}

TEST(SafetensorsGolden, HeaderMatchesTheReference) {
  const auto want = expected();
  const SafetensorsFile f(kDir + "reference.safetensors");
  EXPECT_EQ(f.names(), want["order"].get<std::vector<std::string>>());
  EXPECT_EQ(f.metadata(), (want["metadata"].get<std::map<std::string, std::string>>()));
  for (const auto& [name, t] : want["tensors"].items()) {
    SCOPED_TRACE(name);
    const auto& info = f.info(name);
    EXPECT_EQ(info.dtype, t["dtype"].get<std::string>());
    EXPECT_EQ(info.shape, t["shape"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(info.data_begin, t["data_offsets"][0].get<std::uint64_t>());
    EXPECT_EQ(info.data_end, t["data_offsets"][1].get<std::uint64_t>());
  }
  EXPECT_EQ(read_file(kDir + "reference.safetensors").size(), want["file_size"].get<std::size_t>());
}

TEST(SafetensorsGolden, ValuesAreExactlyWhatTheReferenceStored) {
  const auto want = expected()["values"];
  const SafetensorsFile f(kDir + "reference.safetensors");
  // F32, NaN payload and signed zero included.
  EXPECT_EQ(f32_bits(f, "model.f32"), want["model.f32"].get<std::vector<std::uint32_t>>());
  EXPECT_EQ(f32_bits(f, "model.scalar"), want["model.scalar"].get<std::vector<std::uint32_t>>());
  // BF16 -> f32 is a shift.
  std::vector<std::uint32_t> bf;
  for (auto b : want["model.bf16"].get<std::vector<std::uint32_t>>()) bf.push_back(b << 16);
  EXPECT_EQ(f32_bits(f, "model.bf16"), bf);
  // F16: decoded values, and the raw bits equal numpy's rounding of the inputs and Tailor's.
  const auto f16 = want["model.f16"].get<std::vector<std::uint16_t>>();
  const auto got = f32_bits(f, "model.f16");
  const auto inputs = f32_bits(f, "model.f16_inputs");
  EXPECT_EQ(inputs, want["model.f16_inputs"].get<std::vector<std::uint32_t>>());
  const auto raw = f.raw("model.f16");
  ASSERT_EQ(raw.size(), 2 * f16.size());
  for (std::size_t i = 0; i < f16.size(); ++i) {
    std::uint16_t stored;
    std::memcpy(&stored, raw.data() + 2 * i, 2);
    EXPECT_EQ(stored, f16[i]) << i;
    EXPECT_EQ(got[i], std::bit_cast<std::uint32_t>(f16_to_float(f16[i]))) << i;
    EXPECT_EQ(float_to_f16(std::bit_cast<float>(inputs[i])), f16[i]) << "input " << i;
  }
  std::vector<double> d(f16.size());
  f.read_f64("model.f16", d);
  for (std::size_t i = 0; i < f16.size(); ++i)
    EXPECT_EQ(std::bit_cast<std::uint64_t>(d[i]),
              std::bit_cast<std::uint64_t>(static_cast<double>(f16_to_float(f16[i]))));
  // An empty tensor, and an I64 tensor: raw bytes are there, conversion is refused.
  EXPECT_EQ(f.info("model.empty").numel, 0);
  const auto ids = want["model.ids"].get<std::vector<std::int64_t>>();
  ASSERT_EQ(f.raw("model.ids").size(), 8 * ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::int64_t v;
    std::memcpy(&v, f.raw("model.ids").data() + 8 * i, 8);
    EXPECT_EQ(v, ids[i]);
  }
  std::vector<float> out(ids.size());
  expect_user_error([&] { f.read_f32("model.ids", out); },
                    kDir + "reference.safetensors: tensor 'model.ids': dtype I64 is not supported "
                           "(Tailor reads F32, F16 and BF16)");
}

TEST(SafetensorsGolden, WriterReproducesTheReferenceBytes) {
  const std::string ref_path = kDir + "writer.safetensors";
  const SafetensorsFile ref(ref_path);
  std::vector<SafetensorsWriteTensor> tensors;
  for (const SafetensorsTensorInfo& t : ref.tensors())
    tensors.push_back({t.name, *t.element, t.shape, ref.raw(t.name).data()});
  TempDir dir;
  write_safetensors(dir / "w.safetensors", tensors, ref.metadata());
  EXPECT_EQ(read_file(dir / "w.safetensors"), read_file(ref_path));
}

}  // namespace
}  // namespace tailor::checkpoint
