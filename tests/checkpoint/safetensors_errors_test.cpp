// Every way a safetensors file can be wrong, each with its exact one-line message
// ("path: header: ..." or "path: tensor 'name': ..."), plus what is deliberately accepted.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"
#include "checkpoint_test_util.h"

namespace tailor::checkpoint {
namespace {

using testing::expect_user_error;
using testing::make_file;
using testing::TempDir;
using testing::write_file;

const std::string kName = "x.safetensors";

// parse_header on `header` + `data` bytes must fail with "x.safetensors: <reason>".
void expect_header_error(const std::string& header, std::size_t data, const std::string& reason) {
  SCOPED_TRACE(header.substr(0, 200));
  const auto bytes = make_file(header, data);
  expect_user_error([&] { (void)parse_header(bytes, kName); }, kName + ": " + reason);
}

// "{" + inner + "}", built by appending (g++ 12 misreports -Wrestrict on chained operator+).
std::string obj(const std::string& inner) {
  std::string s = "{";
  s.append(inner);
  s.push_back('}');
  return s;
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

TEST(SafetensorsHeaderErrors, FileAndLength) {
  expect_user_error([] { (void)parse_header(std::vector<std::byte>(5), kName); },
                    kName + ": header: file is 5 bytes, too short for a safetensors header");
  expect_user_error([] { (void)parse_header(make_file("{}", 0, 1000), kName); },
                    kName + ": header: length 1000 runs past the end of the file (10 bytes)");
  expect_user_error([] { (void)parse_header(make_file("{}", 0, 100'000'001), kName); },
                    kName + ": header: length 100000001 exceeds the limit of 100000000 bytes");
  expect_user_error([] { (void)parse_header(make_file("{}", 0, 0xffffffffffffffffull), kName); },
                    kName + ": header: length 18446744073709551615 exceeds the limit of 100000000 bytes");
}

TEST(SafetensorsHeaderErrors, NotJsonOrNotAnObject) {
  expect_header_error("[1,2]", 0, "header: not a JSON object");
  expect_header_error("", 4, "header: not a JSON object");
  expect_header_error(" {}", 0, "header: not a JSON object");
  expect_header_error(R"({"a":)", 0, "header: not valid JSON (error at byte 6)");
  expect_header_error("{}x", 0, "header: not valid JSON (error at byte 3)");
  expect_header_error("{} \x01", 0, "header: not valid JSON (error at byte 4)");
  expect_header_error(std::string("{}\0\0", 4), 0, "header: not valid JSON (error at byte 3)");
  expect_header_error("{\"\xff\":1}", 0, "header: not valid JSON (error at byte 3)");
  expect_header_error(R"({"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}})", 4,
                      "header: not valid JSON (error at byte 34)");
}

TEST(SafetensorsHeaderErrors, MissingFields) {
  expect_header_error(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8, "tensor 'a': missing dtype");
  expect_header_error(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8, "tensor 'a': missing shape");
  expect_header_error(R"({"a":{"dtype":"F32","shape":[2]}})", 8, "tensor 'a': missing data_offsets");
  expect_header_error(R"({"a":{}})", 0, "tensor 'a': missing dtype");
}

TEST(SafetensorsHeaderErrors, WrongTypes) {
  expect_header_error(R"({"a":1})", 0, "tensor 'a': entry is not an object");
  expect_header_error(R"({"a":[]})", 0, "tensor 'a': entry is not an object");
  expect_header_error(R"({"a":{"dtype":5,"shape":[],"data_offsets":[0,4]}})", 4,
                      "tensor 'a': dtype must be a string");
  expect_header_error(R"({"a":{"dtype":["F32"],"shape":[],"data_offsets":[0,4]}})", 4,
                      "tensor 'a': dtype must be a string");
  for (const char* shape : {"[-1]", "[2.0]", "[[1]]", "[{}]", "{}", "2", "[\"2\"]", "[true]", "null"})
    expect_header_error(obj(entry("a", "F32", shape, "[0,8]")), 8,
                        "tensor 'a': shape must be a list of non-negative integers");
  for (const char* offsets : {"[0]", "[0,8,8]", "[0,-8]", "[0,8.5]", "8", "[[0],8]", "{}", "[]"})
    expect_header_error(obj(entry("a", "F32", "[2]", offsets)), 8,
                        "tensor 'a': data_offsets must be two non-negative integers [begin, end]");
  expect_header_error(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":1}})", 4,
                      "tensor 'a': unknown field 'extra'");
  expect_header_error(R"({"a":{"dtype":"F32","dtype":"F32","shape":[],"data_offsets":[0,4]}})", 4,
                      "tensor 'a': field 'dtype' appears twice");
  // Nesting is refused as soon as it goes deeper than a valid header can.
  expect_header_error(obj(entry("a", "F32", std::string(100000, '['), "[0,4]")), 4,
                      "tensor 'a': shape must be a list of non-negative integers");
}

TEST(SafetensorsHeaderErrors, Metadata) {
  expect_header_error(R"({"__metadata__":[]})", 0, "header: __metadata__ is not an object");
  expect_header_error(R"({"__metadata__":"x"})", 0, "header: __metadata__ is not an object");
  expect_header_error(R"({"__metadata__":{"k":1}})", 0, "header: __metadata__ 'k' is not a string");
  expect_header_error(R"({"__metadata__":{"k":{}}})", 0, "header: __metadata__ 'k' is not a string");
  expect_header_error(R"({"__metadata__":{"k":"a","k":"b"}})", 0,
                      "header: __metadata__ key 'k' appears twice");
  expect_header_error(R"({"__metadata__":{},"__metadata__":{}})", 0, "header: __metadata__ appears twice");
  // null means no metadata, as in HF's reader.
  const auto h = parse_header(make_file(R"({"__metadata__":null})", 0), kName);
  EXPECT_TRUE(h.metadata.empty());
}

TEST(SafetensorsHeaderErrors, Dtypes) {
  expect_header_error(obj(entry("a", "Q8", "[2]", "[0,2]")), 2, "tensor 'a': unknown dtype 'Q8'");
  expect_header_error(obj(entry("a", "f32", "[2]", "[0,8]")), 8, "tensor 'a': unknown dtype 'f32'");
  expect_header_error(obj(entry("a", "F4", "[3]", "[0,2]")), 2,
                      "tensor 'a': F4 [3] is not a whole number of bytes");
  // Recognised but not readable types parse fine (reading them is the error: see SafetensorsFile).
  const auto h = parse_header(make_file(obj(entry("a", "F4", "[4]", "[0,2]") + "," +
                                        entry("b", "I64", "[2]", "[2,18]") + "," +
                                        entry("c", "BOOL", "[1]", "[18,19]")), 19), kName);
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_FALSE(h.tensors[1].element.has_value());
  EXPECT_EQ(h.tensors[1].dtype, "I64");
}

TEST(SafetensorsHeaderErrors, OffsetsAndSizes) {
  expect_header_error(obj(entry("a", "F32", "[4]", "[0,16]")), 10,
                      "tensor 'a': data_offsets [0, 16] run past the end of the data (10 bytes)");
  expect_header_error(obj(entry("a", "F32", "[3]", "[0,16]")), 16,
                      "tensor 'a': data_offsets [0, 16] hold 16 bytes but F32 [3] needs 12");
  expect_header_error(obj(entry("a", "BF16", "[2, 3]", "[4,8]")), 16,
                      "tensor 'a': data_offsets [4, 8] hold 4 bytes but BF16 [2, 3] needs 12");
  expect_header_error(obj(entry("a", "F32", "[0]", "[8,0]")), 16,
                      "tensor 'a': data_offsets [8, 0]: begin is after end");
  expect_header_error(obj(entry("a", "F32", "[1]", "[18446744073709551612,18446744073709551615]")),
                      16, "tensor 'a': data_offsets [18446744073709551612, 18446744073709551615] hold 3 "
                          "bytes but F32 [1] needs 4");
  expect_header_error(obj(entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]")),
                      12, "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
  // Overlap is found whatever the order in the header, and against the furthest-reaching tensor.
  expect_header_error(obj(entry("late", "F32", "[1]", "[8,12]") + "," +
                      entry("big", "F32", "[4]", "[0,16]") + "," + entry("small", "F32", "[1]", "[0,4]")),
                      16, "tensor 'big': data_offsets [0, 16] overlap tensor 'small' [0, 4]");
  expect_header_error(obj(entry("a", "U8", "[10]", "[0,10]") + "," + entry("b", "U8", "[1]", "[9,10]")),
                      10, "tensor 'b': data_offsets [9, 10] overlap tensor 'a' [0, 10]");
}

TEST(SafetensorsHeaderErrors, ShapeOverflow) {
  expect_header_error(obj(entry("a", "F32", "[4294967296,4294967296]", "[0,0]")), 0,
                      "tensor 'a': shape [4294967296, 4294967296] is too large");
  expect_header_error(obj(entry("a", "F32", "[4611686018427387904]", "[0,0]")), 0,
                      "tensor 'a': shape [4611686018427387904] is too large");
  expect_header_error(obj(entry("a", "F32", "[0,9223372036854775808]", "[0,0]")), 0,
                      "tensor 'a': shape [0, 9223372036854775808] is too large");
  expect_header_error(obj(entry("a", "F32", "[18446744073709551615]", "[0,0]")), 0,
                      "tensor 'a': shape [18446744073709551615] is too large");
  expect_header_error(obj(entry("a", "F32", "[1,1,1,1,1,1,1]", "[0,4]")), 4,
                      "tensor 'a': shape has more than 6 dimensions");
  // Rank 6 is the limit, and a zero dimension makes an empty tensor.
  const auto h = parse_header(make_file(obj(entry("a", "F32", "[1,2,1,2,1,2]", "[0,32]") + "," +
                                        entry("b", "F32", "[3,0,1000000]", "[5,5]")), 32), kName);
  EXPECT_EQ(h.tensors[0].numel, 8);
  EXPECT_EQ(h.tensors[1].numel, 0);
}

TEST(SafetensorsHeaderErrors, Names) {
  expect_header_error(obj(entry("", "F32", "[]", "[0,4]")), 4, "tensor '': name is empty");
  expect_header_error(obj(entry("a\\u0001", "F32", "[]", "[0,4]")), 4,
                      "tensor 'a\\x01': name contains control character U+0001");
  expect_header_error(obj(entry("a\\nb", "F32", "[]", "[0,4]")), 4,
                      "tensor 'a\\x0ab': name contains control character U+000A");
  expect_header_error(obj(entry("x\\u0085", "F32", "[]", "[0,4]")), 4,
                      "tensor 'x\\xc2\\x85': name contains control character U+0085");
  expect_header_error(obj(entry("a\\u0000", "F32", "[]", "[0,4]")), 4,
                      "tensor 'a\\x00': name contains control character U+0000");
  expect_header_error(obj(entry(std::string(1025, 'n'), "F32", "[]", "[0,4]")), 4,
                      "tensor '" + std::string(64, 'n') + "...': name is longer than 1024 bytes");
  expect_header_error(obj(entry("a", "F32", "[]", "[0,4]") + "," + entry("a", "F32", "[]", "[4,8]")),
                      8, "tensor 'a': appears twice in the header");
  // Quotes and backslashes in a name are shown escaped; non-ASCII text is shown as is.
  expect_header_error(obj(entry("it's\\\\", "Q", "[]", "[0,4]")), 4,
                      "tensor 'it\\'s\\\\': unknown dtype 'Q'");
  const auto h = parse_header(make_file(obj(entry("Ω.wëight.😀", "F32", "[]", "[0,4]") + "," +
                                        entry(std::string(1024, 'n'), "F32", "[]", "[4,8]")), 8),
                              kName);
  EXPECT_EQ(h.tensors[0].name, "Ω.wëight.😀");
}

TEST(SafetensorsHeader, AcceptsWhatTheFormatAllows) {
  // Gaps between tensors, empty tensors inside other ranges, trailing padding, any key order.
  std::string header = obj(entry("b", "F32", "[1]", "[8,12]") + "," + entry("e", "F32", "[0]", "[2,2]") +
                           R"(,"__metadata__":{"k":"v"},"a":{"data_offsets":[0,4],"shape":[1],"dtype":"F32"})");
  header.append("      \t\n");
  const auto h = parse_header(make_file(header, 16), kName);
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].name, "b");
  EXPECT_EQ(h.tensors[2].name, "a");
  EXPECT_EQ(h.metadata.at("k"), "v");
  EXPECT_EQ(h.data_start, 8 + header.size());
  EXPECT_EQ(h.data_size, 16u);
}

// The same checks through a file on disk, and the reader's own errors.
TEST(SafetensorsFileErrors, OpenAndTruncation) {
  TempDir dir;
  const std::string missing = dir / "missing.safetensors";
  expect_user_error([&] { SafetensorsFile f(missing); }, missing + ": cannot open: No such file or directory");
  expect_user_error([&] { SafetensorsFile f(dir.str()); }, dir.str() + ": not a regular file");

  const std::vector<float> v = {1, 2, 3, 4};
  const std::string path = dir / "t.safetensors";
  write_safetensors(path, std::vector<SafetensorsWriteTensor>{{"w", DType::kF32, {4}, v.data()}});
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 3);  // a download cut short
  expect_user_error([&] { SafetensorsFile f(path); },
                    path + ": tensor 'w': data_offsets [0, 16] run past the end of the data (13 bytes)");
  std::filesystem::resize_file(path, 20);  // cut inside the header
  expect_user_error([&] { SafetensorsFile f(path); },
                    path + ": header: length 56 runs past the end of the file (20 bytes)");
  std::filesystem::resize_file(path, 3);
  expect_user_error([&] { SafetensorsFile f(path); },
                    path + ": header: file is 3 bytes, too short for a safetensors header");
  std::filesystem::resize_file(path, 0);
  expect_user_error([&] { SafetensorsFile f(path); },
                    path + ": header: file is 0 bytes, too short for a safetensors header");
}

TEST(SafetensorsFileErrors, UnsupportedDtypeWrongSizeUnknownName) {
  TempDir dir;
  const std::string path = dir / "i.safetensors";
  write_file(path, make_file(obj(entry("ids", "I64", "[2]", "[0,16]") + "," +
                             entry("d", "F64", "[1]", "[16,24]") + "," + entry("w", "F32", "[2]", "[24,32]")),
                             32));
  const SafetensorsFile f(path);
  std::vector<float> two(2), three(3);
  std::vector<double> dtwo(2);
  expect_user_error([&] { f.read_f32("ids", two); },
                    path + ": tensor 'ids': dtype I64 is not supported (Tailor reads F32, F16 and BF16)");
  expect_user_error([&] { f.read_f64("d", dtwo); },
                    path + ": tensor 'd': dtype F64 is not supported (Tailor reads F32, F16 and BF16)");
  expect_user_error([&] { f.read_f32("w", three); }, path + ": tensor 'w': has 2 elements [2], expected 3");
  expect_user_error([&] { (void)f.info("zz"); }, path + ": tensor 'zz': not in this file");
  expect_user_error([&] { (void)f.raw("zz"); }, path + ": tensor 'zz': not in this file");
  EXPECT_EQ(f.raw("ids").size(), 16u);  // raw bytes stay available for any dtype
  f.read_f32("w", two);
}

}  // namespace
}  // namespace tailor::checkpoint
