// Training checkpoints through the CLI: `tailor inspect` (report, exit 0 / exit 2 naming a damaged
// file) and `tailor export --checkpoint` (the same tensors, bit for bit, as the trainer's own
// export of the final step, for a full run, a LoRA run and a bottleneck-adapter run; optimizer
// files never read).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../trainer/test_dirs.h"
#include "checkpoint/safetensors.h"

namespace {

namespace fs = std::filesystem;
using tailor::testing::read_file;
using tailor::testing::TempDir;

struct Result {
  int code = -1;
  std::string out, err;
};

Result run(const std::string& args, const TempDir& tmp) {
  const std::string cmd = std::string(TAILOR_BINARY_DIR "/tailor ") + args + " >" + tmp / "o.txt" +
                          " 2>" + tmp / "e.txt";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(tmp / "o.txt"),
          read_file(tmp / "e.txt")};
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

const std::string kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

// A tiny llama-family run of 4 steps with checkpoints at 2 and 4 (the last one is the final step,
// so its tensors are those the trainer exports).
std::string tiny(const std::string& out_dir, const std::string& extra = "") {
  return "output: {dir: " + out_dir + "}\n"
         "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 48, max_position_embeddings: 64}\n"
         "data: {train: " + kData + ", split: paragraph, seq_len: 32}\n"
         "train: {steps: 4, global_batch: 4}\n"
         "optimizer: {lr: 3.0e-3}\n"
         "checkpoint: {every_steps: 2}\n" + extra;
}

std::string train(const TempDir& tmp, const std::string& name, const std::string& extra = "") {
  const std::string run_dir = tmp / name;
  write(tmp / (name + ".yaml"), tiny(run_dir, extra));
  const Result r = run("train " + tmp / (name + ".yaml"), tmp);
  EXPECT_EQ(r.code, 0) << r.err;
  return run_dir;
}

// Every tensor of safetensors file `a` is in `b` with the same dtype, shape and bytes, and the
// other way round.
void expect_same_tensors(const std::string& a, const std::string& b) {
  const tailor::checkpoint::SafetensorsFile fa(a), fb(b);
  EXPECT_EQ(fa.names().size(), fb.names().size()) << a << " vs " << b;
  for (const std::string& name : fa.names()) {
    ASSERT_TRUE(fb.has(name)) << name << " missing from " << b;
    EXPECT_EQ(fa.info(name).dtype, fb.info(name).dtype) << name;
    EXPECT_EQ(fa.info(name).shape, fb.info(name).shape) << name;
    const auto ra = fa.raw(name), rb = fb.raw(name);
    ASSERT_EQ(ra.size(), rb.size()) << name;
    EXPECT_TRUE(std::equal(ra.begin(), ra.end(), rb.begin())) << name << " differs";
  }
}

// The first line of `text` containing `needle` ("" when none).
std::string line_with(const std::string& text, const std::string& needle) {
  const std::size_t at = text.find(needle);
  if (at == std::string::npos) return "";
  const std::size_t begin = text.rfind('\n', at) + 1;  // npos + 1 == 0
  return text.substr(begin, text.find('\n', at) - begin);
}

void flip_byte(const std::string& path, std::uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(at));
  f.put(static_cast<char>(c ^ 0x01));
}

TEST(CheckpointCli, InspectPrintsLayoutFilesAndTensors) {
  TempDir tmp;
  const std::string run_dir = train(tmp, "run");
  // A run directory, its checkpoints/ and a step directory all name a checkpoint.
  for (const std::string& path :
       {run_dir, run_dir + "/checkpoints", run_dir + "/checkpoints/step_2"}) {
    const Result r = run("inspect " + path, tmp);
    ASSERT_EQ(r.code, 0) << path << "\n" << r.err << r.out;
    const std::string step = path.ends_with("step_2") ? "2" : "4";
    EXPECT_NE(r.out.find("step         " + step + "\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("tensor 1 x data 1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("adamw, " + step + " updates applied"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("determinism\n  backend"), std::string::npos) << r.out;
    // Every file verifies.
    for (const char* f : {"config.yaml", "model-tp0-of-1.h5", "optim-tp0-dp0-of-1x1.h5",
                          "state-rank0.json"}) {
      const std::string line = line_with(r.out, std::string(" ") + f + "  ");  // a files row
      EXPECT_EQ(line.rfind("  ok ", 0), 0u) << f << "\n" << r.out;
      EXPECT_TRUE(line.ends_with(" verifies")) << line;
    }
    EXPECT_EQ(r.out.find("BAD"), std::string::npos) << r.out;
    // Tensors: name, global shape (vocabulary padded to 384), dtype, the file and slab holding it.
    EXPECT_NE(r.out.find("model.embed_tokens.weight"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("[384, 32]  f32   model-tp0-of-1.h5 [0:384, 0:32]"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("exp_avg/model.layers.1.mlp.down_proj.weight"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("summary: step " + step + ", 4 files"), std::string::npos) << r.out;
    EXPECT_TRUE(r.out.ends_with(": OK\n")) << r.out;
  }
}

TEST(CheckpointCli, InspectNamesADamagedFileAndExitsTwo) {
  TempDir tmp;
  const std::string run_dir = train(tmp, "run");
  const std::string model = run_dir + "/checkpoints/step_4/model-tp0-of-1.h5";
  flip_byte(model, fs::file_size(model) / 2);
  const Result r = run("inspect " + run_dir, tmp);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err, model + ": SHA-256 differs from the manifest (the file is damaged)\n");
  // The report is still printed; the other files verify.
  EXPECT_NE(r.out.find("BAD"), std::string::npos) << r.out;
  EXPECT_EQ(line_with(r.out, " model-tp0-of-1.h5  ").rfind("  BAD ", 0), 0u) << r.out;
  EXPECT_TRUE(line_with(r.out, " optim-tp0-dp0-of-1x1.h5  ").ends_with(" verifies")) << r.out;
  EXPECT_NE(r.out.find("1 do not verify"), std::string::npos) << r.out;

  // A missing file and a truncated one are named too.
  const std::string optim = run_dir + "/checkpoints/step_2/optim-tp0-dp0-of-1x1.h5";
  fs::resize_file(optim, fs::file_size(optim) - 1);
  Result t = run("inspect " + run_dir + "/checkpoints/step_2", tmp);
  EXPECT_EQ(t.code, 2);
  EXPECT_EQ(t.err.rfind(optim + ": ", 0), 0u) << t.err;
  EXPECT_NE(t.err.find("truncated"), std::string::npos) << t.err;
  fs::remove(optim);
  t = run("inspect " + run_dir + "/checkpoints/step_2", tmp);
  EXPECT_EQ(t.code, 2);
  EXPECT_EQ(t.err, optim + ": missing\n");
  // Not a checkpoint at all.
  t = run("inspect " + tmp.str(), tmp);
  EXPECT_EQ(t.code, 2);
  EXPECT_EQ(lines(t.err), 1) << t.err;
  EXPECT_EQ(t.err.rfind(tmp.str() + ": not a checkpoint", 0), 0u) << t.err;
}

TEST(CheckpointCli, ExportOfTheFinalCheckpointEqualsTheRunsExport) {
  TempDir tmp;
  const std::string run_dir = train(tmp, "run");
  // Optimizer files are never read: export works without them.
  fs::remove(run_dir + "/checkpoints/step_4/optim-tp0-dp0-of-1x1.h5");
  const Result r = run("export --checkpoint " + run_dir + " --out " + tmp / "exported", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_same_tensors(run_dir + "/export/model.safetensors", tmp / "exported/model.safetensors");
  EXPECT_EQ(read_file(run_dir + "/export/config.json"), read_file(tmp / "exported/config.json"));

  // An earlier checkpoint is another model; a damaged model file is refused (exit 2, named).
  ASSERT_EQ(run("export --checkpoint " + run_dir + "/checkpoints/step_2 --out " + tmp / "s2", tmp).code, 0);
  EXPECT_NE(read_file(run_dir + "/export/model.safetensors"), read_file(tmp / "s2/model.safetensors"));
  const std::string model = run_dir + "/checkpoints/step_2/model-tp0-of-1.h5";
  flip_byte(model, fs::file_size(model) / 3);
  const Result bad = run("export --checkpoint " + run_dir + "/checkpoints/step_2 --out " + tmp / "s2b", tmp);
  EXPECT_EQ(bad.code, 2);
  EXPECT_EQ(bad.err, model + ": SHA-256 differs from the manifest (the file is damaged)\n");
  EXPECT_FALSE(fs::exists(tmp / "s2b"));
  // --format peft needs a LoRA run.
  const Result peft = run("export --checkpoint " + run_dir + " --format peft --out " + tmp / "p", tmp);
  EXPECT_EQ(peft.code, 2);
  EXPECT_EQ(lines(peft.err), 1) << peft.err;
  EXPECT_EQ(peft.err.rfind("--format: ", 0), 0u) << peft.err;
}

TEST(CheckpointCli, ExportOfALoraCheckpointEqualsTheRunsExport) {
  TempDir tmp;
  const std::string run_dir =
      train(tmp, "lora", "peft: {method: lora, rank: 4, alpha: 8, target_modules: [all-linear]}\n");
  // The checkpoint holds the LoRA factors only; the base is the config's seeded init.
  const Result ins = run("inspect " + run_dir, tmp);
  ASSERT_EQ(ins.code, 0) << ins.err;
  EXPECT_NE(ins.out.find("lora: trainable tensors only; base seeded init"), std::string::npos) << ins.out;
  EXPECT_EQ(ins.out.find("model.embed_tokens.weight"), std::string::npos) << ins.out;
  EXPECT_NE(ins.out.find("q_proj.lora_A"), std::string::npos) << ins.out;

  ASSERT_EQ(run("export --checkpoint " + run_dir + " --out " + tmp / "hf", tmp).code, 0);
  expect_same_tensors(run_dir + "/export/model.safetensors", tmp / "hf/model.safetensors");
  expect_same_tensors(run_dir + "/export/adapter/adapter_model.safetensors",
                      tmp / "hf/adapter/adapter_model.safetensors");
  const Result r = run("export --checkpoint " + run_dir + " --format peft --out " + tmp / "peft", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_same_tensors(run_dir + "/export/adapter/adapter_model.safetensors",
                      tmp / "peft/adapter_model.safetensors");
  EXPECT_EQ(read_file(run_dir + "/export/adapter/adapter_config.json"),
            read_file(tmp / "peft/adapter_config.json"));
  EXPECT_FALSE(fs::exists(tmp / "peft/model.safetensors"));
}

TEST(CheckpointCli, ExportOfABottleneckAdapterCheckpointEqualsTheRunsExport) {
  TempDir tmp;
  const std::string run_dir = train(tmp, "adapter", "peft: {method: adapter, bottleneck: 8}\n");
  ASSERT_EQ(run("export --checkpoint " + run_dir + " --out " + tmp / "hf", tmp).code, 0);
  expect_same_tensors(run_dir + "/export/model.safetensors", tmp / "hf/model.safetensors");
  expect_same_tensors(run_dir + "/export/adapter/adapters.safetensors",
                      tmp / "hf/adapter/adapters.safetensors");
}

}  // namespace
