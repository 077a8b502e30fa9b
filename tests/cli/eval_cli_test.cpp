// `tailor eval` and `tailor prompt-search` on the translation example: the dev loss equals the one
// training logged for the same model, the generation metrics equal `tailor metrics` (checked
// against sacreBLEU) on the written hypotheses, prompt candidates are ranked by their loss, and
// bad input is one line with exit 2.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../trainer/test_dirs.h"
#include "config/config.h"

namespace {

using tailor::testing::read_file;
using tailor::testing::read_jsonl;
using tailor::testing::TempDir;

struct Result {
  int code = -1;
  std::string out, err;
};

Result run(const std::string& args, const TempDir& tmp) {
  const std::string cmd = "cd " TAILOR_SOURCE_DIR " && " TAILOR_BINARY_DIR "/tailor " + args +
                          " >" + tmp / "stdout.txt" + " 2>" + tmp / "stderr.txt";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(tmp / "stdout.txt"),
          read_file(tmp / "stderr.txt")};
}

nlohmann::json last_json_line(const std::string& out) {
  const auto end = out.find_last_not_of('\n');
  const auto begin = out.rfind('\n', end);
  return nlohmann::json::parse(out.substr(begin == std::string::npos ? 0 : begin + 1, end + 1));
}

const std::string kConfig = TAILOR_SOURCE_DIR "/configs/translation-example.yaml";

// A preference objective (DPO with LoRA: the reference is the base, adapters off): `tailor eval`
// reports the dev pairs' loss and rewards exactly as training's evaluation logged them, and
// generation answers each pair's prompt, scored against its chosen answer.
TEST(EvalCli, PreferenceCheckpointReportsTheTrainingRunsPairStatistics) {
  TempDir tmp;
  const std::string cfg = tmp / "dpo.yaml";
  const std::string pairs = TAILOR_SOURCE_DIR "/datasets/gettext-translations/dev.pairs.jsonl";
  std::ofstream(cfg) << "output: {dir: " << tmp / "run" << "}\n"
                        "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4,\n"
                        "        num_kv_heads: 2, intermediate_size: 64, max_position_embeddings: 128}\n"
                        "data: {train: " << pairs << ", valid: " << pairs << ", format: jsonl,\n"
                        "       packing: pad, seq_len: 96, cache_dir: " << tmp / "cache" << "}\n"
                        "objective: {type: dpo, beta: 0.5}\n"
                        "peft: {method: lora, rank: 4, alpha: 8}\n"
                        "train: {steps: 3, seed: 2, global_batch: 8}\n"
                        "optimizer: {lr: 1.0e-2}\n"
                        "checkpoint: {every_steps: 3}\n"
                        "runtime: {threads: 2}\n";
  ASSERT_EQ(run("train " + cfg, tmp).code, 0) << read_file(tmp / "stderr.txt");
  nlohmann::json trained;
  for (const auto& j : read_jsonl(tmp / "run/metrics.jsonl"))
    if (j.contains("eval_loss")) trained = j;
  ASSERT_TRUE(trained.contains("eval_rewards_accuracy")) << trained.dump();
  const Result e =
      run("eval " + cfg + " --checkpoint " + tmp / "run" + " --max-records 2 --max-new-tokens 4", tmp);
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.out.find("dev loss     " + fmt::format("{:.4f}", trained["eval_loss"].get<double>()) +
                       " (200 pairs)"),
            std::string::npos)
      << e.out;
  EXPECT_NE(e.out.find("rewards_accuracy "), std::string::npos) << e.out;
  const nlohmann::json r = last_json_line(e.out);
  EXPECT_EQ(r["eval_tokens"], 200);  // pairs
  EXPECT_EQ(r["records"], 2);        // generated answers to the pairs' prompts
  for (const char* k : {"eval_loss", "eval_rewards_chosen", "eval_rewards_rejected",
                        "eval_rewards_accuracy", "eval_rewards_margin", "eval_logps_chosen",
                        "eval_logps_rejected"})
    EXPECT_EQ(r[k].get<double>(), trained[k].get<double>()) << k;  // bit for bit
  EXPECT_GT(std::abs(r["eval_rewards_margin"].get<double>()), 0.0);  // the policy moved
}

TEST(EvalCli, CheckpointLossEqualsTrainingsEvalAndMetricsEqualTailorMetrics) {
  TempDir tmp;
  const std::string common = " data.cache_dir=" + tmp / "cache" + " runtime.threads=2";
  const std::string run_dir = tmp / "run";
  ASSERT_EQ(run("train " + kConfig + common + " output.dir=" + run_dir +
                    " train.steps=6 schedule.warmup_ratio=0 schedule.warmup_steps=2"
                    " checkpoint.every_steps=6",
                tmp).code,
            0);
  double trained_eval = 0.0;
  for (const auto& j : read_jsonl(run_dir + "/metrics.jsonl"))
    if (j.contains("eval_loss")) trained_eval = j["eval_loss"].get<double>();
  const Result e = run("eval " + kConfig + common + " --checkpoint " + run_dir +
                           " --max-records 6 --max-new-tokens 12 --hypotheses " + tmp / "hyp.jsonl",
                       tmp);
  ASSERT_EQ(e.code, 0) << e.err;
  const nlohmann::json r = last_json_line(e.out);
  EXPECT_EQ(r["step"], 6);
  EXPECT_EQ(r["eval_loss"].get<double>(), trained_eval);  // the same computation, bit for bit
  EXPECT_EQ(r["records"], 6);
  // The metrics equal `tailor metrics` on the hypotheses and references written out.
  std::ofstream hyp(tmp / "hyp.txt"), ref(tmp / "ref.txt");
  const auto rows = read_jsonl(tmp / "hyp.jsonl");
  ASSERT_EQ(rows.size(), 6u);
  for (const auto& row : rows) {
    hyp << row["hypothesis"].get<std::string>() << "\n";
    ref << row["reference"].get<std::string>() << "\n";
  }
  hyp.close();
  ref.close();
  const Result m = run("metrics --hyp " + tmp / "hyp.txt" + " --ref " + tmp / "ref.txt", tmp);
  ASSERT_EQ(m.code, 0) << m.err;
  const nlohmann::json mj = last_json_line(m.out);
  for (const char* k : {"bleu", "chrf", "chrf_pp", "rouge_l", "exact_match"})
    EXPECT_EQ(r[k].get<double>(), mj[k].get<double>()) << k;
  EXPECT_EQ(r["bleu_signature"], mj["bleu_signature"]);
  // generate --checkpoint decodes the dev records as eval did (same weights, template, greedy).
  const std::string dev = TAILOR_SOURCE_DIR "/datasets/gettext-translations/dev.sample.jsonl";
  std::ofstream(tmp / "six.jsonl") << [&] {
    std::istringstream in(read_file(dev));
    std::string line, text;
    for (int i = 0; i < 6 && std::getline(in, line); ++i) text += line + "\n";
    return text;
  }();
  const std::string prompt = " --max-new-tokens 12";
  const Result gen = run("generate --checkpoint " + run_dir + " --prompts " + tmp / "six.jsonl" + prompt, tmp);
  ASSERT_EQ(gen.code, 0) << gen.err;
  std::vector<std::string> completions;
  std::istringstream lines(gen.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line.front() == '{')
      completions.push_back(nlohmann::json::parse(line)["completion"].get<std::string>());
  ASSERT_EQ(completions.size(), 6u) << gen.out;
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(completions[i], rows[i]["hypothesis"]) << i;
  const Result both = run("generate --checkpoint " + run_dir + " --adapter x --prompt hi", tmp);
  EXPECT_EQ(both.code, 2);
  EXPECT_NE(both.err.find("--adapter: goes with --model"), std::string::npos) << both.err;
}

TEST(EvalCli, PromptSearchRanksCandidatesByDevLoss) {
  TempDir tmp;
  const std::string cfg = tmp / "search.yaml";
  std::ofstream(cfg) << read_file(kConfig)
                     << "prompt_search:\n"
                        "  metric: loss\n"
                        "  candidates:\n"
                        "    - name: terse\n"
                        "      translation: \"{src}\\n\"\n"
                        "    - name: with-system\n"
                        "      system: \"You translate software messages.\"\n";
  const std::string common = " data.cache_dir=" + tmp / "cache" + " runtime.threads=2";
  const Result s = run("prompt-search " + cfg + common + " --write-best " + tmp / "best.yaml", tmp);
  ASSERT_EQ(s.code, 0) << s.err;
  // Three rows (base + 2), ranked by loss, ascending.
  std::vector<std::pair<std::string, double>> rows;
  std::istringstream in(s.out);
  std::string line;
  std::getline(in, line);  // header
  for (int i = 0; i < 3 && std::getline(in, line); ++i) {
    std::istringstream f(line);
    int rank = 0;
    std::string name;
    double loss = 0.0;
    f >> rank >> name >> loss;
    EXPECT_EQ(rank, i + 1);
    rows.emplace_back(name, loss);
  }
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_LE(rows[0].second, rows[1].second);
  EXPECT_LE(rows[1].second, rows[2].second);
  // The base prompt's loss is what `tailor eval` reports for the same model (4 decimals printed).
  const Result e = run("eval " + kConfig + common + " --no-generate", tmp);
  ASSERT_EQ(e.code, 0) << e.err;
  const double base = last_json_line(e.out)["eval_loss"].get<double>();
  const auto base_row = std::find_if(rows.begin(), rows.end(),
                                     [](const auto& row) { return row.first == "base"; });
  ASSERT_NE(base_row, rows.end()) << "no row for the config's own prompt\n" << s.out;
  EXPECT_NEAR(base_row->second, base, 1e-4);
  // The best prompt written as a config validates and carries the winner's template: the
  // candidate's own keys, the config's for what the candidate leaves out.
  EXPECT_NE(s.out.find("best: " + rows[0].first), std::string::npos) << s.out;
  EXPECT_EQ(run("validate " + tmp / "best.yaml", tmp).code, 0);
  const tailor::config::TemplateConfig base_template = tailor::config::load_config(kConfig).data.prompt_template;
  tailor::config::TemplateConfig want = base_template;
  if (rows[0].first == "terse") want.translation = "{src}\n";
  if (rows[0].first == "with-system") want.system = "You translate software messages.";
  const tailor::config::TemplateConfig got = tailor::config::load_config(tmp / "best.yaml").data.prompt_template;
  EXPECT_EQ(got.translation, want.translation) << rows[0].first;
  EXPECT_EQ(got.system, want.system) << rows[0].first;
  EXPECT_EQ(got.preset, want.preset) << rows[0].first;
}

// prompt_search.search_records: the candidates are ranked on a seeded search split and scored on
// the held-out rest too. With two dev records and one search record, the two columns of the base
// prompt are `tailor eval`'s loss of each record alone, one each; the split is the same on a
// rerun, and a split that leaves nothing held out is one line, exit 2.
TEST(EvalCli, PromptSearchReportsASearchAndAHeldOutSplit) {
  TempDir tmp;
  std::vector<std::string> records;
  {
    std::ifstream dev(TAILOR_SOURCE_DIR "/datasets/gettext-translations/dev.sample.jsonl");
    for (std::string line; records.size() < 2 && std::getline(dev, line);)
      if (!line.empty()) records.push_back(line);
  }
  ASSERT_EQ(records.size(), 2u);
  const std::string both = tmp / "two.jsonl";
  std::ofstream(both) << records[0] << "\n" << records[1] << "\n";
  // One record is shorter than seq_len: each padded to its own sequence.
  const std::string common =
      " data.cache_dir=" + tmp / "cache" + " runtime.threads=2 data.packing=pad";
  double alone[2] = {0.0, 0.0};
  for (int i = 0; i < 2; ++i) {
    const std::string one = tmp / fmt::format("one{}.jsonl", i);
    std::ofstream(one) << records[static_cast<std::size_t>(i)] << "\n";
    const Result e = run("eval " + kConfig + common + " --no-generate --data " + one, tmp);
    ASSERT_EQ(e.code, 0) << e.err;
    alone[i] = last_json_line(e.out)["eval_loss"].get<double>();
  }
  ASSERT_GT(std::abs(alone[0] - alone[1]), 1e-3) << "the two records must be told apart";
  const std::string cfg = tmp / "search.yaml";
  std::ofstream(cfg) << read_file(kConfig)
                     << "prompt_search:\n"
                        "  search_records: 1\n"
                        "  candidates:\n"
                        "    - name: terse\n"
                        "      translation: \"{src}\\n\"\n";
  const std::string cmd = "prompt-search " + cfg + common + " --data " + both;
  const Result s = run(cmd, tmp);
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.out.find("held-out loss"), std::string::npos) << s.out;
  std::istringstream in(s.out);
  std::string line;
  std::getline(in, line);  // header
  std::vector<std::pair<double, double>> by_rank;
  std::optional<std::pair<double, double>> base;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    int rank = 0;
    std::string name;
    double search = 0.0, heldout = 0.0;
    if (!(f >> rank >> name >> search >> heldout)) continue;
    by_rank.emplace_back(search, heldout);
    if (name == "base") base = std::make_pair(search, heldout);
  }
  ASSERT_EQ(by_rank.size(), 2u) << s.out;
  EXPECT_LE(by_rank[0].first, by_rank[1].first) << "ranked by the search split";
  ASSERT_TRUE(base.has_value()) << s.out;
  const bool first_searched = std::abs(base->first - alone[0]) < 1e-4;
  EXPECT_NEAR(base->first, first_searched ? alone[0] : alone[1], 1e-4) << s.out;
  EXPECT_NEAR(base->second, first_searched ? alone[1] : alone[0], 1e-4) << s.out;
  // The same ranking as one JSON line, at full precision; progress with an ETA on the log.
  const nlohmann::json j = last_json_line(s.out);
  ASSERT_EQ(j["ranking"].size(), 2u) << s.out;
  for (std::size_t i = 0; i < 2; ++i) {
    const nlohmann::json& row = j["ranking"][i];
    EXPECT_EQ(row["rank"].get<int>(), static_cast<int>(i) + 1);
    EXPECT_NEAR(row["loss"].get<double>(), by_rank[i].first, 1e-4);
    EXPECT_NEAR(row["heldout_loss"].get<double>(), by_rank[i].second, 1e-4);
    if (row["prompt"] == "base") {
      EXPECT_NEAR(row["loss"].get<double>(), first_searched ? alone[0] : alone[1], 1e-6);
      EXPECT_NEAR(row["heldout_loss"].get<double>(), first_searched ? alone[1] : alone[0], 1e-6);
    }
  }
  EXPECT_NE(s.err.find("prompt 2/2 "), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("ETA"), std::string::npos) << s.err;
  const Result again = run(cmd, tmp);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, s.out) << "the split is seeded";
  const Result none_held = run(cmd + " prompt_search.search_records=2", tmp);
  EXPECT_EQ(none_held.code, 2);
  EXPECT_NE(none_held.err.find("prompt_search.search_records: 2 leaves no held-out records"),
            std::string::npos)
      << none_held.err;
  EXPECT_EQ(std::count(none_held.err.begin(), none_held.err.end(), '\n'), 1) << none_held.err;
}

// A planted optimum for few-shot selection (issue 24): a tiny model is trained on records whose
// context is one of the pool's demonstrations (rendered as the template renders few-shot
// examples) or none, answering "yes" after the planted demonstration and "no" after any other or
// none. On dev records that want "yes", greedy selection from the pool must pick the planted one;
// the random baseline rows and the held-out split are reported, and --write-best writes the
// chosen demonstration.
TEST(EvalCli, FewShotSelectionFindsThePlantedDemonstration) {
  TempDir tmp;
  const std::vector<std::pair<std::string, std::string>> pool = {
      {"Colour of grass? ", "green, mostly"},
      {"Reverse table: ", "elbat"},  // the planted one: pool line 2
      {"Count to three: ", "one two three"},
      {"Capital of France? ", "Paris"}};
  const char* words[] = {"apple", "river", "stone", "cloud", "maple", "tiger", "ocean", "lemon",
                         "piano", "house", "grape", "sword"};
  {
    std::ofstream train(tmp / "train.jsonl"), dev(tmp / "dev.jsonl"), p(tmp / "pool.jsonl");
    for (const auto& [q, a] : pool) p << nlohmann::json{{"prompt", q}, {"completion", a}}.dump() << "\n";
    for (int rep = 0; rep < 2; ++rep)
      for (const char* w : words) {
        const std::string item = std::string("Item ") + w + ": ";
        train << nlohmann::json{{"prompt", item}, {"completion", "no"}}.dump() << "\n";
        for (std::size_t d = 0; d < pool.size(); ++d)
          // A demonstration renders as prompt + completion and a blank line (docs/data.md).
          train << nlohmann::json{{"prompt", pool[d].first + pool[d].second + "\n\n" + item},
                                  {"completion", d == 1 ? "yes" : "no"}}.dump() << "\n";
      }
    for (const char* w : {"bread", "chair", "light", "plant", "storm", "water", "spoon", "cabin",
                          "flute", "candle", "mango", "robot"})
      dev << nlohmann::json{{"prompt", std::string("Item ") + w + ": "}, {"completion", "yes"}}.dump()
          << "\n";
  }
  const std::string model =
      "model: {family: llama, vocab_size: 257, hidden_size: 48, num_layers: 2, num_heads: 4,\n"
      "        num_kv_heads: 2, intermediate_size: 96, max_position_embeddings: 128}\n";
  const std::string cfg = tmp / "train.yaml";
  std::ofstream(cfg) << "output: {dir: " << tmp / "run" << "}\n" << model
                     << "data: {train: " << tmp / "train.jsonl" << ", valid: " << tmp / "dev.jsonl"
                     << ", format: jsonl, tokenizer: byte, seq_len: 64, packing: pad,\n"
                        "       cache_dir: " << tmp / "cache" << "}\n"
                        "train: {steps: 150, seed: 1, global_batch: 8, log_every: 50}\n"
                        "optimizer: {lr: 3.0e-3}\n"
                        "checkpoint: {every_steps: 150}\n"
                        "runtime: {threads: 2}\n";
  const Result t = run("train " + cfg, tmp);
  ASSERT_EQ(t.code, 0) << t.err;
  // The search config: no demonstration of its own; choose 1 of the pool's 4.
  const std::string search = tmp / "search.yaml";
  std::ofstream(search) << "output: {dir: " << tmp / "search" << "}\n" << model
                        << "data: {train: " << tmp / "train.jsonl" << ", valid: "
                        << tmp / "dev.jsonl"
                        << ", format: jsonl, tokenizer: byte, seq_len: 64, packing: pad,\n"
                           "       cache_dir: " << tmp / "cache" << "}\n"
                           "train: {steps: 1, seed: 1, global_batch: 8}\n"
                           "optimizer: {lr: 3.0e-3}\n"
                           "runtime: {threads: 2}\n"
                           "prompt_search: {strategy: few_shot, pool: " << tmp / "pool.jsonl"
                        << ", shots: 1, random_seeds: 2, search_records: 6}\n";
  const std::string best = tmp / "best.yaml";
  const Result s = run("prompt-search " + search + " --checkpoint " + tmp / "run" +
                           " --write-best " + best, tmp);
  ASSERT_EQ(s.code, 0) << s.err;
  const nlohmann::json j = last_json_line(s.out.substr(0, s.out.rfind("best:")));
  // base, the greedy choice and two random draws, ranked by the search split.
  ASSERT_EQ(j["ranking"].size(), 4u) << s.out;
  std::map<std::string, nlohmann::json> rows;
  for (const nlohmann::json& r : j["ranking"]) rows[r["prompt"].get<std::string>()] = r;
  ASSERT_TRUE(rows.contains("greedy 2")) << s.out;  // pool line 2: the planted demonstration
  EXPECT_EQ(j["ranking"][0]["prompt"], "greedy 2") << s.out;
  EXPECT_LT(rows["greedy 2"]["loss"].get<double>(), rows["base"]["loss"].get<double>()) << s.out;
  EXPECT_LT(rows["greedy 2"]["heldout_loss"].get<double>(),
            rows["base"]["heldout_loss"].get<double>()) << s.out;
  int random_rows = 0;
  for (const auto& [name, r] : rows) random_rows += name.starts_with("random");
  EXPECT_EQ(random_rows, 2) << s.out;
  // The greedy step tried all four, each logged with the progress count.
  EXPECT_NE(s.err.find("prompt 4/"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("few-shot step 1/1: demonstration 2"), std::string::npos) << s.err;
  // --write-best: the chosen demonstration as the template's few_shot list.
  const std::string written = read_file(best);
  EXPECT_NE(written.find("elbat"), std::string::npos) << written;
  EXPECT_EQ(written.find("Paris"), std::string::npos) << written;
  // A budget of two evaluations: the first two demonstrations are tried (the planted one is the
  // second), the rest not; base and the random baselines are still scored.
  const Result budget = run("prompt-search " + search + " --checkpoint " + tmp / "run" +
                                " prompt_search.max_evaluations=2",
                            tmp);
  ASSERT_EQ(budget.code, 0) << budget.err;
  EXPECT_NE(budget.err.find("budget reached (2 evaluations"), std::string::npos) << budget.err;
  EXPECT_NE(budget.err.find("'try 2'"), std::string::npos) << budget.err;
  EXPECT_EQ(budget.err.find("'try 3'"), std::string::npos) << budget.err;
  EXPECT_EQ(last_json_line(budget.out)["ranking"].size(), 4u) << budget.out;
  EXPECT_EQ(last_json_line(budget.out)["ranking"][0]["prompt"], "greedy 2") << budget.out;
  // More shots than the pool holds: one line, exit 2.
  const Result too_many = run("prompt-search " + search + " prompt_search.shots=5", tmp);
  EXPECT_EQ(too_many.code, 2);
  EXPECT_NE(too_many.err.find("prompt_search.shots: 5 demonstrations asked for"),
            std::string::npos) << too_many.err;
  const Result no_pool = run("prompt-search " + search + " prompt_search.pool=", tmp);
  EXPECT_EQ(no_pool.code, 2);
  EXPECT_NE(no_pool.err.find("prompt_search.pool"), std::string::npos) << no_pool.err;
}

// prompt-search scores every candidate on the same records: a candidate whose prompts no longer
// fit the model is answered "" for them (scored wrong), not judged on the records left over.
TEST(EvalCli, PromptSearchScoresPromptsTooLongForTheModelAsWrong) {
  TempDir tmp;
  const std::string cfg = tmp / "search.yaml";
  std::ofstream(cfg) << read_file(kConfig) << "prompt_search:\n"
                        "  metric: exact_match\n"
                        "  max_records: 3\n"
                        "  max_new_tokens: 4\n"
                        "  candidates:\n"
                        "    - name: long\n"
                        "      system: \"" << std::string(300, 'x') << "\"\n";
  // (data.overlong=split: the loss side scores the long records in pieces.)
  const Result s = run("prompt-search " + cfg + " data.cache_dir=" + tmp / "cache" +
                           " runtime.threads=2 data.overlong=split",
                       tmp);
  ASSERT_EQ(s.code, 0) << s.err;  // before: exit 2, the candidate had no records to score
  const nlohmann::json j = last_json_line(s.out);
  ASSERT_EQ(j["ranking"].size(), 2u) << s.out;
  for (const nlohmann::json& row : j["ranking"])
    if (row["prompt"] == "long") EXPECT_EQ(row["exact_match"].get<double>(), 0.0) << s.out;
  EXPECT_NE(s.err.find("answered empty (scored wrong)"), std::string::npos) << s.err;
}

TEST(EvalCli, PromptsTooLongForTheModelAreSkippedForGeneration) {
  TempDir tmp;
  std::ofstream dev(tmp / "dev.jsonl");
  std::string words;
  for (int i = 0; i < 80; ++i) words += "word ";
  dev << nlohmann::json{{"src", words}, {"tgt", "Wort"}, {"src_lang", "eng_Latn"},
                        {"tgt_lang", "deu_Latn"}}.dump() << "\n";
  for (int i = 0; i < 10; ++i)
    dev << nlohmann::json{{"src", "File " + std::to_string(i)}, {"tgt", "Datei " + std::to_string(i)},
                          {"src_lang", "eng_Latn"}, {"tgt_lang", "deu_Latn"}}.dump() << "\n";
  dev.close();
  const Result r = run("eval " + kConfig + " data.cache_dir=" + tmp / "cache" + " --data " +
                           tmp / "dev.jsonl" + " --max-new-tokens 2",
                       tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("1 records skipped for generation"), std::string::npos) << r.err;
  EXPECT_EQ(last_json_line(r.out)["records"], 10);
}

TEST(EvalCli, BadInputIsOneLineAndExit2) {
  TempDir tmp;
  const Result no_dev = run("eval " + kConfig + " 'data.valid=\"\"'", tmp);
  EXPECT_EQ(no_dev.code, 2);
  EXPECT_NE(no_dev.err.find("data.valid: evaluation needs dev data"), std::string::npos) << no_dev.err;
  const Result no_ckpt = run("eval " + kConfig + " --checkpoint " + tmp / "nothing", tmp);
  EXPECT_EQ(no_ckpt.code, 2) << no_ckpt.err;
  const Result no_candidates = run("prompt-search " + kConfig, tmp);
  EXPECT_EQ(no_candidates.code, 2);
  EXPECT_NE(no_candidates.err.find("prompt_search.candidates: list the prompts to compare"),
            std::string::npos)
      << no_candidates.err;
}

}  // namespace
