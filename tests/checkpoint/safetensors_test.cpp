// Writing and reading single safetensors files: round trips in F32 / BF16 / F16, the exact byte
// layout of a small file, atomic replacement, and the reader's API (names, info, raw, metadata).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "checkpoint/f16.h"
#include "checkpoint/safetensors.h"
#include "checkpoint_test_util.h"

namespace tailor::checkpoint {
namespace {

using testing::expect_user_error;
using testing::read_file;
using testing::TempDir;

std::vector<float> read_all(const SafetensorsFile& f, const std::string& name) {
  std::vector<float> out(static_cast<std::size_t>(f.info(name).numel));
  f.read_f32(name, out);
  return out;
}

TEST(SafetensorsWrite, ExactByteLayout) {
  TempDir dir;
  const std::vector<float> a = {1.0f, -2.0f};
  const std::vector<std::uint16_t> b = {0x3f80, 0x4000, 0x4040};  // bf16 1, 2, 3
  const std::vector<SafetensorsWriteTensor> tensors = {
      {"a", DType::kF32, {2}, a.data()}, {"b", DType::kBF16, {3}, b.data()}};
  write_safetensors(dir / "x.safetensors", tensors, {{"k", "v"}});

  // Hand-computed: 134 bytes of JSON + 2 spaces = 136 = 0x88, so the data starts at 144 (8-aligned).
  const std::string header =
      R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}})"
      "  ";
  std::vector<unsigned char> expected = {0x88, 0, 0, 0, 0, 0, 0, 0};
  expected.insert(expected.end(), header.begin(), header.end());
  for (unsigned char c : {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,  // f32 1, -2
                          0x80, 0x3f, 0x00, 0x40, 0x40, 0x40})            // bf16 1, 2, 3
    expected.push_back(c);
  ASSERT_EQ(header.size(), 136u);
  const auto got = read_file(dir / "x.safetensors");
  ASSERT_EQ(got.size(), 158u);
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(static_cast<unsigned char>(got[i]), expected[i]) << "byte " << i;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors.tmp"));
}

TEST(SafetensorsWrite, RoundTripsF32Exactly) {
  TempDir dir;
  const std::vector<float> w = {0.0f, -0.0f, 1.0f / 3.0f, 1e-40f, -3.4e38f, INFINITY, 7.25f, -1e-7f};
  const std::vector<float> scalar = {42.5f};
  const std::vector<SafetensorsWriteTensor> tensors = {
      {"model.layers.0.w", DType::kF32, {2, 4}, w.data()},
      {"scalar", DType::kF32, {}, scalar.data()},
      {"empty", DType::kF32, {0, 3}, nullptr}};
  write_safetensors(dir / "m.safetensors", tensors, {{"format", "pt"}, {"note", "ünïcödé"}});

  const SafetensorsFile f(dir / "m.safetensors");
  EXPECT_EQ(f.names(), (std::vector<std::string>{"model.layers.0.w", "scalar", "empty"}));
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcödé"}}));
  const auto& info = f.info("model.layers.0.w");
  EXPECT_EQ(info.dtype, "F32");
  EXPECT_EQ(info.element, DType::kF32);
  EXPECT_EQ(info.shape, (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(info.numel, 8);
  EXPECT_EQ(info.data_begin, 0u);
  EXPECT_EQ(info.data_end, 32u);
  const auto got = read_all(f, "model.layers.0.w");
  for (std::size_t i = 0; i < w.size(); ++i)
    EXPECT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(w[i])) << i;
  std::vector<double> d(8);
  f.read_f64("model.layers.0.w", d);
  for (std::size_t i = 0; i < w.size(); ++i) EXPECT_EQ(d[i], static_cast<double>(w[i]));
  EXPECT_EQ(read_all(f, "scalar"), scalar);
  EXPECT_TRUE(f.info("scalar").shape.empty());
  EXPECT_EQ(f.info("empty").numel, 0);
  EXPECT_TRUE(read_all(f, "empty").empty());
  EXPECT_EQ(f.raw("scalar").size(), 4u);
  float s = 0;
  std::memcpy(&s, f.raw("scalar").data(), 4);
  EXPECT_EQ(s, 42.5f);
}

TEST(SafetensorsWrite, RoundTripsBF16AndF16) {
  TempDir dir;
  // Exactly representable in both formats: read back equal.
  const std::vector<float> exact = {0.0f, -0.0f, 1.0f, -2.0f, 0.5f, 1.5f, -0.09375f, 96.0f, 61440.0f,
                                    std::ldexp(1.0f, -14), -INFINITY};
  // Not representable: read back as the format's nearest value.
  const std::vector<float> inexact = {0.1f, 1.0f / 3.0f, 1234.567f, 3.14159f};
  const auto bf_exact = encode_f32(exact, DType::kBF16);
  const auto h_exact = encode_f32(exact, DType::kF16);
  const auto bf_inexact = encode_f32(inexact, DType::kBF16);
  const auto h_inexact = encode_f32(inexact, DType::kF16);
  const auto n = static_cast<std::int64_t>(exact.size());
  const auto m = static_cast<std::int64_t>(inexact.size());
  const std::vector<SafetensorsWriteTensor> tensors = {
      {"bf.exact", DType::kBF16, {n}, bf_exact.data()},
      {"h.exact", DType::kF16, {n}, h_exact.data()},
      {"bf.inexact", DType::kBF16, {2, m / 2}, bf_inexact.data()},
      {"h.inexact", DType::kF16, {m / 2, 2}, h_inexact.data()}};
  write_safetensors(dir / "h.safetensors", tensors);

  const SafetensorsFile f(dir / "h.safetensors");
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_EQ(f.info("bf.exact").dtype, "BF16");
  EXPECT_EQ(f.info("h.exact").dtype, "F16");
  EXPECT_EQ(f.info("h.exact").data_begin, 2u * exact.size());  // packed, no gaps
  const auto bf = read_all(f, "bf.exact");
  const auto h = read_all(f, "h.exact");
  for (std::size_t i = 0; i < exact.size(); ++i) {
    EXPECT_EQ(std::bit_cast<std::uint32_t>(bf[i]), std::bit_cast<std::uint32_t>(exact[i])) << i;
    EXPECT_EQ(std::bit_cast<std::uint32_t>(h[i]), std::bit_cast<std::uint32_t>(exact[i])) << i;
  }
  const auto bfi = read_all(f, "bf.inexact");
  const auto hi = read_all(f, "h.inexact");
  for (std::size_t i = 0; i < inexact.size(); ++i) {
    EXPECT_EQ(bfi[i], round_to_bf16(inexact[i]));
    EXPECT_EQ(hi[i], f16_to_float(float_to_f16(inexact[i])));
    EXPECT_NE(hi[i], inexact[i]);
  }
  std::vector<double> d(inexact.size());
  f.read_f64("h.inexact", d);
  for (std::size_t i = 0; i < inexact.size(); ++i) EXPECT_EQ(d[i], static_cast<double>(hi[i]));
}

TEST(SafetensorsWrite, ReplacesAnExistingFileAtomically) {
  TempDir dir;
  const std::vector<float> one = {1.0f}, two = {2.0f, 3.0f};
  write_safetensors(dir / "r.safetensors", std::vector<SafetensorsWriteTensor>{{"x", DType::kF32, {1}, one.data()}});
  const SafetensorsFile before(dir / "r.safetensors");  // keeps the old mapping alive
  write_safetensors(dir / "r.safetensors", std::vector<SafetensorsWriteTensor>{{"y", DType::kF32, {2}, two.data()}});
  const SafetensorsFile after(dir / "r.safetensors");
  EXPECT_EQ(read_all(before, "x"), one);  // the old inode is untouched by the rename
  EXPECT_EQ(read_all(after, "y"), two);
  EXPECT_FALSE(after.has("x"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.str()), {}), 1);
}

TEST(SafetensorsWrite, RefusesBadNamesAndReportsIoFailures) {
  TempDir dir;
  const std::vector<float> v = {1.0f};
  const std::string path = dir / "bad.safetensors";
  expect_user_error([&] {
    write_safetensors(path, std::vector<SafetensorsWriteTensor>{{"a\nb", DType::kF32, {1}, v.data()}});
  }, path + ": tensor 'a\\x0ab': name contains control character U+000A");
  expect_user_error([&] {
    write_safetensors(path, std::vector<SafetensorsWriteTensor>{{"a", DType::kF32, {1}, v.data()},
                                                                {"a", DType::kF32, {1}, v.data()}});
  }, path + ": tensor 'a': name used twice");
  expect_user_error([&] {
    write_safetensors(path, std::vector<SafetensorsWriteTensor>{{"__metadata__", DType::kF32, {1}, v.data()}});
  }, path + ": tensor '__metadata__': name used twice");
  expect_user_error([&] {
    write_safetensors(path, std::vector<SafetensorsWriteTensor>{}, {{"k", std::string("\xff", 1)}});
  }, path + ": metadata 'k': not valid UTF-8");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_THROW(write_safetensors(dir / "no/such/dir/x.safetensors",
                                 std::vector<SafetensorsWriteTensor>{{"a", DType::kF32, {1}, v.data()}}),
               RuntimeError);
}

TEST(SafetensorsFile, IsMoveOnlyAndKeepsItsMappingWhenMoved) {
  static_assert(!std::is_copy_constructible_v<SafetensorsFile>);
  static_assert(std::is_nothrow_move_constructible_v<SafetensorsFile>);
  TempDir dir;
  const std::vector<float> v = {5.0f, 6.0f};
  write_safetensors(dir / "m.safetensors", std::vector<SafetensorsWriteTensor>{{"v", DType::kF32, {2}, v.data()}});
  SafetensorsFile a(dir / "m.safetensors");
  SafetensorsFile b(std::move(a));
  EXPECT_EQ(read_all(b, "v"), v);
  SafetensorsFile c(dir / "m.safetensors");
  c = std::move(b);
  EXPECT_EQ(read_all(c, "v"), v);
  EXPECT_EQ(c.path(), dir / "m.safetensors");
}

TEST(SafetensorsFile, EmptyHeaderIsAValidEmptyFile) {
  TempDir dir;
  write_safetensors(dir / "e.safetensors", std::vector<SafetensorsWriteTensor>{});
  EXPECT_EQ(read_file(dir / "e.safetensors").size(), 16u);  // "{}" + 6 spaces
  const SafetensorsFile f(dir / "e.safetensors");
  EXPECT_TRUE(f.names().empty());
}

}  // namespace
}  // namespace tailor::checkpoint
