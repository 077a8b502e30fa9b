// Every family added for issue 22 fine-tunes from `model.path` (its committed golden model,
// tests/golden/models/<case>, written by transformers) with full fine-tuning and with LoRA:
//  - a few steps lower the training loss, and the run exports a directory of the same family
//    (config.json + model.safetensors, LoRA merged) and, for LoRA where PEFT's format can hold
//    it, the adapter (Phi-3's cannot: phi3.cpp);
//  - on the device's contracts (the emulated device, TAILOR_EMULATE_CUDA=1) in f32 the same run
//    gives the CPU's losses and final parameters bit for bit, so the family's layer features
//    (q/k norm, ...) run on the device path too.
// The numerics themselves are checked against transformers in tests/checkpoint/model_golden_test.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "test_dirs.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

namespace fs = std::filesystem;
using tailor::testing::read_file;
using tailor::testing::TempDir;

std::string config_text(const std::string& out_dir, const std::string& model) {
  return "output: {dir: " + out_dir + "}\n"
         "model: {path: " TAILOR_SOURCE_DIR "/tests/golden/models/" + model + "}\n"
         "data: {train: " TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt,\n"
         "       split: paragraph, seq_len: 16, tokenizer: byte}\n"
         "train: {steps: 5, seed: 5, global_batch: 4, log_every: 1}\n"
         "optimizer: {lr: 3.0e-3}\n"
         "schedule: {type: constant}\n"
         "runtime: {threads: 2, dtype: f32}\n";
}

struct Case {
  const char* model;  // tests/golden/models/<model>
  const char* model_type;
  bool lora;
  bool peft_format = true;  // its LoRA can be written in PEFT's format (not Phi-3's fused modules)
};

TrainSummary run(const Case& c, const std::string& dir, const std::string& device) {
  std::vector<std::string> overrides = {"runtime.device=" + device};
  if (c.lora)
    overrides.insert(overrides.end(), {"peft.method=lora", "peft.rank=4", "peft.alpha=8",
                                       "optimizer.lr=1.0e-2", "peft.target_modules=[all-linear]"});
  TrainOptions keep;
  keep.keep_parameters = true;
  return train(config::load_config_text(config_text(dir, c.model), "cfg.yaml", overrides), nullptr,
               keep);
}

class FamilyFineTune : public ::testing::TestWithParam<Case> {};

TEST_P(FamilyFineTune, LearnsExportsAndRunsTheSameOnTheDevice) {
  const Case& c = GetParam();
  TempDir dir;
  const TrainSummary cpu = run(c, dir / "cpu", "cpu");
  ASSERT_EQ(cpu.losses.size(), 5u);
  EXPECT_LT(cpu.losses.back(), cpu.losses.front()) << "a few steps should lower the loss";
  // The model (LoRA merged) of the same family, and a LoRA run's adapter where PEFT can hold it.
  ASSERT_TRUE(fs::exists(dir / "cpu/export/model.safetensors"));
  const auto cfg = nlohmann::json::parse(read_file(dir / "cpu/export/config.json"));
  EXPECT_EQ(cfg.at("model_type"), c.model_type);
  EXPECT_EQ(fs::exists(dir / "cpu/export/adapter/adapter_model.safetensors"),
            c.lora && c.peft_format);

  ::setenv("TAILOR_EMULATE_CUDA", "1", 1);
  const TrainSummary dev = run(c, dir / "dev", "cuda");
  ::unsetenv("TAILOR_EMULATE_CUDA");
  ASSERT_EQ(dev.losses.size(), cpu.losses.size());
  for (std::size_t i = 0; i < cpu.losses.size(); ++i)
    EXPECT_EQ(dev.losses[i], cpu.losses[i]) << "step " << i + 1;
  ASSERT_EQ(dev.parameters.size(), cpu.parameters.size());
  for (std::size_t i = 0; i < cpu.parameters.size(); ++i) {
    EXPECT_EQ(dev.parameters[i].name, cpu.parameters[i].name);
    EXPECT_EQ(dev.parameters[i].values, cpu.parameters[i].values) << cpu.parameters[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyFineTune,
                         ::testing::Values(Case{"qwen3", "qwen3", false},
                                           Case{"qwen3", "qwen3", true},
                                           Case{"phi3", "phi3", false},
                                           Case{"phi3", "phi3", true, false},
                                           Case{"qwen3_yarn", "qwen3", false},
                                           Case{"phi3_longrope", "phi3", true, false},
                                           Case{"gemma3", "gemma3_text", false},
                                           Case{"gemma3", "gemma3_text", true}),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           return std::string(p.param.model) + (p.param.lora ? "_lora" : "_full");
                         });

}  // namespace
}  // namespace tailor::trainer
