// Hostile and faulty inputs through the `tailor` executable (issue 27): a disk that fills during a
// checkpoint or the final export, and hostile checkpoints (made by tests/checkpoint/fixtures/
// make_hostile_checkpoints.py with h5py, committed) put in place of a real checkpoint's model
// file with the manifest re-hashed, as an attacker would. Each must end with one line naming
// the file and the reason, the documented exit code, and nothing left half-written.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "../trainer/test_dirs.h"
#include "core/sha256.h"

namespace {

namespace fs = std::filesystem;
using tailor::testing::read_file;
using tailor::testing::TempDir;

struct Result {
  int code = -1;  // exit code; 128 + N when killed by signal N
  std::string out, err;
};

Result run(const std::string& args, const TempDir& tmp, const std::string& env = "") {
  const std::string cmd = env + " " + std::string(TAILOR_BINARY_DIR "/tailor ") + args + " >" +
                          tmp / "o.txt" + " 2>" + tmp / "e.txt";
  const int status = std::system(cmd.c_str());
  int code = -1;
  if (WIFEXITED(status)) code = WEXITSTATUS(status);
  return {code, read_file(tmp / "o.txt"), read_file(tmp / "e.txt")};
}


int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// The last line of `text` (a run's error comes after its log lines).
std::string last_line(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text.substr(text.rfind('\n') + 1);  // npos + 1 == 0
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

const std::string kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";
const std::string kFullDisk = TAILOR_BINARY_DIR "/tests/checkpoint/libtailor_full_disk.so";

// A tiny llama-family run of 4 steps with checkpoints at 2 and 4.
std::string tiny_config(const std::string& out_dir) {
  return "output: {dir: " + out_dir + "}\n"
         "model: {vocab_size: 257, hidden_size: 8, num_layers: 1, num_heads: 2, num_kv_heads: 1,\n"
         "        intermediate_size: 16, max_position_embeddings: 64}\n"
         "data: {train: " + kData + ", split: paragraph, seq_len: 32}\n"
         "train: {steps: 4, global_batch: 4}\n"
         "optimizer: {lr: 3.0e-3}\n"
         "checkpoint: {every_steps: 2}\n";
}

// The disk fills from the first write into the final export's directory: exit 1 with the
// system's reason, and no export.tmp/ left behind.
TEST(HostileInputs, AFullDiskDuringTheFinalExportLeavesNoTmp) {
  TempDir tmp;
  const std::string run_dir = tmp / "run";
  write(tmp / "run.yaml", tiny_config(run_dir));
  const Result r = run("train " + tmp / "run.yaml", tmp,
                       "TAILOR_TEST_FULL_DISK=0:/run/export.tmp/ LD_PRELOAD=" + kFullDisk);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(last_line(r.err).ends_with(": No space left on device")) << r.err;
  EXPECT_FALSE(fs::exists(run_dir + "/export.tmp"));
  EXPECT_FALSE(fs::exists(run_dir + "/export"));
  EXPECT_TRUE(fs::exists(run_dir + "/checkpoints/step_4/manifest.json"));
}

// The disk fills inside an HDF5 shard: exit 1 (not SIGSEGV at exit) with the system's reason,
// the .tmp directory removed, `latest` on the previous checkpoint.
TEST(HostileInputs, AFullDiskInsideAnHdf5ShardExitsOneWithTheReason) {
  TempDir tmp;
  const std::string run_dir = tmp / "run";
  write(tmp / "run.yaml", tiny_config(run_dir));
  for (const char* after : {"0", "3", "9"}) {
    fs::remove_all(run_dir);
    const Result r = run("train " + tmp / "run.yaml", tmp,
                         std::string("TAILOR_TEST_FULL_DISK=") + after +
                             ":/checkpoints/step_4.tmp/model LD_PRELOAD=" + kFullDisk);
    EXPECT_EQ(r.code, 1) << "write " << after << ": " << r.err;
    const std::string error = last_line(r.err);
    EXPECT_NE(error.find("/step_4.tmp/model-tp0-of-1.h5: "), std::string::npos) << r.err;
    EXPECT_TRUE(error.ends_with(": No space left on device")) << r.err;
    EXPECT_FALSE(fs::exists(run_dir + "/checkpoints/step_4.tmp"));
    EXPECT_EQ(fs::read_symlink(run_dir + "/checkpoints/latest").string(), "step_2");
  }
}

const std::string kFixtures = TAILOR_SOURCE_DIR "/tests/checkpoint/fixtures";

// Trains the tiny run in tmp/run (checkpoints at steps 2 and 4); returns its run directory.
std::string train_tiny(const TempDir& tmp) {
  const std::string run_dir = tmp / "run";
  write(tmp / "run.yaml", tiny_config(run_dir));
  const Result r = run("train " + tmp / "run.yaml", tmp);
  EXPECT_EQ(r.code, 0) << r.err;
  return run_dir;
}

// Sets file `name`'s size and SHA-256 in dir/manifest.json to the file's own, as an attacker who
// edits a checkpoint does.
void rehash(const std::string& dir, const std::string& name) {
  nlohmann::json m = nlohmann::json::parse(read_file(dir + "/manifest.json"));
  for (nlohmann::json& f : m["files"])
    if (f["name"] == name) {
      f["bytes"] = fs::file_size(dir + "/" + name);
      f["sha256"] = tailor::sha256_file(dir + "/" + name);
    }
  write(dir + "/manifest.json", m.dump(2));
}

// A copy of the run's step_2 under tmp/<name>/step_2 with `fixture` as its model file.
std::string hostile_copy(const TempDir& tmp, const std::string& run_dir, const std::string& name,
                         const std::string& fixture) {
  const std::string dir = tmp / (name + "/step_2");
  fs::create_directories(tmp / name);
  fs::copy(run_dir + "/checkpoints/step_2", dir);
  fs::copy_file(kFixtures + "/" + fixture, dir + "/model-tp0-of-1.h5",
                fs::copy_options::overwrite_existing);
  rehash(dir, "model-tp0-of-1.h5");
  return dir;
}

struct Hostile {
  const char* fixture;
  const char* reason;  // what follows "<dir>/model-tp0-of-1.h5: " (or "<dir>: ") in the error
  bool model_check;    // refused only against the model (export, resume), not by inspect
};

const Hostile kHostile[] = {
    {"external_passwd.h5",
     "dataset model.layers.0.mlp.up_proj.weight: external raw storage is refused (only data "
     "inside the file is read)", false},
    {"external_dev_zero.h5",
     "dataset model.layers.0.mlp.up_proj.weight: external raw storage is refused (only data "
     "inside the file is read)", false},
    {"virtual_missing.h5",
     "dataset model.layers.0.mlp.up_proj.weight: virtual storage is refused (only data inside "
     "the file is read)", false},
    {"gzip_filter.h5",
     "dataset model.layers.0.mlp.up_proj.weight: filter 1 is refused (Tailor writes only "
     "fletcher32)", false},
    {"transposed_gate.h5",
     "dataset model.layers.0.mlp.gate_proj.weight: stored as [8, 16], its local_shape attribute "
     "says [16, 8]", false},
    {"soft_link.h5",
     "model.norm.weight: soft and external links are refused (a checkpoint holds its datasets "
     "itself)", false},
    {"external_link.h5",
     "model.norm.weight: soft and external links are refused (a checkpoint holds its datasets "
     "itself)", false},
    {"embedding_100_rows.h5",
     "tensor model.embed_tokens.weight: shape [100, 8] in the checkpoint, [384, 8] in the model",
     true},
    {"embedding_2p26_rows.h5",
     "tensor model.embed_tokens.weight: shape [67108864, 8] in the checkpoint, [384, 8] in the "
     "model", true},
};

// Each hostile model file is refused with one line naming it and the reason, exit 2, by
// inspect (what it can see without the model), export and resume; nothing is exported and no
// run directory is written.
TEST(HostileInputs, HostileModelFilesAreRefusedBeforeAnyDataIsRead) {
  TempDir tmp;
  const std::string run_dir = train_tiny(tmp);
  for (const Hostile& h : kHostile) {
    SCOPED_TRACE(h.fixture);
    const std::string name = fs::path(h.fixture).stem().string();
    const std::string dir = hostile_copy(tmp, run_dir, name, h.fixture);
    const std::string expected =
        (h.model_check ? dir : dir + "/model-tp0-of-1.h5") + ": " + h.reason;
    const Result inspect = run("inspect " + dir, tmp);
    if (h.model_check) {
      EXPECT_EQ(inspect.code, 0) << inspect.err;
    } else {
      EXPECT_EQ(inspect.code, 2) << inspect.out;
      EXPECT_EQ(inspect.err, expected + "\n");
    }
    const std::string out = tmp / (name + "/export");
    const Result exported = run("export --checkpoint " + dir + " --out " + out, tmp);
    EXPECT_EQ(exported.code, 2) << exported.err;
    EXPECT_EQ(last_line(exported.err), expected) << exported.err;
    EXPECT_FALSE(fs::exists(out));
    const std::string resumed_dir = tmp / (name + "/resumed");
    const Result resumed = run("train " + tmp / "run.yaml" + " train.resume=" + dir +
                                   " output.dir=" + resumed_dir, tmp);
    EXPECT_EQ(resumed.code, 2) << resumed.err;
    EXPECT_EQ(last_line(resumed.err), expected) << resumed.err;
    EXPECT_FALSE(fs::exists(resumed_dir));
  }
}

// Edits the JSON file dir/name in place.
void edit_json(const std::string& dir, const std::string& name,
               const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(read_file(dir + "/" + name));
  edit(j);
  write(dir + "/" + name, j.dump(2));
}

struct Forgery {
  const char* name;
  std::function<void(const std::string& dir)> forge;
  std::string reason;  // after "<dir>/"
};

// Manifest and state fields an attacker edits (the state file re-hashed): every number is
// range-checked, the types name their key, every file the resume reads must be listed, and
// optimizer moments must be finite (second moments >= 0). inspect and resume both refuse them.
TEST(HostileInputs, ForgedManifestAndStateFieldsAreRefused) {
  TempDir tmp;
  const std::string run_dir = train_tiny(tmp);
  using nlohmann::json;
  const auto manifest = [](std::function<void(json&)> edit) {
    return [edit](const std::string& dir) { edit_json(dir, "manifest.json", edit); };
  };
  const auto state = [](std::function<void(json&)> edit) {
    return [edit](const std::string& dir) {
      edit_json(dir, "state-rank0.json", edit);
      rehash(dir, "state-rank0.json");
    };
  };
  const auto optimizer = [](const char* fixture) {
    return [fixture](const std::string& dir) {
      fs::copy_file(kFixtures + "/" + fixture, dir + "/optim-tp0-dp0-of-1x1.h5",
                    fs::copy_options::overwrite_existing);
      rehash(dir, "optim-tp0-dp0-of-1x1.h5");
    };
  };
  const std::vector<Forgery> forgeries = {
      {"steps_minus_one", manifest([](json& j) { j["optimizer"]["steps"] = -1; }),
       "manifest.json: optimizer.steps: -1 is out of range [0, 2]"},
      {"steps_max", manifest([](json& j) { j["optimizer"]["steps"] = INT64_MAX; }),
       "manifest.json: optimizer.steps: 9223372036854775807 is out of range [0, 2]"},
      {"steps_1e15", manifest([](json& j) { j["optimizer"]["steps"] = 1'000'000'000'000'000; }),
       "manifest.json: optimizer.steps: 1000000000000000 is out of range [0, 2]"},
      {"steps_zero", manifest([](json& j) { j["optimizer"]["steps"] = 0; }),
       "manifest.json: optimizer.steps: 0 updates, but 2 steps with 0 skipped leave 2"},
      {"layout_overflow", manifest([](json& j) {
         j["layout"]["tensor"] = 65536;
         j["layout"]["data"] = 65536;
         j["layout"]["world"] = 0;
       }),
       "manifest.json: layout.world: 0 is out of range [1, 1048576]"},
      {"layout_type", manifest([](json& j) { j["layout"]["tensor"] = "1"; }),
       "manifest.json: layout.tensor: expected an integer, got \"1\""},
      {"state_unlisted", manifest([](json& j) {
         json kept = json::array();
         for (const json& f : j["files"])
           if (f["name"] != "state-rank0.json") kept.push_back(f);
         j["files"] = kept;
       }),
       "manifest.json: lists no state-rank0.json"},
      {"state_skipped", state([](json& j) { j["skipped_steps"] = -1; }),
       "state-rank0.json: skipped_steps: -1 is out of range [0, 2]"},
      {"state_step_type", state([](json& j) { j["step"] = "x"; }),
       "state-rank0.json: step: expected an integer, got \"x\""},
      {"exp_avg_sq_negative", optimizer("optim_negative_exp_avg_sq.h5"),
       ": tensor exp_avg_sq/model.layers.0.mlp.up_proj.weight: element 5 is -1e-06 (a checkpoint "
       "holds only finite values, and second moments >= 0)"},
      {"exp_avg_sq_nan", optimizer("optim_nan_exp_avg_sq.h5"),
       ": tensor exp_avg_sq/model.layers.0.mlp.up_proj.weight: element 5 is nan (a checkpoint "
       "holds only finite values, and second moments >= 0)"},
  };
  for (const Forgery& f : forgeries) {
    SCOPED_TRACE(f.name);
    const std::string dir = tmp / (std::string(f.name) + "/step_2");
    fs::create_directories(tmp / f.name);
    fs::copy(run_dir + "/checkpoints/step_2", dir);
    f.forge(dir);
    // The moments are read by the resume only; inspect checks the rest.
    const bool values = f.reason.front() == ':';
    const std::string expected = values ? dir + f.reason : dir + "/" + f.reason;
    if (!values) {
      const Result inspect = run("inspect " + dir, tmp);
      EXPECT_EQ(inspect.code, 2) << inspect.out;
      EXPECT_EQ(inspect.err, expected + "\n");
    }
    const std::string resumed_dir = tmp / (std::string(f.name) + "/resumed");
    const Result resumed = run("train " + tmp / "run.yaml" + " train.resume=" + dir +
                                   " output.dir=" + resumed_dir, tmp);
    EXPECT_EQ(resumed.code, 2) << resumed.err;
    EXPECT_EQ(last_line(resumed.err), expected) << resumed.err;
    EXPECT_FALSE(fs::exists(resumed_dir));
  }
}

// Copies directory `from` to `to` and applies `edit` to the JSON file `name` in it.
std::string edited_copy(const std::string& from, const std::string& to, const std::string& name,
                        const std::function<void(nlohmann::json&)>& edit) {
  fs::create_directories(fs::path(to).parent_path());
  fs::copy(from, to, fs::copy_options::recursive);
  if (!name.empty()) edit_json(to, name, edit);
  return to;
}

// What nlohmann threw (type errors, numbers out of range) reached the CLI as "internal error",
// exit 1: each is now one line naming the file and the key, exit 2.
TEST(HostileInputs, MalformedJsonFilesNameTheFileAndKey) {
  TempDir tmp;
  using nlohmann::json;
  const std::string golden = TAILOR_SOURCE_DIR "/tests/golden";
  // A model directory with a tokenizer.
  const std::string model = tmp / "model";
  fs::copy(golden + "/models/llama", model);
  fs::copy_file(golden + "/tokenizers/llama3/tokenizer.json", model + "/tokenizer.json");
  const auto generate = [&](const std::string& args) {
    return run("generate " + args + " --prompt hi --max-new-tokens 2", tmp);
  };
  {  // tokenizer.json: a post-processor type that is not a string
    const std::string dir = edited_copy(model, tmp / "pp", "tokenizer.json",
                                        [](json& j) { j["post_processor"] = {{"type", 1}}; });
    const Result r = generate("--model " + dir);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(last_line(r.err),
              dir + "/tokenizer.json: post_processor.type: expected a string, got 1 (a number)");
  }
  {  // tokenizer.json: a number out of range
    const std::string dir = edited_copy(model, tmp / "big", "", {});
    std::string text = read_file(dir + "/tokenizer.json");
    text.insert(text.find('{') + 1, "\"x\": 1e999, ");
    write(dir + "/tokenizer.json", text);
    const Result r = generate("--model " + dir);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(last_line(r.err),
              dir + "/tokenizer.json: malformed JSON: number overflow parsing '1e999'");
  }
  {  // model.safetensors.index.json: a number out of range
    const std::string dir = edited_copy(model, tmp / "index", "", {});
    fs::remove(dir + "/model.safetensors");
    write(dir + "/model.safetensors.index.json",
          R"({"metadata": {"total_size": 1e999}, "weight_map": {}})");
    const Result r = generate("--model " + dir);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(last_line(r.err), dir + "/model.safetensors.index.json: not valid JSON: number "
                                      "overflow parsing '1e999'");
  }
  // adapter_config.json: booleans that are not, a rank beyond any model.
  const std::string adapter = golden + "/peft/lora_hub";
  const std::pair<const char*, json> adapter_edits[] = {
      {"use_dora", 1}, {"fan_in_fan_out", "no"}, {"r", std::int64_t{1} << 40}};
  const char* adapter_reasons[] = {"use_dora: expected true or false, got 1",
                                   "fan_in_fan_out: expected true or false, got \"no\"",
                                   "r: 1099511627776 is out of range [1, 65536]"};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& [key, value] = adapter_edits[i];
    const std::string dir = edited_copy(adapter, tmp / (std::string("adapter_") + key),
                                        "adapter_config.json",
                                        [&](json& j) { j[key] = value; });
    const Result r = generate("--model " + model + " --adapter " + dir);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(last_line(r.err), dir + "/adapter_config.json: " + adapter_reasons[i]);
  }
  // A training run: metrics.jsonl and the token cache's manifest.
  const std::string run_dir = tmp / "run";
  write(tmp / "run.yaml", tiny_config(run_dir));
  const std::string cache = "data.cache_dir=" + tmp / "cache";
  ASSERT_EQ(run("train " + tmp / "run.yaml" + " " + cache, tmp).code, 0);
  {  // a metrics.jsonl record whose step is not a number, found when resuming
    std::ofstream(run_dir + "/metrics.jsonl", std::ios::app) << R"({"step": "x"})" << "\n";
    const Result r = run("train " + tmp / "run.yaml" + " " + cache + " train.steps=6", tmp);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(last_line(r.err).starts_with(run_dir + "/metrics.jsonl:")) << r.err;
    EXPECT_TRUE(last_line(r.err).ends_with(": step: expected an integer, got \"x\"")) << r.err;
  }
  {  // the token cache's manifest
    fs::path manifest;
    for (const auto& e : fs::recursive_directory_iterator(tmp / "cache"))
      if (e.path().filename() == "manifest.json") manifest = e.path();
    ASSERT_FALSE(manifest.empty());
    edit_json(manifest.parent_path().string(), "manifest.json", [](json& j) { j["tokens"] = "x"; });
    const Result r = run("train " + tmp / "run.yaml" + " " + cache + " output.dir=" + tmp / "run2",
                         tmp);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(last_line(r.err), manifest.string() + ": tokens: expected an integer, got \"x\"");
  }
}

// Sizes beyond any model or machine are refused before anything is allocated (they ended in
// "out of host memory", exit 1, or a hang), with one line and exit 2.
TEST(HostileInputs, ResourceBombsAreRefusedBeforeAllocating) {
  TempDir tmp;
  using nlohmann::json;
  const std::string golden = TAILOR_SOURCE_DIR "/tests/golden";
  const std::string model = tmp / "model";
  fs::copy(golden + "/models/llama", model);
  fs::copy_file(golden + "/tokenizers/llama3/tokenizer.json", model + "/tokenizer.json");
  for (const char* threads : {"-5", "5000"}) {
    const Result r = run("generate --model " + model + " --prompt hi --threads " + threads, tmp);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
  }
  {
    const Result r = run("generate --model " + model + " --prompt hi --max-new-tokens 2147483647", tmp);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(last_line(r.err), "--max-new-tokens: 2147483647 is above Tailor's limit of 16777216 "
                                "(no model has that many positions)");
  }
  {
    const std::string dir = edited_copy(model, tmp / "vocab", "config.json",
                                        [](json& j) { j["vocab_size"] = std::int64_t{1} << 31; });
    const Result r = run("generate --model " + dir + " --prompt hi", tmp);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(last_line(r.err),
              dir + "/config.json: vocab_size: 2147483648 is above Tailor's limit of 16777216");
  }
  {  // a checkpoint whose config.yaml asks for hidden_size 2^20 (re-hashed)
    const std::string run_dir = train_tiny(tmp);
    const std::string dir = tmp / "wide/step_2";
    fs::create_directories(tmp / "wide");
    fs::copy(run_dir + "/checkpoints/step_2", dir);
    std::string cfg = read_file(dir + "/config.yaml");
    const std::size_t at = cfg.find("hidden_size: 8");
    ASSERT_NE(at, std::string::npos) << cfg;
    cfg.replace(at, 14, "hidden_size: 1048576");
    write(dir + "/config.yaml", cfg);
    rehash(dir, "config.yaml");
    edit_json(dir, "manifest.json",
              [&](json& j) { j["config"]["sha256"] = tailor::sha256_file(dir + "/config.yaml"); });
    const Result r = run("export --checkpoint " + dir + " --out " + tmp / "wide/out", tmp);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(last_line(r.err).starts_with(dir + "/config.yaml: the checkpoint's config does "
                                             "not load: "))
        << r.err;
    EXPECT_NE(last_line(r.err).find("model.hidden_size: must be"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(tmp / "wide/out"));
  }
}

}  // namespace
