// Prompt tuning through the trainer: only `prompt_embeddings` changes (the frozen base keeps the
// seeded values bit for bit), the loss falls, the text init starts from the text's embeddings,
// and the run exports a PEFT PROMPT_TUNING adapter that reads back into the same tensor.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/safetensors.h"
#include "config/config.h"
#include "data/byte_tokenizer.h"
#include "model/transformer.h"
#include "peft/prompt_tuning.h"
#include "test_dirs.h"
#include "trainer/checkpointing.h"
#include "trainer/from_config.h"
#include "trainer/model_builder.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

using tailor::testing::TempDir;

config::ExperimentConfig prompt_config(const std::string& out_dir,
                                       const std::vector<std::string>& overrides = {}) {
  const std::string text =
      "output: {dir: " + out_dir + "}\n"
      "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
      "        intermediate_size: 64, max_position_embeddings: 64, init_std: 0.1}\n"
      "data: {train: " TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt,\n"
      "       split: paragraph, seq_len: 48}\n"
      "train: {steps: 15, seed: 5, global_batch: 8, log_every: 5}\n"
      "optimizer: {lr: 3.0e-2, weight_decay: 0.0}\n"
      "schedule: {type: constant}\n"
      "runtime: {threads: 2, dtype: f64}\n"
      "peft: {method: prompt_tuning, num_virtual_tokens: 6, prompt_init_text: \"The \"}\n";
  return config::load_config_text(text, "pt.yaml", overrides);
}

TEST(PromptTuningTraining, OnlyThePromptChangesAndTheLossFalls) {
  TempDir d;
  const config::ExperimentConfig cfg = prompt_config(d.str());
  const TrainSummary s = train(cfg, nullptr, {true});
  ASSERT_EQ(s.losses.size(), 15u);
  EXPECT_LT(s.losses.back(), s.losses.front());

  // The same base, seeded as the run seeded it, and the text init of its prompt.
  backend::CpuOps ops(1);
  const model::ModelSpec spec = model_spec_from_config(cfg.model);
  const peft::PromptTuning prompt(6);
  model::Transformer start(spec, ops, DType::kF64, nullptr, {&prompt});
  start.init_parameters(cfg.train.seed);
  const data::ByteTokenizer tok;
  peft::PromptTuning::init_from_tokens(start, tok.encode("The "));
  ASSERT_EQ(s.parameters.size(), start.params().all().size());
  for (const ParameterValues& v : s.parameters) {
    const model::Parameter& p = start.params().at(v.name);
    ASSERT_EQ(static_cast<std::int64_t>(v.values.size()), p.shape.numel()) << v.name;
    const bool same = std::memcmp(v.values.data(), p.value.ptr<double>(),
                                  v.values.size() * sizeof(double)) == 0;
    if (v.name == peft::kPromptEmbeddings) {
      EXPECT_FALSE(same) << "the prompt did not train";
    } else {
      EXPECT_TRUE(same) << v.name << " changed: the base must stay frozen";
    }
  }

  // export/adapter: a PEFT prompt-tuning adapter holding the trained prompt.
  const std::string adapter = d / "export/adapter";
  std::ifstream f(adapter + "/adapter_config.json");
  const nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_EQ(j["peft_type"], "PROMPT_TUNING");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["num_virtual_tokens"], 6);
  EXPECT_EQ(j["token_dim"], 32);
  EXPECT_EQ(j["num_transformer_submodules"], 1);
  EXPECT_EQ(j["num_attention_heads"], 4);
  EXPECT_EQ(j["num_layers"], 2);
  EXPECT_EQ(peft::read_peft_prompt_config(adapter, spec), 6);
  const checkpoint::SafetensorsFile st(adapter + "/adapter_model.safetensors");
  EXPECT_EQ(st.names(), std::vector<std::string>{peft::kPromptEmbeddings});
  std::vector<float> exported(6 * 32);
  st.read_f32(peft::kPromptEmbeddings, exported);
  for (const ParameterValues& v : s.parameters) {
    if (v.name != peft::kPromptEmbeddings) continue;
    for (std::size_t i = 0; i < exported.size(); ++i)
      EXPECT_EQ(exported[i], static_cast<float>(v.values[i])) << i;
  }
}

// `tailor export --checkpoint ... --format peft` writes the adapter the run exported at its end.
TEST(PromptTuningTraining, CheckpointExportsThePeftAdapter) {
  TempDir d;
  (void)train(prompt_config(d.str(), {"train.steps=3", "checkpoint.every_steps=3"}));
  CheckpointExport peft_format;
  peft_format.format = "peft";
  peft_format.threads = 1;
  export_checkpoint(d / "checkpoints/step_3", d / "from_checkpoint", peft_format);
  for (const std::string f : {"adapter_config.json", "adapter_model.safetensors"}) {
    const std::string x = tailor::testing::read_file(d / ("export/adapter/" + f));
    EXPECT_FALSE(x.empty()) << f;
    EXPECT_EQ(x, tailor::testing::read_file(d / ("from_checkpoint/" + f))) << f;
  }
}

// peft.adapter: a run continuing from an exported prompt starts from it (the base as before).
TEST(PromptTuningTraining, ContinuesFromAnExportedAdapter) {
  TempDir d;
  const TrainSummary first = train(prompt_config(d / "a", {"train.steps=3"}), nullptr, {true});
  const config::ExperimentConfig cont =
      prompt_config(d / "b", {"peft.num_virtual_tokens=2",
                              "peft.adapter=" + d / "a/export/adapter"});
  backend::CpuOps ops(1);
  const ModelSetup setup = model_setup(cont);
  EXPECT_EQ(setup.virtual_tokens(), 6);  // the adapter's, not peft.num_virtual_tokens
  const std::unique_ptr<model::Transformer> m =
      build_model(cont, setup, ops, nullptr, InitialWeights::kStart);
  const model::Parameter& p = m->params().at(peft::kPromptEmbeddings);
  for (const ParameterValues& v : first.parameters) {
    if (v.name != peft::kPromptEmbeddings) continue;
    ASSERT_EQ(static_cast<std::int64_t>(v.values.size()), p.shape.numel());
    for (std::size_t i = 0; i < v.values.size(); ++i)  // f32 through the file
      EXPECT_EQ(p.value.ptr<double>()[i], static_cast<double>(static_cast<float>(v.values[i])));
  }
}

}  // namespace
}  // namespace tailor::trainer
