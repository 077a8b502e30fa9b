// The `tailor` executable's contract: exit codes (0 ok and --help, 2 bad input), one line per
// problem on stderr, nothing written before the config and data validate.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "../trainer/test_dirs.h"

namespace {

using tailor::testing::read_file;
using tailor::testing::TempDir;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs a shell command line; its stdout and stderr go to files in tmp.
Result run_shell(const std::string& line, const TempDir& tmp) {
  const std::string out = tmp / "stdout.txt", err = tmp / "stderr.txt";
  const std::string cmd = "{ " + line + "; } >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

Result run(const std::string& args, const TempDir& tmp) {
  return run_shell(TAILOR_BINARY_DIR "/tailor " + args, tmp);
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

const std::string kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

std::string tiny(const std::string& out_dir, const std::string& data = kData) {
  return "output: {dir: " + out_dir + "}\n"
         "model: {vocab_size: 257, hidden_size: 16, num_layers: 1, num_heads: 2,\n"
         "        intermediate_size: 32, max_position_embeddings: 64}\n"
         "data: {train: " + data + ", seq_len: 16}\n"
         "train: {steps: 3, global_batch: 2}\n"
         "optimizer: {lr: 1.0e-3}\n";
}

TEST(Cli, HelpAndVersionExitZero) {
  TempDir tmp;
  Result r = run("--help", tmp);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("train"), std::string::npos);
  EXPECT_NE(r.out.find("validate"), std::string::npos);
  EXPECT_EQ(run("train --help", tmp).code, 0);
  r = run("--version", tmp);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("0.1.0"), std::string::npos);
}

TEST(Cli, UsageErrorsAreOneLineExitTwo) {
  TempDir tmp;
  for (const char* args : {"", "frobnicate", "train", "train --bogus x.yaml", "validate a.yaml --threads"}) {
    const Result r = run(args, tmp);
    EXPECT_EQ(r.code, 2) << "args: " << args;
    EXPECT_EQ(lines(r.err), 1) << "args: " << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("tailor: ", 0), 0u) << r.err;
  }
}

// Every entry under `root`: its relative path -> type, size, modification time and contents (or
// a link's target). Two snapshots are equal only when nothing was created, removed or rewritten.
std::map<std::string, std::string> snapshot(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> out;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(e.path(), root).string();
    if (e.is_symlink()) {
      out[rel] = "link " + fs::read_symlink(e.path()).string();
    } else if (e.is_directory()) {
      out[rel] = "dir";
    } else {
      out[rel] = "file " + std::to_string(e.file_size()) + " " +
                 std::to_string(e.last_write_time().time_since_epoch().count()) + " " +
                 read_file(e.path().string());
    }
  }
  return out;
}

// Runs `tailor args` with `cwd` as the working directory (stdout/stderr kept in tmp, outside it).
Result run_in(const std::string& cwd, const std::string& args, const TempDir& tmp) {
  return run_shell("cd " + cwd + " && " TAILOR_BINARY_DIR "/tailor " + args, tmp);
}

// `tailor validate` writes nothing: the quickstart (whose output.dir, data.cache_dir and data
// path are relative to the working directory) is validated in a directory of its own, whose
// whole tree must be unchanged afterwards. `tailor prepare` in the same place must change it,
// which shows that the snapshot sees what the program writes there.
TEST(Cli, ValidateWritesNothing) {
  namespace fs = std::filesystem;
  TempDir tmp;
  const std::string work = tmp / "work";
  fs::create_directories(work + "/datasets/devils-dictionary");
  fs::copy_file(TAILOR_SOURCE_DIR "/configs/quickstart.yaml", work + "/quickstart.yaml");
  fs::copy_file(kData, work + "/datasets/devils-dictionary/devils_dictionary.txt");
  const auto before = snapshot(work);
  for (const char* args : {"validate quickstart.yaml", "validate quickstart.yaml train.resume=auto",
                           "validate quickstart.yaml train.resume=never"}) {
    const Result r = run_in(work, args, tmp);
    EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
    EXPECT_EQ(snapshot(work), before) << args;
  }
  const Result p = run_in(work, "prepare quickstart.yaml", tmp);
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(snapshot(work), before) << "prepare wrote nothing the snapshot could see";
}

TEST(Cli, ConfigErrorsAllListedExitTwoNothingWritten) {
  TempDir tmp;
  const std::string cfg = tmp / "bad.yaml";
  write(cfg, "output: {dir: " + tmp / "run" + "}\n"
             "model: {vocab_size: 257, hidden_size: 16, num_layers: 1, num_heads: 2,\n"
             "        intermediate_size: 32}\n"
             "data: {train: " + kData + ", seq_len: 16}\n"
             "train: {steps: 3, global_batch: 2}\n"
             "optimizer: {lr: 1.0e-3, betaz: [0.9, 0.95]}\n");
  for (const char* cmd : {"validate ", "train "}) {
    const Result r = run(cmd + cfg + " train.steps=zero", tmp);
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.err, cfg + ":6:25: optimizer.betaz: unknown key (did you mean \"betas\"?)\n"
                     "<override 1>: train.steps: expected an integer, got \"zero\"\n");
    EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
  }
}

TEST(Cli, MissingConfigFileIsUserError) {
  TempDir tmp;
  const Result r = run("train " + tmp / "nope.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "nope.yaml" + ": cannot read: No such file or directory\n");
}

TEST(Cli, BadDataIsOneLineExitTwoNothingWritten) {
  TempDir tmp;
  write(tmp / "bad.txt", "good\nbad \xc3\x28 pair\n");
  write(tmp / "cfg.yaml", tiny(tmp / "run", tmp / "bad.txt"));
  const Result r = run("train " + tmp / "cfg.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "bad.txt" + ":2: invalid UTF-8 (byte 0xc3 at offset 9)\n");
  EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
}

TEST(Cli, TrainWritesTheRunDirectory) {
  TempDir tmp;
  write(tmp / "cfg.yaml", tiny(tmp / "run"));
  const Result r = run("train " + tmp / "cfg.yaml" + " train.steps=2 runtime.threads=1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("step 2/2 | loss "), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(tmp / "run/config.resolved.yaml"));
  EXPECT_EQ(lines(read_file(tmp / "run/metrics.jsonl")), 2);
  EXPECT_NE(read_file(tmp / "run/config.resolved.yaml").find("threads: 1"), std::string::npos);
}

TEST(Cli, TranslationExamplePreparesAndTrains) {
  TempDir tmp;
  const std::string cfg = TAILOR_SOURCE_DIR "/configs/translation-example.yaml";
  const std::string common = " data.cache_dir=" + tmp / "cache" + " runtime.threads=1";
  const Result p1 = run("prepare " + cfg + common, tmp);
  ASSERT_EQ(p1.code, 0) << p1.err;
  EXPECT_NE(p1.err.find("data: prepared 2275 documents"), std::string::npos) << p1.err;
  EXPECT_NE(p1.err.find("data: 25 documents are longer than data.seq_len (256 tokens): dropped"),
            std::string::npos)
      << p1.err;
  EXPECT_NE(p1.err.find(" MB/s"), std::string::npos) << p1.err;
  const std::string dir = p1.out.substr(0, p1.out.find('\n'));
  for (const char* f : {"tokens.bin", "loss.bin", "docs.bin", "manifest.json"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  const Result p2 = run("prepare " + cfg + common, tmp);
  ASSERT_EQ(p2.code, 0) << p2.err;
  EXPECT_EQ(p2.out, p1.out);
  EXPECT_NE(p2.err.find("data: reusing the tokenized cache"), std::string::npos) << p2.err;
  // A template change is a different cache.
  const Result p3 = run("prepare " + cfg + common + " data.train_on_prompt=true", tmp);
  ASSERT_EQ(p3.code, 0) << p3.err;
  EXPECT_NE(p3.out, p1.out);
  const Result t = run("train " + cfg + common + " train.steps=3 schedule.warmup_steps=0 output.dir=" +
                           tmp / "run",
                       tmp);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.err.find("data: reusing the tokenized cache"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("step 3/3 | loss "), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("eval at step 3: loss "), std::string::npos) << t.err;
  const std::string metrics = read_file(tmp / "run/metrics.jsonl");
  EXPECT_NE(metrics.find("\"eval_loss\":"), std::string::npos);
  // Loss only on the translations: far fewer loss tokens than tokens.
  const auto first = nlohmann::json::parse(metrics.substr(0, metrics.find('\n')));
  EXPECT_LT(first["loss_tokens"].get<std::int64_t>() * 2, first["tokens"].get<std::int64_t>());
}

// configs/chat-example.yaml (llama3 preset, system prompt, loss on the answers only) prepares and
// trains; the shipped configs/templates/llama3.yaml is the same template, so it reuses the cache.
TEST(Cli, ChatExamplePreparesAndTrains) {
  TempDir tmp;
  const std::string cfg = TAILOR_SOURCE_DIR "/configs/chat-example.yaml";
  const std::string common = " data.cache_dir=" + tmp / "cache" + " runtime.threads=1";
  const Result p = run("prepare " + cfg + common, tmp);
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.err.find("data: prepared 200 documents"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("the tokenizer has no token <|eot_id|>"), std::string::npos) << p.err;
  const Result t = run("train " + cfg + common +
                           " data.template.preset=configs/templates/llama3.yaml train.steps=3"
                           " schedule.warmup_steps=0 output.dir=" + tmp / "run",
                       tmp);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.err.find("data: reusing the tokenized cache"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("step 3/3 | loss "), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("eval at step 3: loss "), std::string::npos) << t.err;
  const std::string metrics = read_file(tmp / "run/metrics.jsonl");
  const auto first = nlohmann::json::parse(metrics.substr(0, metrics.find('\n')));
  EXPECT_LT(first["loss_tokens"].get<std::int64_t>() * 3, first["tokens"].get<std::int64_t>());
  // The resolved config carries the template file's contents, not its path.
  const std::string resolved = read_file(tmp / "run/config.resolved.yaml");
  EXPECT_NE(resolved.find("bos: \"<|begin_of_text|>\""), std::string::npos) << resolved;
  // data.packing: pad: one sequence per training chat (190 of 200; 10 held out).
  const Result pad = run("train " + cfg + common + " data.packing=pad train.steps=2"
                         " schedule.warmup_steps=0 output.dir=" + tmp / "run_pad",
                         tmp);
  ASSERT_EQ(pad.code, 0) << pad.err;
  // 200 chats, 5% (10) held out; each training chat is a sequence of its own.
  EXPECT_NE(pad.err.find("(190 documents, "), std::string::npos) << pad.err;
  EXPECT_NE(pad.err.find(" tokens, 190 sequences of 512"), std::string::npos) << pad.err;
  EXPECT_NE(pad.err.find("step 2/2 | loss "), std::string::npos) << pad.err;
}

TEST(Cli, BadChatTemplateFileIsOneLineExitTwo) {
  TempDir tmp;
  write(tmp / "tmpl.yaml", "name: mine\nuser:\n  prefix: \"Q: \"\nasistant:\n  prefix: \"A: \"\n");
  const std::string args = " " TAILOR_SOURCE_DIR "/configs/chat-example.yaml data.template.preset=" +
                           tmp / "tmpl.yaml" + " output.dir=" + tmp / "run";
  for (const char* cmd : {"validate", "train"}) {
    const Result r = run(cmd + args, tmp);
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.err, tmp / "tmpl.yaml" + ":4:1: asistant: unknown key (did you mean \"assistant\"?)\n");
    EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
  }
}

TEST(Cli, BadJsonlIsOneLineExitTwoNothingWritten) {
  TempDir tmp;
  write(tmp / "bad.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"}\n");
  write(tmp / "cfg.yaml", tiny(tmp / "run", tmp / "bad.jsonl"));
  const std::string args = " data.format=jsonl data.cache_dir=" + tmp / "cache";
  const Result r = run("train " + tmp / "cfg.yaml" + args, tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "bad.jsonl" + ":2: missing field \"completion\"\n");
  EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
  const Result p = run("prepare " + tmp / "cfg.yaml" + args, tmp);
  EXPECT_EQ(p.code, 2);
  EXPECT_EQ(p.err, r.err);
}

// data.packing: pad on plain text with the byte tokenizer: the counts the trainer reports follow
// from the file's bytes alone (one document per line, one token per byte plus the end-of-sequence
// token, one sequence per document since every line fits).
TEST(Cli, PadModeCountsFollowFromTheBytes) {
  TempDir tmp;
  std::string text;
  std::size_t documents = 0, tokens = 0;
  for (int i = 0; i < 37; ++i) {
    std::string line = "line " + std::to_string(i) + ":";
    for (int k = 0; k < i % 9; ++k) line += " w\xc3\xb6rd";  // UTF-8: two bytes for the o-umlaut
    text += line + "\n";
    ++documents;
    tokens += line.size() + 1;
  }
  write(tmp / "lines.txt", text);
  write(tmp / "cfg.yaml", tiny(tmp / "run", tmp / "lines.txt"));
  const Result r = run("train " + tmp / "cfg.yaml" + " data.split=line data.packing=pad data.seq_len=64"
                       " train.steps=1 data.cache_dir=" + tmp / "cache", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string want = "(" + std::to_string(documents) + " documents, " +
                           std::to_string(tokens) + " tokens, " + std::to_string(documents) +
                           " sequences of 64";
  EXPECT_NE(r.err.find(want), std::string::npos) << "want " << want << "\n" << r.err;
}

}  // namespace
