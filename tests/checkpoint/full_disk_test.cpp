// A full disk during a checkpoint save, at every write the save makes: HDF5's writes of tensors,
// attributes and metadata, the state and manifest files. Each trial runs in a child process,
// which must report the failure as a RuntimeError carrying the system's reason, leave no
// step_<N>.tmp and keep `latest` on the previous checkpoint, and then exit normally: HDF5 tears
// itself down at exit, which crashed (SIGSEGV in H5F__close_cb) when a failed write had left a
// file half-closed. The disk fills through full_disk.c, which stands in for libc's write calls.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "checkpoint/output_dir.h"
#include "checkpoint/training_checkpoint.h"
#include "core/error.h"

extern "C" {
void full_disk_arm(const char* match, long after);
void full_disk_disarm(void);
long full_disk_count(void);
}

namespace tailor::checkpoint {
namespace {

namespace fs = std::filesystem;

class Tmp {
 public:
  explicit Tmp(const std::string& tag = "") {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / (std::string("tailor-full-disk-") + info->name() + tag +
                                         "-" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~Tmp() { fs::remove_all(path_); }
  [[nodiscard]] std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

// A small checkpoint: two model tensors (one large enough for several chunks), two optimizer
// tensors.
std::string save(const std::string& root, std::int64_t step) {
  static std::vector<float> big(600 * 1000), small(7);
  std::iota(big.begin(), big.end(), 0.5f);
  std::iota(small.begin(), small.end(), -3.5f);
  h5::Placement pbig, psmall;
  pbig.global_shape = pbig.local_shape = Shape{600, 1000};
  pbig.flat_end = 600 * 1000;
  psmall.global_shape = psmall.local_shape = Shape{7};
  psmall.flat_end = 7;
  const backend::Tensor tbig{big.data(), DType::kF32, Shape{600 * 1000}};
  const backend::Tensor tsmall{small.data(), DType::kF32, Shape{7}};
  SaveRequest req;
  req.checkpoints_dir = root + "/checkpoints";
  req.step = step;
  req.write_model = true;
  req.model = {{"w", pbig, tbig}, {"b", psmall, tsmall}};
  req.write_optimizer = true;
  req.optimizer = {{"exp_avg/w", pbig, tbig}, {"exp_avg/b", psmall, tsmall}};
  req.state.step = step;
  req.manifest.dtype = "f32";
  req.manifest.optimizer = "adamw";
  req.config_yaml = "train: {steps: 10}\n";
  comm::SelfCommunicator self;
  return save_checkpoint(req, self);
}

// In a child process: step 4 saved with the disk full from the `after`-th write into its
// directory. Exit code 0 when everything is as it must be, else a code naming what was not.
[[noreturn]] void full_disk_trial(const std::string& root, long after) {
  int code = 0;
  full_disk_arm("/checkpoints/step_4", after);
  try {
    save(root, 4);
    code = 10;  // no error
  } catch (const RuntimeError& e) {
    const std::string what = e.what();
    if (what.find("No space left on device") == std::string::npos) {
      std::fprintf(stderr, "write %ld: %s\n", after, what.c_str());
      code = 11;  // the system's reason is missing
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write %ld: not a RuntimeError: %s\n", after, e.what());
    code = 12;
  }
  full_disk_disarm();
  if (code == 0 && fs::exists(root + "/checkpoints/step_4.tmp")) code = 13;
  if (code == 0 && fs::exists(root + "/checkpoints/step_4")) code = 14;
  if (code == 0 && latest_checkpoint(root + "/checkpoints") != root + "/checkpoints/step_2")
    code = 15;
  std::exit(code);  // runs HDF5's teardown (atexit), where a half-closed file crashed
}

TEST(FullDisk, EveryWriteOfASaveFailsCleanly) {
  Tmp count_root("-count"), root;
  // How many writes a save of step 4 makes (the same in every directory).
  full_disk_arm("/checkpoints/step_4", LONG_MAX);
  save(count_root.str(), 4);
  const long writes = full_disk_count();
  full_disk_disarm();
  ASSERT_GE(writes, 10) << "the interposed write calls are not reached";
  save(root.str(), 2);
  for (long after = 0; after < writes; ++after) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) full_disk_trial(root.str(), after);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "write " << after << " of " << writes
                                   << ": the process died of signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "write " << after << " of " << writes
                                      << " (10: no error, 11: no errno text, 12: wrong error "
                                         "type, 13: .tmp left, 14: step_4 committed, 15: latest "
                                         "moved)";
  }
}

TEST(FullDisk, AnOutputDirectoryThatFailsLeavesNoTmpBehind) {
  Tmp root;
  const std::string out = root.str() + "/export";
  try {
    OutputDir dir(out);
    std::ofstream(dir.tmp() + "/model.safetensors") << "partial";
    throw RuntimeError("export: No space left on device");
  } catch (const RuntimeError&) {
  }
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  EXPECT_FALSE(fs::exists(out));
  {
    OutputDir dir(out);
    std::ofstream(dir.tmp() + "/config.json") << "{}";
    dir.commit();
  }
  EXPECT_TRUE(fs::exists(out + "/config.json"));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

}  // namespace
}  // namespace tailor::checkpoint
