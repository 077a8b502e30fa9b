// Hugging Face model directories through the CLI: `tailor score` (checked against the analytic
// perplexity of a model whose logits are all equal), `tailor export`, and `tailor train` with
// model.path fine-tuning a model with its own tokenizer and exporting it with the tokenizer files.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../trainer/test_dirs.h"
#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "data/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using tailor::testing::read_file;
using tailor::testing::read_jsonl;
using tailor::testing::TempDir;

const std::string kTokenizerDir = TAILOR_SOURCE_DIR "/tests/golden/tokenizers/llama3";

struct Result {
  int code = -1;
  std::string out, err;
};

Result run(const std::string& args, const TempDir& tmp) {
  const std::string cmd = std::string(TAILOR_BINARY_DIR "/tailor ") + args + " >" + tmp / "o.txt" + " 2>" + tmp / "e.txt";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(tmp / "o.txt"), read_file(tmp / "e.txt")};
}

// A llama-family directory with the llama3-style fixture tokenizer; weights random or all zero.
tailor::checkpoint::HfModelConfig write_model(const std::string& dir, bool zero,
                                              std::int64_t vocab_delta = 0) {
  const auto tok = tailor::data::load_tokenizer(kTokenizerDir);
  tailor::checkpoint::HfModelConfig cfg;
  cfg.model_type = "llama";
  auto& s = cfg.spec;
  s.vocab_size = tok->vocab_size() + vocab_delta;
  s.hidden_size = 32;
  s.num_layers = 2;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 8;
  s.intermediate_size = 48;
  s.max_position_embeddings = 128;
  cfg.bos_token_id = tok->bos_token_id().value_or(-1);
  cfg.eos_token_id = tok->eos_token_id().value_or(-1);
  tailor::backend::CpuOps ops(1);
  tailor::model::Transformer m(s, ops, tailor::DType::kF32);
  if (!zero) m.init_parameters(11);
  tailor::checkpoint::save_hf_model(dir, cfg, m, ops, kTokenizerDir);
  return cfg;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

TEST(CliHf, ScoreOfUniformModelIsLogVocab) {
  TempDir tmp;
  const auto cfg = write_model(tmp / "model", /*zero=*/true);
  write(tmp / "d.jsonl", R"({"text": "The quick brown fox jumps over the lazy dog."})" "\n\n"
                         R"({"prompt": "Translate to German: cat", "completion": " Katze"})" "\n");
  const Result r = run("score --model " + tmp / "model" + " --data " + tmp / "d.jsonl", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string last = r.out.substr(r.out.rfind('{'));
  const auto j = nlohmann::json::parse(last);
  EXPECT_EQ(j["records"].get<int>(), 2);
  // All logits zero: every token has probability 1 / V.
  EXPECT_NEAR(j["nll"].get<double>(), std::log(static_cast<double>(cfg.spec.vocab_size)), 1e-6);
  EXPECT_NEAR(j["ppl"].get<double>(), static_cast<double>(cfg.spec.vocab_size), 1e-3);
  // Tokens: text record scores all its tokens but the first; the prompt record only the
  // completion and EOS.
  const auto tok = tailor::data::load_tokenizer(kTokenizerDir);
  const auto text = tok->encode("The quick brown fox jumps over the lazy dog.");
  const auto completion = tok->encode(" Katze");
  const std::int64_t extra = (tok->bos_token_id() ? 1 : 0) + (tok->eos_token_id() ? 1 : 0);
  EXPECT_EQ(j["tokens"].get<std::int64_t>(),
            static_cast<std::int64_t>(text.size()) + extra - 1 +
                static_cast<std::int64_t>(completion.size()) + (tok->eos_token_id() ? 1 : 0));
}

TEST(CliHf, ScoreBadRecordsAreOneLine) {
  TempDir tmp;
  write_model(tmp / "model", true);
  write(tmp / "d.jsonl", "{\"text\": \"ok\"}\n{\"txt\": \"typo\"}\n");
  Result r = run("score --model " + tmp / "model" + " --data " + tmp / "d.jsonl", tmp);
  EXPECT_EQ(r.code, 2);
  // The error is the last line (after the start-up info line).
  EXPECT_EQ(r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1),
            tmp / "d.jsonl" + ":2: expected a \"text\" field or \"prompt\" and \"completion\" fields\n");
  write(tmp / "d.jsonl", "{\"text\": \"ok\"}\n{broken\n");
  r = run("score --model " + tmp / "model" + " --data " + tmp / "d.jsonl", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(tmp / "d.jsonl" + ":2: not valid JSON"), std::string::npos) << r.err;
  r = run("score --model " + tmp / "nope" + " --data " + tmp / "d.jsonl", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("config.json: cannot read"), std::string::npos) << r.err;
}

TEST(CliHf, ExportReExportsAndRefusesWhatDoesNotExist) {
  TempDir tmp;
  write_model(tmp / "model", false);
  Result r = run("export --model " + tmp / "model" + " --format hf --out " + tmp / "out --dtype bf16", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "out/tokenizer.json"));
  EXPECT_NE(read_file(tmp / "out/config.json").find("bfloat16"), std::string::npos);
  r = run("export --checkpoint " + tmp / "ck --out " + tmp / "x", tmp);
  EXPECT_EQ(r.code, 2);
  r = run("export --model " + tmp / "model --format peft --out " + tmp / "x", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(fs::exists(tmp / "x"));
}

TEST(CliHf, TrainFineTunesAModelDirectoryAndExportsIt) {
  TempDir tmp;
  write_model(tmp / "model", false);
  write(tmp / "cfg.yaml", "output: {dir: " + tmp / "run" + "}\n"
                          "model: {path: " + tmp / "model" + "}\n"
                          "data: {train: " TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt, split: paragraph, seq_len: 64}\n"
                          "train: {steps: 6, global_batch: 4, log_every: 1}\n"
                          "optimizer: {lr: 3.0e-3}\n");
  const Result r = run("train " + tmp / "cfg.yaml", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("loading llama weights from"), std::string::npos) << r.err;
  const auto m = read_jsonl(tmp / "run/metrics.jsonl");
  ASSERT_EQ(m.size(), 6u);
  EXPECT_LT(m.back()["loss"].get<double>(), m.front()["loss"].get<double>());
  EXPECT_TRUE(fs::exists(tmp / "run/export/model.safetensors"));
  EXPECT_TRUE(fs::exists(tmp / "run/export/tokenizer.json"));
  // Architecture keys next to model.path are refused.
  const Result bad = run("validate " + tmp / "cfg.yaml model.hidden_size=64", tmp);
  EXPECT_EQ(bad.code, 2);
  EXPECT_EQ(bad.err, "<override 1>: model.hidden_size: comes from model.path's config.json; remove it (or remove model.path)\n");
}

TEST(CliHf, TokenizerLargerThanTheVocabularyIsAUserError) {
  TempDir tmp;
  const auto cfg = write_model(tmp / "model", false, -10);
  write(tmp / "cfg.yaml", "output: {dir: " + tmp / "run" + "}\n"
                          "model: {path: " + tmp / "model" + "}\n"
                          "data: {train: " TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt, seq_len: 32}\n"
                          "train: {steps: 2, global_batch: 2}\n"
                          "optimizer: {lr: 1.0e-3}\n");
  const Result r = run("train " + tmp / "cfg.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "cfg.yaml" + ": data.tokenizer: the tokenizer has " +
                       std::to_string(cfg.spec.vocab_size + 10) + " ids but the model's vocabulary has " +
                       std::to_string(cfg.spec.vocab_size) + "\n");
  EXPECT_FALSE(fs::exists(tmp / "run"));
}

// A sequence longer than config.json's max_position_embeddings is refused for a RoPE model too,
// before anything is written (issue 19, item 6).
TEST(CliHf, SequencesPastTheModelsPositionsAreAUserError) {
  TempDir tmp;
  write_model(tmp / "model", false);  // max_position_embeddings 128
  write(tmp / "cfg.yaml", "output: {dir: " + tmp / "run" + "}\n"
                          "model: {path: " + tmp / "model" + "}\n"
                          "data: {train: " TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt, seq_len: 99999}\n"
                          "train: {steps: 2, global_batch: 2}\n"
                          "optimizer: {lr: 1.0e-3}\n");
  const Result r = run("train " + tmp / "cfg.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "cfg.yaml" + ": data.seq_len (99999) exceeds the model's 128 positions "
                                        "(max_position_embeddings)\n");
  EXPECT_FALSE(fs::exists(tmp / "run"));
}

TEST(CliHf, LoraFineTuneOfAModelDirectoryExportsAnAdapterThatContinues) {
  TempDir tmp;
  write_model(tmp / "model", false);
  write(tmp / "cfg.yaml", "output: {dir: " + tmp / "run" + "}\n"
                          "model: {path: " + tmp / "model" + "}\n"
                          "data: {train: " TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt, split: paragraph, seq_len: 64}\n"
                          "train: {steps: 8, global_batch: 4, log_every: 1}\n"
                          "optimizer: {lr: 1.0e-2}\n"
                          "schedule: {type: constant}\n"
                          "peft: {method: lora, rank: 4, alpha: 8, target_modules: [all-linear]}\n");
  Result r = run("train " + tmp / "cfg.yaml", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("peft: LoRA r=4 alpha=8 on all-linear"), std::string::npos) << r.err;
  const auto first = read_jsonl(tmp / "run/metrics.jsonl");
  ASSERT_EQ(first.size(), 8u);
  EXPECT_LT(first.back()["loss"].get<double>(), first.front()["loss"].get<double>());
  ASSERT_TRUE(fs::exists(tmp / "run/export/adapter/adapter_model.safetensors"));
  const std::string cfg_text = read_file(tmp / "run/export/adapter/adapter_config.json");
  EXPECT_NE(cfg_text.find("\"peft_type\": \"LORA\""), std::string::npos);
  EXPECT_NE(cfg_text.find(tmp / "model"), std::string::npos);  // base_model_name_or_path
  // Continue from the adapter: the first step (global batch 0 again) starts where training left
  // off, below the base model's loss on that batch.
  r = run("train " + tmp / "cfg.yaml output.dir=" + tmp / "run2 train.steps=1 peft.adapter=" +
              tmp / "run/export/adapter",
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto second = read_jsonl(tmp / "run2/metrics.jsonl");
  EXPECT_LT(second.front()["loss"].get<double>(), first.front()["loss"].get<double>() - 0.01);

  // score --adapter applies it: on text of the training domain it lowers the NLL.
  write(tmp / "d.jsonl", R"({"text": "ABASEMENT, n.  A decent and customary mental attitude in the presence of wealth of power."})" "\n");
  auto nll = [&](const std::string& extra) {
    const Result s = run("score --model " + tmp / "model" + " --data " + tmp / "d.jsonl" + extra, tmp);
    EXPECT_EQ(s.code, 0) << s.err;
    return nlohmann::json::parse(s.out.substr(s.out.rfind('{')))["nll"].get<double>();
  };
  EXPECT_LT(nll(" --adapter " + tmp / "run/export/adapter"), nll("") - 0.01);
}

}  // namespace
