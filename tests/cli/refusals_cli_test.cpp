// Behaviour the rest of the suite did not reach, through the `tailor` executable as users meet
// it: each refusal is one line naming the place, exit code 2, and no run directory written; each
// feature is checked by an effect that follows from the input alone.
//  - models with sliding-window attention train on sequences longer than their window (full
//    fine-tuning and LoRA, from model.path), and a config.json whose layer_types the window
//    cannot follow is refused naming the file and key;
//  - resume guards: a PEFT checkpoint on another base model, a checkpoint of other training data;
//  - data: every document longer than seq_len with overlong: drop, source weights that select no
//    document, valid_fraction with a single document;
//  - data.template.few_shot_file: examples prepended to every prompt (no loss on them), and a file
//    whose records are not {prompt, completion};
//  - prompt_search ranked by a generation metric (higher is better);
//  - runtime.attention (issue 20): cudnn where cuDNN cannot run is refused before anything is
//    written; auto says in the log which attention runs.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/run_tailor.h"

namespace {

namespace fs = std::filesystem;
using tailor::testing::read_file;
using tailor::testing::read_jsonl;
using tailor::testing::TempDir;

using Result = tailor::testing::TailorResult;
constexpr auto run = &tailor::testing::run_tailor;
constexpr auto write = &tailor::testing::write_text;

const std::string kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

std::string tiny(const std::string& out_dir, const std::string& data) {
  return "output: {dir: " + out_dir + "}\n"
         "model: {vocab_size: 257, hidden_size: 16, num_layers: 1, num_heads: 2,\n"
         "        intermediate_size: 32, max_position_embeddings: 64}\n"
         "data: {train: " + data + ", seq_len: 16, split: paragraph}\n"
         "train: {steps: 2, global_batch: 2}\n"
         "optimizer: {lr: 1.0e-3}\n";
}

// The last line of stderr (what came before are progress lines, e.g. the data preparation's).
std::string last_line(const std::string& err) {
  const auto end = err.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  const auto begin = err.rfind('\n', end);
  return err.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin == std::string::npos ? 0 : begin + 1));
}

// A refusal: exit 2, `want` as the one error line (the last), no run directory written.
void expect_refused(const Result& r, const std::string& want, const std::string& run_dir) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(last_line(r.err), want) << r.err;
  EXPECT_FALSE(fs::exists(run_dir)) << run_dir << " was written";
}

// "data: prepared N documents, T tokens ..." -> T
std::int64_t prepared_tokens(const std::string& err) {
  const auto at = err.find("data: prepared ");
  if (at == std::string::npos) return -1;
  const auto comma = err.find(" documents, ", at);
  return std::stoll(err.substr(comma + 12));
}

// runtime.attention: cudnn where it cannot run: refused before anything is written, exit 2, one
// line naming the key. With runtime.device auto on this machine (no GPU) the run lands on the
// CPU: in a build with cuDNN the trainer refuses it at start-up naming the CPU backend, without
// cuDNN the config's rules already do. With runtime.dtype f32 (or device cpu) the config's rules
// refuse it in every build.
TEST(Refusals, CudnnAttentionWhereItCannotRun) {
  TempDir tmp;
  const std::vector<std::string> runtimes = {"{attention: cudnn}", "{attention: cudnn, dtype: f32}",
                                             "{attention: cudnn, device: cpu}"};
  for (const std::string& rt : runtimes) {
    write(tmp / "cfg.yaml", tiny(tmp / "run", kData) + "runtime: " + rt + "\n");
    const Result r = run("train " + tmp / "cfg.yaml", tmp);
    EXPECT_EQ(r.code, 2) << rt << ": " << r.err;
    const std::string line = last_line(r.err);
    EXPECT_NE(line.find("runtime.attention"), std::string::npos) << rt << ": " << r.err;
    EXPECT_NE(line.find("cudnn"), std::string::npos) << rt << ": " << r.err;
    EXPECT_NE(line.find("use auto or tailor"), std::string::npos) << rt << ": " << r.err;
    EXPECT_FALSE(fs::exists(tmp / "run")) << rt << ": the run directory was written";
  }
}

// runtime.attention: auto on the emulated device: the run says, once at start, that Tailor's
// kernels compute the attention and why; with tailor it says that was asked for.
TEST(Refusals, TheLogSaysWhichAttentionRuns) {
  ::setenv("TAILOR_EMULATE_CUDA", "1", 1);
  TempDir tmp;
  write(tmp / "cfg.yaml", tiny(tmp / "run", kData));
  const Result a = run("train " + tmp / "cfg.yaml", tmp);
  write(tmp / "cfg2.yaml", tiny(tmp / "run2", kData) + "runtime: {attention: tailor}\n");
  const Result t = run("train " + tmp / "cfg2.yaml", tmp);
  ::unsetenv("TAILOR_EMULATE_CUDA");
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string logs = a.out + a.err;
  EXPECT_NE(logs.find("attention: tailor kernels (the emulated device (TAILOR_EMULATE_CUDA=1))"),
            std::string::npos)
      << logs;
  const std::string logs2 = t.out + t.err;
  EXPECT_NE(logs2.find("attention: tailor kernels (runtime.attention: tailor)"), std::string::npos)
      << logs2;
  EXPECT_NE(read_file(tmp / "run2/config.resolved.yaml").find("  attention: tailor\n"),
            std::string::npos);
  EXPECT_EQ(read_file(tmp / "run/config.resolved.yaml").find("attention:"), std::string::npos);
}

TEST(Refusals, SlidingWindowModelsTrainPastTheirWindow) {
  TempDir tmp;
  // tests/golden/models/mistral: sliding_window 16; mistral_window: 5 on every layer;
  // qwen2_window: 4 on layers 1 and 2; qwen3_window: 4 on layers 0 and 2. All have
  // max_position_embeddings 64.
  const std::string models = TAILOR_SOURCE_DIR "/tests/golden/models/";
  struct Case {
    const char* model;
    const char* peft;
  };
  for (const Case& c : {Case{"mistral", "none"}, Case{"mistral_window", "lora"},
                        Case{"qwen2_window", "none"}, Case{"qwen2_window", "lora"},
                        Case{"qwen3_window", "lora"}}) {
    SCOPED_TRACE(std::string(c.model) + " peft " + c.peft);
    const std::string out = tmp / (std::string(c.model) + "-" + c.peft);
    write(tmp / "cfg.yaml", "output: {dir: " + out + "}\n"
                            "model: {path: " + models + c.model + "}\n"
                            "data: {train: " + kData + ", seq_len: 32, tokenizer: byte, split: paragraph}\n"
                            "train: {steps: 2, global_batch: 2}\n"
                            "optimizer: {lr: 1.0e-3}\n"
                            "peft: {method: " + c.peft + ", rank: 2}\n");
    const Result r = run("train " + tmp / "cfg.yaml", tmp);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::exists(fs::path(out) / "export")) << r.err;
  }
  // A layer_types word the window cannot follow: one line naming config.json and the key.
  fs::copy(models + "qwen2_window", tmp / "bad");
  nlohmann::json cfg = nlohmann::json::parse(read_file(tmp / "bad/config.json"));
  cfg["layer_types"][1] = "chunked_attention";
  write(tmp / "bad/config.json", cfg.dump(2));
  write(tmp / "bad.yaml", "output: {dir: " + tmp / "badrun" + "}\n"
                          "model: {path: " + tmp / "bad" + "}\n"
                          "data: {train: " + kData + ", seq_len: 32, tokenizer: byte, split: paragraph}\n"
                          "train: {steps: 1, global_batch: 2}\n"
                          "optimizer: {lr: 1.0e-3}\n");
  expect_refused(run("train " + tmp / "bad.yaml", tmp),
                 tmp / "bad" + "/config.json: layer_types[1]: \"chunked_attention\" is not "
                               "supported (full_attention or sliding_attention)",
                 tmp / "badrun");
}

// A config.json feature Tailor does not implement, in a family it supports, is one line naming
// config.json and the key (exit 2, nothing written): a qwen3 layer_types word the window cannot
// follow and a partial rotary factor that contradicts rope_parameters' (issue 22, item 6).
TEST(Refusals, UnsupportedFamilyFeaturesNameConfigJsonAndTheKey) {
  TempDir tmp;
  const struct {
    const char* model;
    const char* key;
    nlohmann::json value;
    std::string reason;
  } cases[] = {
      {"qwen3", "layer_types", {"full_attention", "chunked_attention"},
       "layer_types[1]: \"chunked_attention\" is not supported (full_attention or "
       "sliding_attention)"},
      // The fixture's rope_parameters say 1.0 (as transformers 5 writes): a contradiction.
      {"phi3", "partial_rotary_factor", 0.75,
       "partial_rotary_factor: 0.75 contradicts rope_parameters.partial_rotary_factor (1)"},
      // Gemma 3 (issue 22 item 3): soft-capping (Gemma 2's, null in Gemma 3) and a scale of 0.
      {"gemma3", "attn_logit_softcapping", 50.0,
       "attn_logit_softcapping: logit soft-capping is not supported for gemma3_text (null in "
       "every released Gemma 3)"},
      {"gemma3", "query_pre_attn_scalar", 0, "query_pre_attn_scalar: must be > 0, got 0"},
      {"gemma3", "use_bidirectional_attention", true,
       "use_bidirectional_attention: true is not supported (a causal language model only)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.model);
    const std::string base = tmp / (std::string("base-") + c.model);
    fs::create_directories(base);
    const std::string src = std::string(TAILOR_SOURCE_DIR "/tests/golden/models/") + c.model;
    fs::copy_file(src + "/model.safetensors", base + "/model.safetensors",
                  fs::copy_options::overwrite_existing);  // gemma3 comes three times
    std::ifstream in(src + "/config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    config[c.key] = c.value;
    write(base + "/config.json", config.dump(2));
    write(tmp / "cfg.yaml", "output: {dir: " + tmp / "run" + "}\n"
                            "model: {path: " + base + "}\n"
                            "data: {train: " + kData + ", seq_len: 16, tokenizer: byte, split: paragraph}\n"
                            "train: {steps: 1, global_batch: 2}\n"
                            "optimizer: {lr: 1.0e-3}\n");
    expect_refused(run("train " + tmp / "cfg.yaml", tmp), base + "/config.json: " + c.reason,
                   tmp / "run");
  }
}

TEST(Refusals, ResumeOnAnotherBaseModel) {
  TempDir tmp;
  fs::copy(TAILOR_SOURCE_DIR "/tests/golden/models/llama", tmp / "base");
  write(tmp / "cfg.yaml", "output: {dir: " + tmp / "run" + "}\n"
                          "model: {path: " + tmp / "base" + "}\n"
                          "data: {train: " + kData + ", seq_len: 16, tokenizer: byte, split: paragraph}\n"
                          "train: {steps: 2, global_batch: 2}\n"
                          "optimizer: {lr: 1.0e-3}\n"
                          "checkpoint: {every_steps: 2}\n"
                          "peft: {method: lora, rank: 2}\n");
  ASSERT_EQ(run("train " + tmp / "cfg.yaml", tmp).code, 0);
  // The base changes: another norm epsilon in its config.json (the weights' headers and
  // config.json identify a base; docs/checkpoints.md).
  {
    nlohmann::json config = nlohmann::json::parse(read_file(tmp / "base/config.json"));
    config["rms_norm_eps"] = config.value("rms_norm_eps", 1e-6) * 2;
    std::ofstream(tmp / "base/config.json") << config.dump(2);
  }
  const std::string before = read_file(tmp / "run/metrics.jsonl");
  const Result r = run("train " + tmp / "cfg.yaml" + " train.steps=4", tmp);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(last_line(r.err).rfind(tmp / "run/checkpoints/step_2: the base model differs from the "
                                               "one this adapter checkpoint was trained on", 0),
            0u)
      << r.err;
  EXPECT_EQ(read_file(tmp / "run/metrics.jsonl"), before) << "the run directory was changed";
}

TEST(Refusals, ResumeOnChangedTrainingData) {
  TempDir tmp;
  fs::copy_file(kData, tmp / "data.txt");
  write(tmp / "cfg.yaml", tiny(tmp / "run", tmp / "data.txt") + "checkpoint: {every_steps: 2}\n");
  const std::string cache = " data.cache_dir=" + tmp / "cache";
  ASSERT_EQ(run("train " + tmp / "cfg.yaml" + cache, tmp).code, 0);
  std::ofstream(tmp / "data.txt", std::ios::app) << "\n\nNEWWORD, n. A paragraph added later.\n";
  const std::string before = read_file(tmp / "run/metrics.jsonl");
  const Result r = run("train " + tmp / "cfg.yaml" + cache + " train.steps=4", tmp);
  EXPECT_EQ(r.code, 2) << r.err;
  const std::string line = last_line(r.err);
  EXPECT_EQ(line.rfind(tmp / "run/checkpoints/step_2: the training data changed since this checkpoint", 0), 0u)
      << r.err;
  EXPECT_NE(line.find("resume needs the same data"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(tmp / "run/metrics.jsonl"), before) << "the run directory was changed";
}

TEST(Refusals, EveryDocumentLongerThanTheSequenceWithDrop) {
  TempDir tmp;
  write(tmp / "long.txt", std::string(40, 'a') + "\n\n" + std::string(50, 'b') + "\n");
  write(tmp / "cfg.yaml", tiny(tmp / "run", tmp / "long.txt"));
  expect_refused(run("train " + tmp / "cfg.yaml data.overlong=drop data.cache_dir=" + tmp / "cache", tmp),
                 tmp / "long.txt" + ": every document is longer than data.seq_len (16 tokens) and "
                                    "data.overlong is drop",
                 tmp / "run");
}

TEST(Refusals, SourceWeightsThatSelectNoDocument) {
  TempDir tmp;
  write(tmp / "three.txt", "one\n\ntwo\n\nthree\n");  // 3 documents; 0.1 of them rounds to none
  write(tmp / "cfg.yaml", tiny(tmp / "run", "[{path: " + tmp / "three.txt" + ", weight: 0.1}]"));
  expect_refused(run("train " + tmp / "cfg.yaml data.cache_dir=" + tmp / "cache", tmp),
                 tmp / "three.txt" + ": the weights of data.train select no documents", tmp / "run");
}

TEST(Refusals, ValidFractionOfASingleDocument) {
  TempDir tmp;
  write(tmp / "one.txt", "the only paragraph\n");
  write(tmp / "cfg.yaml", tiny(tmp / "run", tmp / "one.txt"));
  expect_refused(run("train " + tmp / "cfg.yaml data.valid_fraction=0.1 data.cache_dir=" + tmp / "cache", tmp),
                 tmp / "one.txt" + ": data.valid_fraction needs at least 2 documents to split, got 1",
                 tmp / "run");
}

// few_shot_file: with the byte tokenizer every record's tokens grow by at least the bytes of the
// example chosen (all examples are the same here, so which one is chosen does not matter), and the
// loss-carrying tokens (the completions) stay the same.
TEST(FewShotFile, ExamplesArePrependedWithoutLoss) {
  TempDir tmp;
  const std::string p = "Q: what is two and two?\n", c = "A: four\n";
  std::string shots;
  for (int i = 0; i < 3; ++i) shots += nlohmann::json{{"prompt", p}, {"completion", c}}.dump() + "\n";
  write(tmp / "shots.jsonl", shots);
  std::string records;
  const int n = 6;
  for (int i = 0; i < n; ++i)
    records += nlohmann::json{{"prompt", "Q: " + std::to_string(i) + "?\n"},
                              {"completion", "A: " + std::to_string(i) + "\n"}}.dump() + "\n";
  write(tmp / "data.jsonl", records);
  const std::string base = tiny(tmp / "run", tmp / "data.jsonl");
  write(tmp / "cfg.yaml", base.substr(0, base.find("data: {")) +
                              "data: {train: " + tmp / "data.jsonl" + ", format: jsonl, seq_len: 64,"
                              " packing: pad}\n" + base.substr(base.find("train: {")));
  const std::string common = " train.steps=1 train.global_batch=" + std::to_string(n) +
                             " data.cache_dir=" + tmp / "cache";
  const Result plain = run("train " + tmp / "cfg.yaml" + common + " output.dir=" + tmp / "plain", tmp);
  ASSERT_EQ(plain.code, 0) << plain.err;
  const Result shot = run("train " + tmp / "cfg.yaml" + common + " output.dir=" + tmp / "shot" +
                              " data.template.few_shot_file=" + tmp / "shots.jsonl" +
                              " data.template.few_shot_count=1",
                          tmp);
  ASSERT_EQ(shot.code, 0) << shot.err;
  const auto a = read_jsonl(tmp / "plain/metrics.jsonl").at(0), b = read_jsonl(tmp / "shot/metrics.jsonl").at(0);
  EXPECT_EQ(b["loss_tokens"], a["loss_tokens"]);  // pad mode, one step of every record
  ASSERT_GT(prepared_tokens(plain.err), 0) << plain.err;
  EXPECT_GE(prepared_tokens(shot.err),
            prepared_tokens(plain.err) + n * static_cast<std::int64_t>(p.size() + c.size()))
      << plain.err << shot.err;
  // A record of another kind in the file is refused at its line.
  write(tmp / "bad.jsonl", nlohmann::json{{"prompt", p}, {"completion", c}}.dump() + "\n" +
                               nlohmann::json{{"text", "not an example"}}.dump() + "\n");
  expect_refused(run("train " + tmp / "cfg.yaml" + common + " output.dir=" + tmp / "bad" +
                         " data.template.few_shot_file=" + tmp / "bad.jsonl",
                     tmp),
                 tmp / "bad.jsonl" + ":2: few-shot examples must be {\"prompt\", \"completion\"} records",
                 tmp / "bad");
}

// prompt_search with a generation metric: candidates are ranked by it, highest first, and the
// table says which metric it is.
TEST(PromptSearch, RanksByAGenerationMetricHighestFirst) {
  TempDir tmp;
  const std::string cfg = tmp / "search.yaml";
  std::ofstream(cfg) << read_file(TAILOR_SOURCE_DIR "/configs/translation-example.yaml")
                     << "prompt_search:\n"
                        "  metric: chrf\n"
                        "  max_records: 4\n"
                        "  candidates:\n"
                        "    - name: terse\n"
                        "      translation: \"{src}\\n\"\n"
                        "    - name: with-system\n"
                        "      system: \"You translate software messages.\"\n";
  const Result s = run("prompt-search " + cfg + " data.cache_dir=" + tmp / "cache" +
                           " runtime.threads=2",
                       tmp);
  ASSERT_EQ(s.code, 0) << s.err;
  std::istringstream in(s.out);
  std::string header, line;
  std::getline(in, header);
  EXPECT_NE(header.find("chrf"), std::string::npos) << s.out;
  std::vector<double> scores;
  for (int i = 0; i < 3 && std::getline(in, line); ++i) {
    std::istringstream f(line);
    int rank = 0;
    std::string name;
    double loss = 0, score = 0;  // columns: rank, prompt, dev loss, the metric
    f >> rank >> name >> loss >> score;
    EXPECT_EQ(rank, i + 1) << s.out;
    scores.push_back(score);
  }
  ASSERT_EQ(scores.size(), 3u) << s.out;
  EXPECT_GE(scores[0], scores[1]) << s.out;
  EXPECT_GE(scores[1], scores[2]) << s.out;
}

}  // namespace
