// The end of a tensor-parallel training run exports the trained model (issue 19, item 3): its
// shards gathered in memory give the same bytes as `tailor export --checkpoint` of the final
// checkpoint, which reassembles them from the files.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../trainer/test_dirs.h"

namespace {

using tailor::testing::read_file;
using tailor::testing::TempDir;

int run(const std::string& cmd, const TempDir& tmp, std::string* err = nullptr) {
  const std::string full = "cd " TAILOR_SOURCE_DIR " && " + cmd + " >" + tmp / "out.txt" + " 2>" +
                           tmp / "err.txt";
  const int status = std::system(full.c_str());
  if (err != nullptr) *err = read_file(tmp / "err.txt");
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const std::string kTailor = TAILOR_BINARY_DIR "/tailor";
const std::string kLaunch = TAILOR_SOURCE_DIR "/launch/mpirun.sh";
const std::string kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

TEST(ExportMpi, TensorParallelTrainingExportsWhatExportCheckpointWrites) {
  TempDir tmp;
  {
    std::ofstream f(tmp / "cfg.yaml");
    f << "output: {dir: " << tmp / "run" << "}\n"
         "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 64, max_position_embeddings: 64}\n"
         "data: {train: " << kData << ", split: paragraph, seq_len: 32}\n"
         "train: {steps: 3, global_batch: 4}\n"
         "checkpoint: {every_steps: 3}\n"
         "optimizer: {lr: 3.0e-3}\n";
  }
  // TP 2 x DP 2 (the second replica exports nothing), and TP 4 over 2 K/V heads (each head
  // held by two ranks) with the vocabulary padded for 4 ranks.
  // And LoRA under TP 2: the frozen base and the adapters' shards gathered, merged on export.
  for (const char* layout :
       {"parallel.tensor=2", "parallel.tensor=4", "parallel.tensor=2 peft.method=lora"}) {
    SCOPED_TRACE(layout);
    const std::string run_dir = tmp / "run";
    std::filesystem::remove_all(run_dir);
    std::filesystem::remove_all(tmp / "again");
    std::string err;
    ASSERT_EQ(run(kLaunch + " -np 4 " + kTailor + " train " + tmp / "cfg.yaml" + " " + layout, tmp,
                  &err),
              0)
        << err;
    const std::string exported = run_dir + "/export";
    ASSERT_TRUE(std::filesystem::exists(exported + "/model.safetensors")) << err;
    ASSERT_EQ(run(kTailor + " export --checkpoint " + run_dir + " --out " + tmp / "again", tmp,
                  &err),
              0)
        << err;
    for (const char* f : {"model.safetensors", "config.json", "tokenizer.json"})
      EXPECT_EQ(read_file(exported + "/" + f), read_file(tmp / "again/" + f)) << f;
    if (std::string(layout).find("lora") != std::string::npos)
      for (const char* f : {"adapter/adapter_model.safetensors", "adapter/adapter_config.json"}) {
        EXPECT_FALSE(read_file(exported + "/" + f).empty()) << f;
        EXPECT_EQ(read_file(exported + "/" + f), read_file(tmp / "again/" + f)) << f;
      }
  }
}

}  // namespace
