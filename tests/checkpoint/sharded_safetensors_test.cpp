// Model directories: model.safetensors, or an index with shards (one of them a symlink, as in the
// Hub cache), and every way the index and the shards can disagree, with exact messages.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint/sharded_safetensors.h"
#include "checkpoint_test_util.h"

namespace tailor::checkpoint {
namespace {

namespace fs = std::filesystem;
using testing::expect_user_error;
using testing::TempDir;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Writes F32 tensors named `names`, tensor i holding {base + i, base + i + 0.5}.
void write_shard(const std::string& path, const std::vector<std::string>& names, float base) {
  std::vector<std::vector<float>> values;
  std::vector<SafetensorsWriteTensor> tensors;
  for (std::size_t i = 0; i < names.size(); ++i)
    values.push_back({base + static_cast<float>(i), base + static_cast<float>(i) + 0.5f});
  for (std::size_t i = 0; i < names.size(); ++i)
    tensors.push_back({names[i], DType::kF32, {2}, values[i].data()});
  write_safetensors(path, tensors);
}

std::vector<float> read(const ShardedSafetensors& m, const std::string& name) {
  std::vector<float> out(static_cast<std::size_t>(m.info(name).numel));
  m.read_f32(name, out);
  return out;
}

// A two-shard model; shard 2 is a symlink into ../blobs as in ~/.cache/huggingface/hub.
class ShardedModel : public ::testing::Test {
 protected:
  void SetUp() override {
    model = tmp / "snapshot";
    fs::create_directories(model);
    fs::create_directories(tmp / "blobs");
    write_shard(model + "/model-00001-of-00002.safetensors", {"embed.weight", "layers.0.w"}, 10);
    write_shard(tmp / "blobs/3f2a9c", {"layers.1.w", "norm.weight"}, 20);
    fs::create_symlink("../blobs/3f2a9c", model + "/model-00002-of-00002.safetensors");
  }
  void write_index(const std::string& weight_map) {
    write_text(model + "/model.safetensors.index.json",
               R"({"metadata":{"total_size":32},"weight_map":{)" + weight_map + "}}");
  }
  static std::string standard_map() {
    return R"("embed.weight":"model-00001-of-00002.safetensors",)"
           R"("layers.0.w":"model-00001-of-00002.safetensors",)"
           R"("layers.1.w":"model-00002-of-00002.safetensors",)"
           R"("norm.weight":"model-00002-of-00002.safetensors")";
  }
  [[nodiscard]] std::string index() const { return model + "/model.safetensors.index.json"; }

  TempDir tmp;
  std::string model;
};

TEST_F(ShardedModel, ReadsEveryTensorThroughTheIndexAndTheSymlink) {
  write_index(standard_map());
  const ShardedSafetensors m(model);
  EXPECT_EQ(m.file_count(), 2u);
  EXPECT_EQ(m.names(), (std::vector<std::string>{"embed.weight", "layers.0.w", "layers.1.w", "norm.weight"}));
  EXPECT_TRUE(m.has("norm.weight"));
  EXPECT_FALSE(m.has("lm_head.weight"));
  EXPECT_EQ(m.file_of("layers.0.w"), model + "/model-00001-of-00002.safetensors");
  EXPECT_EQ(m.file_of("norm.weight"), model + "/model-00002-of-00002.safetensors");
  EXPECT_EQ(read(m, "embed.weight"), (std::vector<float>{10.0f, 10.5f}));
  EXPECT_EQ(read(m, "layers.0.w"), (std::vector<float>{11.0f, 11.5f}));
  EXPECT_EQ(read(m, "layers.1.w"), (std::vector<float>{20.0f, 20.5f}));
  EXPECT_EQ(read(m, "norm.weight"), (std::vector<float>{21.0f, 21.5f}));
  std::vector<double> d(2);
  m.read_f64("norm.weight", d);
  EXPECT_EQ(d, (std::vector<double>{21.0, 21.5}));
  EXPECT_EQ(m.info("layers.1.w").shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(m.raw("layers.1.w").size(), 8u);
  expect_user_error([&] { (void)m.info("lm_head.weight"); }, model + ": tensor 'lm_head.weight': not in the model");
}

TEST_F(ShardedModel, SingleFileWinsOverTheIndex) {
  write_index(R"("a":"nowhere.safetensors")");  // never looked at
  write_shard(model + "/model.safetensors", {"only.w", "also.w"}, 1);
  const ShardedSafetensors m(model);
  EXPECT_EQ(m.names(), (std::vector<std::string>{"only.w", "also.w"}));
  EXPECT_EQ(m.file_of("also.w"), model + "/model.safetensors");
  EXPECT_EQ(read(m, "also.w"), (std::vector<float>{2.0f, 2.5f}));
}

TEST_F(ShardedModel, IndexEntriesMustBeBareFileNames) {
  const auto bad = [&](const std::string& file, const std::string& shown) {
    write_index(R"("embed.weight":")" + file + "\"");
    expect_user_error([&] { ShardedSafetensors m(model); },
                      index() + ": weight_map entry 'embed.weight': file name '" + shown +
                          "' must be a bare file name in the model directory");
  };
  bad("../blobs/3f2a9c", "../blobs/3f2a9c");
  bad("sub/model.safetensors", "sub/model.safetensors");
  bad("/etc/passwd", "/etc/passwd");
  bad("..", "..");
  bad(".", ".");
  bad("", "");
  bad("..\\\\evil.safetensors", "..\\\\evil.safetensors");
  bad("a\\u0000b", "a\\x00b");
}

TEST_F(ShardedModel, TensorMissingFromItsShard) {
  write_index(standard_map() + R"(,"lm_head.weight":"model-00001-of-00002.safetensors")");
  expect_user_error([&] { ShardedSafetensors m(model); },
                    model + "/model-00001-of-00002.safetensors: tensor 'lm_head.weight': listed in "
                            "model.safetensors.index.json but not in this file");
}

TEST_F(ShardedModel, TensorInTwoShards) {
  write_shard(model + "/model-00002-of-00002.safetensors.real", {"layers.1.w", "norm.weight", "layers.0.w"}, 20);
  fs::remove(model + "/model-00002-of-00002.safetensors");
  fs::rename(model + "/model-00002-of-00002.safetensors.real", model + "/model-00002-of-00002.safetensors");
  write_index(standard_map());
  expect_user_error([&] { ShardedSafetensors m(model); },
                    model + "/model-00002-of-00002.safetensors: tensor 'layers.0.w': also in "
                            "model-00001-of-00002.safetensors");
}

TEST_F(ShardedModel, TensorInAnotherShardThanListed) {
  write_index(R"("embed.weight":"model-00001-of-00002.safetensors",)"
              R"("layers.0.w":"model-00002-of-00002.safetensors",)"
              R"("layers.1.w":"model-00002-of-00002.safetensors",)"
              R"("norm.weight":"model-00002-of-00002.safetensors")");
  expect_user_error([&] { ShardedSafetensors m(model); },
                    model + "/model-00001-of-00002.safetensors: tensor 'layers.0.w': in this file, but "
                            "model.safetensors.index.json lists it in model-00002-of-00002.safetensors");
}

TEST_F(ShardedModel, TensorInAShardButNotInTheIndex) {
  write_index(R"("embed.weight":"model-00001-of-00002.safetensors",)"
              R"("layers.0.w":"model-00001-of-00002.safetensors",)"
              R"("layers.1.w":"model-00002-of-00002.safetensors")");
  expect_user_error([&] { ShardedSafetensors m(model); },
                    model + "/model-00002-of-00002.safetensors: tensor 'norm.weight': not listed in "
                            "model.safetensors.index.json");
}

TEST_F(ShardedModel, IndexNamesAFileThatIsNotThere) {
  write_index(standard_map() + R"(,"lm_head.weight":"model-00003-of-00003.safetensors")");
  expect_user_error([&] { ShardedSafetensors m(model); },
                    index() + ": weight_map entry 'lm_head.weight': file 'model-00003-of-00003.safetensors' "
                              "does not exist");
  // A dangling Hub-cache symlink (blob missing) is reported by the open itself.
  write_index(standard_map());
  fs::remove(tmp / "blobs/3f2a9c");
  expect_user_error([&] { ShardedSafetensors m(model); },
                    model + "/model-00002-of-00002.safetensors: cannot open: No such file or directory");
}

TEST_F(ShardedModel, BadShardIsReportedWithItsOwnPath) {
  write_index(standard_map());
  fs::resize_file(tmp / "blobs/3f2a9c", 100);
  expect_user_error([&] { ShardedSafetensors m(model); },
                    model + "/model-00002-of-00002.safetensors: header: length 128 runs past the end of "
                            "the file (100 bytes)");
}

TEST_F(ShardedModel, MalformedIndex) {
  const auto bad = [&](const std::string& text, const std::string& reason) {
    write_text(index(), text);
    expect_user_error([&] { ShardedSafetensors m(model); }, index() + ": " + reason);
  };
  bad(R"({"weight_map":)", "not valid JSON (error at byte 15)");
  bad(std::string(R"({"weight_map":{"a":"x"}})") + '\0' + "junk", "not valid JSON (error at byte 25)");
  bad("[]", "not a JSON object");
  bad(R"({"metadata":{}})", "no weight_map");
  bad(R"({"weight_map":[]})", "weight_map is not an object");
  bad(R"({"weight_map":{}})", "weight_map is empty");
  bad(R"({"weight_map":{"a":1}})", "weight_map entry 'a': file name is not a string");
  bad(R"({"weight_map":{"a\n":"x.safetensors"}})", "weight_map entry 'a\\x0a': name contains control character U+000A");
  bad(R"({"weight_map":{"a":"x.safetensors","a":"y.safetensors"}})", "weight_map entry 'a': appears twice");
}

TEST(ShardedSafetensorsErrors, DirectoryWithoutWeights) {
  TempDir dir;
  expect_user_error([&] { ShardedSafetensors m(dir.str()); },
                    dir.str() + ": no model.safetensors or model.safetensors.index.json in this directory");
  const std::string missing = dir / "nope";
  expect_user_error([&] { ShardedSafetensors m(missing); },
                    missing + ": no model.safetensors or model.safetensors.index.json in this directory");
}

}  // namespace
}  // namespace tailor::checkpoint
