// HDF5 training checkpoints: resharding of pieces against direct indexing of a global tensor, the
// save sequence, verification of damaged and hostile checkpoints, retention, and the files being
// readable by HDF5's own tools.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "checkpoint/training_checkpoint.h"
#include "core/error.h"
#include "core/sha256.h"

namespace tailor::checkpoint {
namespace {

namespace fs = std::filesystem;
using h5::Placement;

class Tmp {
 public:
  Tmp() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            (std::string("tailor-ckpt-") + info->name() + "-" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~Tmp() { fs::remove_all(path_); }
  [[nodiscard]] std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

// The shard of a [rows, cols] global tensor split on `dim` into `parts` (part `i`), flat range
// [begin, end) of it.
Placement shard(std::int64_t rows, std::int64_t cols, int dim, int parts, int i,
                std::int64_t begin = 0, std::int64_t end = -1) {
  Placement p;
  p.global_shape = Shape{rows, cols};
  p.shard_dim = parts == 1 ? -1 : dim;
  const std::int64_t n = (dim == 0 ? rows : cols) / parts;
  p.local_shape = dim == 0 || parts == 1 ? Shape{parts == 1 ? rows : n, cols} : Shape{rows, n};
  p.shard_offset = parts == 1 ? 0 : i * n;
  p.flat_begin = begin;
  p.flat_end = end < 0 ? p.local_shape.numel() : end;
  return p;
}

// Value of global element (r, c): unique, exactly representable.
double value_at(std::int64_t r, std::int64_t c) { return static_cast<double>(r * 1000 + c); }

// The values of placement p, straight from the global definition.
std::vector<double> values_of(const Placement& p) {
  std::vector<double> v;
  const std::int64_t cols = p.local_shape[1];
  for (std::int64_t f = p.flat_begin; f < p.flat_end; ++f) {
    std::int64_t r = f / cols, c = f % cols;
    if (p.shard_dim == 0) r += p.shard_offset;
    if (p.shard_dim == 1) c += p.shard_offset;
    v.push_back(value_at(r, c));
  }
  return v;
}

TEST(CopyOverlap, ReshardsBetweenRowColumnAndZeroLayoutsExactly) {
  const std::int64_t rows = 12, cols = 8;
  std::mt19937 rng(7);
  // Source layouts: rows split in 2 / 4, columns split in 2, whole; each cut into ZeRO ranges.
  struct Layout {
    int dim, parts;
  };
  const Layout layouts[] = {{0, 1}, {0, 2}, {0, 4}, {1, 2}, {1, 4}};
  for (const Layout& src : layouts) {
    for (const Layout& dst : layouts) {
      // Pieces of every source shard, each cut at random points into flat ranges.
      std::vector<std::pair<Placement, std::vector<double>>> pieces;
      for (int i = 0; i < src.parts; ++i) {
        const Placement whole = shard(rows, cols, src.dim, src.parts, i);
        const std::int64_t n = whole.local_shape.numel();
        std::int64_t a = 0;
        while (a < n) {
          const std::int64_t b = std::min<std::int64_t>(n, a + 1 + static_cast<std::int64_t>(rng() % 17));
          const Placement p = shard(rows, cols, src.dim, src.parts, i, a, b);
          pieces.emplace_back(p, values_of(p));
          a = b;
        }
      }
      for (int j = 0; j < dst.parts; ++j) {
        const Placement whole = shard(rows, cols, dst.dim, dst.parts, j);
        const std::int64_t n = whole.local_shape.numel();
        const std::int64_t a = static_cast<std::int64_t>(rng() % static_cast<unsigned>(n));
        const std::int64_t b = a + 1 + static_cast<std::int64_t>(rng() % static_cast<unsigned>(n - a));
        const Placement target = shard(rows, cols, dst.dim, dst.parts, j, a, b);
        std::vector<double> got(static_cast<std::size_t>(b - a), -1.0);
        std::int64_t copied = 0;
        for (const auto& [p, v] : pieces)
          copied += copy_overlap(p, v.data(), target, got.data(), sizeof(double));
        EXPECT_EQ(copied, b - a);
        EXPECT_EQ(got, values_of(target)) << "src " << src.dim << "/" << src.parts << " dst "
                                          << dst.dim << "/" << dst.parts;
      }
    }
  }
}

// A one-rank checkpoint of two tensors (one 2-D, one 1-D) and their optimizer state.
struct Saved {
  std::vector<float> w, b, m;
  std::string dir;
};

Saved save_one(const std::string& root, std::int64_t step, std::int64_t keep_last = 0,
               std::int64_t keep_every = 0) {
  Saved s;
  s.w.resize(6 * 5);
  s.b.resize(7);
  s.m.resize(6 * 5);
  std::iota(s.w.begin(), s.w.end(), static_cast<float>(step));
  std::iota(s.b.begin(), s.b.end(), -3.5f);
  std::iota(s.m.begin(), s.m.end(), 0.25f);
  SaveRequest req;
  req.checkpoints_dir = root + "/checkpoints";
  req.step = step;
  req.write_model = true;
  Placement pw;
  pw.global_shape = pw.local_shape = Shape{6, 5};
  pw.flat_end = 30;
  Placement pb;
  pb.global_shape = pb.local_shape = Shape{7};
  pb.flat_end = 7;
  req.model.push_back({"w", pw, backend::Tensor{s.w.data(), DType::kF32, Shape{30}}});
  req.model.push_back({"b", pb, backend::Tensor{s.b.data(), DType::kF32, Shape{7}}});
  req.write_optimizer = true;
  req.optimizer.push_back({"exp_avg/w", pw, backend::Tensor{s.m.data(), DType::kF32, Shape{30}}});
  req.state.step = step;
  req.state.data_cursor = step * 4;
  req.manifest.dtype = "f32";
  req.manifest.optimizer = "adamw";
  req.manifest.optimizer_steps = step;  // one update per step, none skipped
  req.config_yaml = "train: {steps: 10}\n";
  req.keep_last = keep_last;
  req.keep_every = keep_every;
  comm::SelfCommunicator self;
  s.dir = save_checkpoint(req, self);
  return s;
}

std::string user_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TrainingCheckpoint, SavesVerifiesAndReadsBack) {
  Tmp tmp;
  const Saved s = save_one(tmp.str(), 3);
  EXPECT_EQ(s.dir, tmp.str() + "/checkpoints/step_3");
  EXPECT_EQ(latest_checkpoint(tmp.str() + "/checkpoints"), s.dir);
  EXPECT_FALSE(fs::exists(s.dir + ".tmp"));
  const Manifest m = read_manifest(s.dir);
  EXPECT_EQ(m.step, 3);
  EXPECT_EQ(m.files.size(), 4u);  // config, model, optimizer, state
  EXPECT_NO_THROW(verify_checkpoint(s.dir, m));
  CheckpointReader model(s.dir, m, "model-");
  Placement pw;
  pw.global_shape = pw.local_shape = Shape{6, 5};
  pw.flat_end = 30;
  std::vector<float> w(30);
  model.read("w", pw, backend::Tensor{w.data(), DType::kF32, Shape{30}});
  EXPECT_EQ(w, s.w);
  // A ZeRO-like range of the optimizer state.
  CheckpointReader optim(s.dir, m, "optim-");
  Placement part = pw;
  part.flat_begin = 7;
  part.flat_end = 19;
  std::vector<float> m2(12);
  optim.read("exp_avg/w", part, backend::Tensor{m2.data(), DType::kF32, Shape{12}});
  EXPECT_EQ(m2, std::vector<float>(s.m.begin() + 7, s.m.begin() + 19));
  const RankState st = read_rank_state(s.dir, read_manifest(s.dir), 0);
  EXPECT_EQ(st.step, 3);
  EXPECT_EQ(st.data_cursor, 12);
}

TEST(TrainingCheckpoint, SameTensorsGiveByteIdenticalFiles) {
  Tmp a, b;
  const Saved sa = save_one(a.str(), 5);
  const Saved sb = save_one(b.str(), 5);
  const Manifest ma = read_manifest(sa.dir), mb = read_manifest(sb.dir);
  ASSERT_EQ(ma.files.size(), mb.files.size());
  for (std::size_t i = 0; i < ma.files.size(); ++i) EXPECT_EQ(ma.files[i].sha256, mb.files[i].sha256);
}

TEST(TrainingCheckpoint, RefusesMismatchedShapesDtypesAndMissingTensors) {
  Tmp tmp;
  const Saved s = save_one(tmp.str(), 1);
  const Manifest m = read_manifest(s.dir);
  CheckpointReader r(s.dir, m, "model-");
  Placement p;
  p.global_shape = p.local_shape = Shape{6, 4};
  p.flat_end = 24;
  std::vector<float> buf(30);
  EXPECT_EQ(user_error_of([&] { r.read("w", p, {buf.data(), DType::kF32, Shape{24}}); }),
            s.dir + ": tensor w: shape [6, 5] in the checkpoint, [6, 4] in the model");
  p.global_shape = p.local_shape = Shape{6, 5};
  p.flat_end = 30;
  std::vector<double> d(30);
  EXPECT_EQ(user_error_of([&] { r.read("w", p, {d.data(), DType::kF64, Shape{30}}); }),
            s.dir + "/model-tp0-of-1.h5: tensor w is f32, the run trains in f64");
  EXPECT_EQ(user_error_of([&] { r.read("nope", p, {buf.data(), DType::kF32, Shape{30}}); }),
            s.dir + ": tensor nope is missing from the checkpoint");
}

void flip_byte(const std::string& path, std::uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

void edit_manifest(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  std::ifstream in(dir + "/manifest.json");
  nlohmann::json j = nlohmann::json::parse(in);
  in.close();
  edit(j);
  std::ofstream(dir + "/manifest.json") << j.dump(2);
}

TEST(TrainingCheckpoint, DamagedAndHostileCheckpointsAreRefusedWithOneLine) {
  Tmp tmp;
  const Saved s = save_one(tmp.str(), 2);
  const std::string model = s.dir + "/model-tp0-of-1.h5";
  const auto verify = [&] {
    return user_error_of([&] { verify_checkpoint(s.dir, read_manifest(s.dir)); });
  };
  {  // a flipped byte
    flip_byte(model, fs::file_size(model) / 2);
    EXPECT_EQ(verify(), model + ": SHA-256 differs from the manifest (the file is damaged)");
    flip_byte(model, fs::file_size(model) / 2);
    EXPECT_EQ(verify(), "(no error)");
  }
  {  // truncated
    const auto size = fs::file_size(model);
    const std::string backup = model + ".bak";
    fs::copy_file(model, backup);
    fs::resize_file(model, size - 100);
    EXPECT_EQ(verify(), fmt::format("{}: {} bytes, the manifest says {} (truncated or replaced)",
                                    model, size - 100, size));
    // The HDF5 layer refuses the truncated file too, naming it.
    EXPECT_NE(user_error_of([&] { (void)h5::File::open(model).list(); }), "(no error)");
    fs::rename(backup, model);
  }
  const std::string manifest = s.dir + "/manifest.json";
  edit_manifest(s.dir, [](nlohmann::json& j) { j["format_version"] = 99; });
  EXPECT_EQ(verify(), manifest + ": format version 99 is not supported by this build (it reads 1)");
  edit_manifest(s.dir, [](nlohmann::json& j) { j["format_version"] = 1; j["files"][0]["name"] = "../../etc/passwd"; });
  EXPECT_EQ(verify(), manifest + ": names a file outside the checkpoint directory: '../../etc/passwd'");
  edit_manifest(s.dir, [](nlohmann::json& j) { j["files"][0]["name"] = "/etc/passwd"; });
  EXPECT_EQ(verify(), manifest + ": names a file outside the checkpoint directory: '/etc/passwd'");
  edit_manifest(s.dir, [](nlohmann::json& j) {
    j["files"][0]["name"] = "config.yaml";
    j["files"][1]["name"] = "missing.h5";
  });
  EXPECT_EQ(verify(), s.dir + "/missing.h5: missing");
  std::ofstream(manifest) << "{not json";
  EXPECT_EQ(verify(), manifest + ": malformed JSON at line 1, column 3");
}

TEST(TrainingCheckpoint, ResumeSkipsADamagedLatestForTheNewestThatVerifies) {
  Tmp tmp;
  save_one(tmp.str(), 1);
  save_one(tmp.str(), 2);
  const Saved s3 = save_one(tmp.str(), 3);
  const std::string ck = tmp.str() + "/checkpoints";
  ASSERT_EQ(find_resumable(ck, nullptr)->step, 3);
  flip_byte(s3.dir + "/optim-tp0-dp0-of-1x1.h5", 100);
  std::vector<std::string> rejected;
  const auto r = find_resumable(ck, &rejected);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->step, 2);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_NE(rejected[0].find("optim-tp0-dp0-of-1x1.h5: SHA-256 differs"), std::string::npos);
  // An uncommitted directory (a crash before the rename) is never a candidate.
  fs::create_directories(ck + "/step_9.tmp");
  EXPECT_EQ(find_resumable(ck, nullptr)->step, 2);
}

// A directory named like a step too large for a step counter is not a checkpoint (parsing its
// name overflowed, issue 27 item 4), nor is one past the largest step a manifest may hold.
TEST(TrainingCheckpoint, StepDirectoryNamesThatOverflowAreNotCheckpoints) {
  Tmp tmp;
  const Saved s = save_one(tmp.str(), 3);
  const std::string ck = tmp.str() + "/checkpoints";
  for (const char* name : {"step_9999999999999999999", "step_18446744073709551621",
                           "step_1000000000000001"})
    fs::copy(s.dir, ck + "/" + name);
  const std::vector<CheckpointRef> all = list_checkpoints(ck);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].step, 3);
  EXPECT_EQ(find_resumable(ck, nullptr)->step, 3);
}

// validate_checkpoint, the one entry point of every model-free check (and of the checkpoint fuzz
// target): a good checkpoint passes; a hostile HDF5 file, a forged state file and a forged
// manifest number are each refused with one line.
TEST(TrainingCheckpoint, ValidateCheckpointRunsEveryModelFreeCheck) {
  Tmp tmp;
  const Saved s = save_one(tmp.str(), 2);
  EXPECT_EQ(user_error_of([&] { (void)validate_checkpoint(s.dir); }), "(no error)");
  const auto rehash = [&](const std::string& name) {
    edit_manifest(s.dir, [&](nlohmann::json& j) {
      for (nlohmann::json& f : j["files"])
        if (f["name"] == name) {
          f["bytes"] = fs::file_size(s.dir + "/" + name);
          f["sha256"] = sha256_file(s.dir + "/" + name);
        }
    });
  };
  const std::string model = s.dir + "/model-tp0-of-1.h5";
  fs::copy_file(model, model + ".good");
  fs::copy_file(TAILOR_SOURCE_DIR "/tests/checkpoint/fixtures/external_passwd.h5", model,
                fs::copy_options::overwrite_existing);
  rehash("model-tp0-of-1.h5");
  EXPECT_EQ(user_error_of([&] { (void)validate_checkpoint(s.dir); }),
            model + ": dataset model.layers.0.mlp.up_proj.weight: external raw storage is refused "
                    "(only data inside the file is read)");
  fs::rename(model + ".good", model);
  rehash("model-tp0-of-1.h5");
  std::ofstream(s.dir + "/state-rank0.json")
      << R"({"rank": 0, "tp_rank": 0, "dp_rank": 0, "step": 2, "data_cursor": 8,)"
      << R"( "skipped_steps": 3, "consecutive_skips": 0, "rng": {"seed": 0}})";
  rehash("state-rank0.json");
  EXPECT_EQ(user_error_of([&] { (void)validate_checkpoint(s.dir); }),
            s.dir + "/state-rank0.json: skipped_steps: 3 is out of range [0, 2]");
  edit_manifest(s.dir, [](nlohmann::json& j) { j["step"] = -2; });
  EXPECT_EQ(user_error_of([&] { (void)validate_checkpoint(s.dir); }),
            s.dir + "/manifest.json: step: -2 is out of range [0, 1000000000000000]");
}

TEST(TrainingCheckpoint, RetentionKeepsTheNewestTheMilestonesAndLatest) {
  Tmp tmp;
  for (std::int64_t step : {2, 4, 6, 8, 10, 12}) save_one(tmp.str(), step, 2, 4);
  std::vector<std::int64_t> kept;
  for (const CheckpointRef& c : list_checkpoints(tmp.str() + "/checkpoints")) kept.push_back(c.step);
  EXPECT_EQ(kept, (std::vector<std::int64_t>{4, 8, 10, 12}));
  EXPECT_EQ(latest_checkpoint(tmp.str() + "/checkpoints"), tmp.str() + "/checkpoints/step_12");
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(TrainingCheckpoint, Hdf5ToolsReadTheFiles) {
  if (std::system("command -v h5dump > /dev/null 2>&1") != 0) GTEST_SKIP() << "h5dump not installed";
  Tmp tmp;
  const Saved s = save_one(tmp.str(), 1);
  const std::string out = tmp.str() + "/dump.txt";
  ASSERT_EQ(std::system(("h5dump -d /b -A 0 " + s.dir + "/model-tp0-of-1.h5 > " + out).c_str()), 0);
  const std::string text = slurp(out);
  EXPECT_NE(text.find("-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5"), std::string::npos) << text;
  ASSERT_EQ(std::system(("h5ls -r " + s.dir + "/optim-tp0-dp0-of-1x1.h5 > " + out).c_str()), 0);
  const std::string ls = slurp(out);
  EXPECT_NE(ls.find("/exp_avg/w"), std::string::npos) << ls;
}

}  // namespace
}  // namespace tailor::checkpoint
