// `tailor generate` through the executable, on a random LLaMA-style model directory with the
// llama3-style fixture tokenizer: a single --prompt prints exactly the text the library generates
// (streamed, then a newline); --prompts writes one JSON line per record, in order, with the same
// tokens whatever --batch-size; --stop cuts the text; bad input is one line on stderr and exit 2.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "data/tokenizer.h"
#include "eval/generate.h"
#include "trainer/test_dirs.h"

namespace {

using tailor::testing::read_file;
using tailor::testing::read_jsonl;
using tailor::testing::TempDir;

const std::string kTokenizerDir = TAILOR_SOURCE_DIR "/tests/golden/tokenizers/llama3";

struct Result {
  int code = -1;
  std::string out, err;
};

Result run(const std::string& args, const TempDir& tmp) {
  const std::string cmd = std::string(TAILOR_BINARY_DIR "/tailor generate ") + args + " >" +
                          tmp / "o.txt" + " 2>" + tmp / "e.txt";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(tmp / "o.txt"),
          read_file(tmp / "e.txt")};
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

class GenerateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = tailor::data::load_tokenizer(kTokenizerDir);
    hf_.model_type = "llama";
    auto& s = hf_.spec;
    s.vocab_size = tok_->vocab_size();
    s.hidden_size = 32;
    s.num_layers = 2;
    s.num_heads = 4;
    s.num_kv_heads = 2;
    s.head_dim = 8;
    s.intermediate_size = 48;
    s.max_position_embeddings = 64;
    s.init_std = 0.2;
    hf_.bos_token_id = tok_->bos_token_id().value_or(-1);
    hf_.eos_token_id = tok_->eos_token_id().value_or(-1);
    model_ = std::make_unique<tailor::model::Transformer>(s, ops_, tailor::DType::kF32);
    model_->init_parameters(31);
    tailor::checkpoint::save_hf_model(dir_, hf_, *model_, ops_, kTokenizerDir);
  }

  // What the library generates for a plain-template prompt (BOS + the prompt's tokens).
  std::string library_text(const std::string& prompt, std::int64_t new_tokens) {
    std::vector<std::int32_t> ids = {*tok_->bos_token_id()};
    const auto p = tok_->encode(prompt);
    ids.insert(ids.end(), p.begin(), p.end());
    tailor::eval::GenerateOptions o;
    o.max_new_tokens = new_tokens;
    o.stop_ids = {*tok_->eos_token_id()};
    const std::vector<std::vector<std::int32_t>> prompts = {ids};
    return tailor::eval::generate(*model_, tok_.get(), prompts, o).at(0).text;
  }

  std::string model_arg() const { return "--model " + dir_ + " --threads 1 "; }

  TempDir tmp_;
  std::string dir_ = tmp_ / "model";
  tailor::backend::CpuOps ops_{1};
  std::unique_ptr<tailor::data::Tokenizer> tok_;
  tailor::checkpoint::HfModelConfig hf_;
  std::unique_ptr<tailor::model::Transformer> model_;
};

TEST_F(GenerateCli, PromptPrintsTheGeneratedText) {
  const Result r = run(model_arg() + "--prompt 'The quick brown fox' --max-new-tokens 12", tmp_);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string want = library_text("The quick brown fox", 12);
  EXPECT_FALSE(want.empty());
  EXPECT_EQ(r.out, want + "\n");
}

TEST_F(GenerateCli, StopStringCutsThePrintedText) {
  const std::string full = library_text("Hello", 16);
  ASSERT_GE(full.size(), 6u);
  std::string stop;  // a letter or digit from the second half of the text
  for (std::size_t i = full.size() / 2; i < full.size() && stop.empty(); ++i)
    if (std::isalnum(static_cast<unsigned char>(full[i]))) stop = full.substr(i, 1);
  ASSERT_FALSE(stop.empty()) << full;
  const Result r =
      run(model_arg() + "--prompt Hello --max-new-tokens 16 --stop '" + stop + "'", tmp_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, full.substr(0, full.find(stop)) + "\n");
}

// Issue 19, item 13: --prompts reports its progress on stderr at each tenth of the records
// (stdout keeps only the JSON lines), then a summary.
TEST_F(GenerateCli, PromptsReportProgressOnStderr) {
  std::string records;
  for (int i = 0; i < 20; ++i) records += "{\"prompt\": \"Number " + std::to_string(i) + "\"}\n";
  write(tmp_ / "in.jsonl", records);
  const Result r = run(model_arg() + "--prompts " + tmp_ / "in.jsonl" +
                           " --max-new-tokens 3 --batch-size 4",
                       tmp_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_jsonl(tmp_ / "o.txt").size(), 20u);
  for (const char* done : {"generate: 4/20 prompts | ", "generate: 8/20 prompts | ",
                           "generate: 12/20 prompts | ", "generate: 16/20 prompts | "})
    EXPECT_NE(r.err.find(done), std::string::npos) << done << "\n" << r.err;
  EXPECT_EQ(r.err.find("generate: 20/20"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("generated 20 completions, "), std::string::npos) << r.err;
}

TEST_F(GenerateCli, PromptsWriteOneJsonLinePerRecord) {
  write(tmp_ / "in.jsonl",
        "{\"prompt\": \"The quick brown fox\", \"completion\": \"jumps\"}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n"
        "\n"
        "{\"src\": \"Guten Morgen\", \"src_lang\": \"deu_Latn\", \"tgt_lang\": \"eng_Latn\"}\n"
        "{\"text\": \"Once upon a time\"}\n");
  const std::string args = model_arg() + "--prompts " + tmp_ / "in.jsonl" +
                           " --max-new-tokens 6 --temperature 0.9 --top-p 0.95 --seed 4";
  const Result r = run(args + " --batch-size 3", tmp_);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto out = read_jsonl(tmp_ / "o.txt");
  ASSERT_EQ(out.size(), 4u);
  const std::vector<std::string> prompts = {"The quick brown fox", "Hi", "Guten Morgen",
                                            "Once upon a time"};
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].at("prompt"), prompts[i]);
    EXPECT_TRUE(out[i].at("completion").is_string());
    EXPECT_GE(out[i].at("tokens").get<int>(), 1);
    EXPECT_LE(out[i].at("tokens").get<int>(), 6);
  }
  EXPECT_EQ(out[0].at("reference"), "jumps");
  EXPECT_FALSE(out[1].contains("reference"));
  // The same seed gives the same lines with another batch size.
  const Result again = run(args + " --batch-size 1", tmp_);
  EXPECT_EQ(again.out, r.out);
}

TEST_F(GenerateCli, TemplatesChangeThePrompt) {
  write(tmp_ / "in.jsonl", "{\"prompt\": \"Hi\"}\n");
  const std::string args = model_arg() + "--prompts " + tmp_ / "in.jsonl" + " --max-new-tokens 8";
  const Result plain = run(args, tmp_);
  const Result chat = run(args + " --template llama3 --system 'Be brief.'", tmp_);
  ASSERT_EQ(plain.code, 0) << plain.err;
  ASSERT_EQ(chat.code, 0) << chat.err;
  EXPECT_NE(plain.out, chat.out);
}

// A template file renders and stops as the built-in preset of the same name (the files in
// configs/templates/ reproduce transformers' chat templates, as the presets do).
TEST_F(GenerateCli, TemplateFilesEqualTheBuiltInPresets) {
  write(tmp_ / "in.jsonl", "{\"prompt\": \"Hi\"}\n{\"messages\": [{\"role\": \"user\", "
                           "\"content\": \"Hello there\"}]}\n");
  const std::string args =
      model_arg() + "--prompts " + tmp_ / "in.jsonl" + " --max-new-tokens 8 --template ";
  // qwen3's prompt (with its thinking block) leaves no room in the test model's 64 positions
  // with a system prompt too.
  for (const char* name : {"llama3", "chatml", "mistral", "plain", "qwen3", "phi3", "gemma"}) {
    SCOPED_TRACE(name);
    const std::string system = std::string(name) == "qwen3" ? "" : " --system 'Be brief.'";
    const Result builtin = run(args + name + system, tmp_);
    const Result file =
        run(args + TAILOR_SOURCE_DIR + "/configs/templates/" + name + ".yaml" + system, tmp_);
    ASSERT_EQ(builtin.code, 0) << builtin.err;
    ASSERT_EQ(file.code, 0) << file.err;
    EXPECT_EQ(file.out, builtin.out);
  }
}

TEST_F(GenerateCli, BadInputIsOneLineAndExitTwo) {
  write(tmp_ / "bad.jsonl", "{\"prompt\": \"ok\"}\n{\"prompt\": 3}\n");
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "The quick brown fox. ";
  write(tmp_ / "long.jsonl", "{\"text\": \"" + long_text + "\"}\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--prompts " + tmp_ / "bad.jsonl", tmp_ / "bad.jsonl:2: "},
      {"--prompts " + tmp_ / "long.jsonl", tmp_ / "long.jsonl:1: the prompt has"},
      {"--prompts " + tmp_ / "missing.jsonl", tmp_ / "missing.jsonl: "},
      {"--prompt x --template nope", "--template: "},
      {"--prompt x --temperature -0.5", "--temperature: "},
      {"--prompt x --top-k -1", "--top-k: "},
      {"--prompt x --max-new-tokens 0", "--max-new-tokens: "},
      {"--prompt x --stop ''", "--stop: "},
      {"--prompt x --prompts " + tmp_ / "bad.jsonl", "tailor: "},
  };
  for (const auto& [args, prefix] : cases) {
    const Result r = run(model_arg() + args, tmp_);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_EQ(lines(r.err), 1) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << args << "\n" << r.err;
    EXPECT_EQ(r.out, "") << args;
  }
  const Result no_model = run("--model " + tmp_ / "nowhere" + " --prompt x", tmp_);
  EXPECT_EQ(no_model.code, 2) << no_model.err;
  EXPECT_EQ(lines(no_model.err), 1) << no_model.err;
}

}  // namespace
