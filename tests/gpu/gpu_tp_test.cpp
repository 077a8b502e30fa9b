// Tensor parallelism on one GPU (label gpu): two ranks share the GPU, so their collectives go over
// MPI with device tensors staged through host memory (NCCL refuses two ranks on one GPU). In the
// f32 CUDA mode, TP = 2 follows the single-rank GPU run within 1e-5 per step.
#include <gtest/gtest.h>

#include <mpi.h>

#include <cmath>
#include <filesystem>

#include "comm/mpi_communicator.h"
#include "config/config.h"
#include "gpu_test_util.h"
#include "mpi_test_env.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

using tailor::testing::world;

std::string out_dir(const std::string& tag) {
  return (std::filesystem::temp_directory_path() /
          ("tailor-gpu-tp-" + tag + "-" + std::to_string(::getpid())))
      .string();
}

config::ExperimentConfig tiny(const std::string& out, const std::vector<std::string>& extra) {
  const std::string text =
      "output: {dir: " + out + "}\n"
      "model: {vocab_size: 257, hidden_size: 64, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
      "        intermediate_size: 128, max_position_embeddings: 64}\n"
      "data: {train: " TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt,\n"
      "       split: paragraph, seq_len: 32}\n"
      "train: {steps: 10, seed: 3, global_batch: 8, log_every: 100}\n"
      "optimizer: {lr: 3.0e-3}\n"
      "runtime: {device: cuda, dtype: f32, threads: 1, log_level: warn}\n";
  return config::load_config_text(text, "tiny.yaml", extra);
}

TEST(GpuTensorParallel, TwoRanksOnOneGpuMatchOneRank) {
  TAILOR_REQUIRE_GPU_OR_SKIP();
  ASSERT_EQ(world().size(), 2);
  // Each rank runs the single-rank reference alone, then both run TP = 2 together.
  const auto one = tiny(out_dir("one-r" + std::to_string(world().rank())), {});
  const TrainSummary a = train(one, nullptr);
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  const auto two = tiny(out_dir("two"), {"parallel.tensor=2"});
  const TrainSummary b = train(two, std::make_unique<comm::MpiCommunicator>(dup));
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (std::size_t i = 0; i < a.losses.size(); ++i)
    EXPECT_LE(std::abs(b.losses[i] - a.losses[i]) / a.losses[i], 1e-5) << "step " << i + 1;
  std::filesystem::remove_all(one.output.dir);
  if (world().rank() == 0) std::filesystem::remove_all(two.output.dir);
}

}  // namespace
}  // namespace tailor::trainer
