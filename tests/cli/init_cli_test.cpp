// Issue 19, item 10: `tailor init [preset]` writes commented starter configs that validate and
// train, `tailor configs` lists the bundled configs with their descriptions, and an unknown
// command is answered with the nearest one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/run_tailor.h"

namespace {

namespace fs = std::filesystem;
using tailor::testing::read_file;
using tailor::testing::run_tailor;
using tailor::testing::TempDir;
using tailor::testing::write_text;

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

const std::vector<std::string> kPresets = {"full", "lora", "translation", "chat"};

TEST(Init, EveryPresetValidatesAndTrains) {
  TempDir tmp;
  for (const std::string& preset : kPresets) {
    const std::string path = tmp / (preset + ".yaml");
    const auto w = run_tailor("init " + preset + " -o " + path, tmp);
    ASSERT_EQ(w.code, 0) << preset << ": " << w.err;
    const std::string text = read_file(path);
    EXPECT_EQ(text.rfind("# ", 0), 0u) << preset << ": starts with its explanation";
    // The same text on stdout without -o.
    EXPECT_EQ(run_tailor("init " + preset, tmp).out, text) << preset;
    const auto v = run_tailor("validate " + path, tmp);
    EXPECT_EQ(v.code, 0) << preset << ": " << v.err;
    // Two steps of it run (the length key switched by override, as the docs show).
    const std::string length =
        preset == "chat" ? " train.epochs=0 train.steps=2" : " train.steps=2";
    const auto t = run_tailor("train " + path + length +
                                  " runtime.device=cpu runtime.threads=2 train.eval_every=2"
                                  " data.cache_dir=" + tmp / "cache" + " output.dir=" +
                                  tmp / ("run-" + preset) +
                                  (preset == "translation" ? " train.eval_max_records=2" : ""),
                              tmp);
    EXPECT_EQ(t.code, 0) << preset << ": " << t.err;
    EXPECT_TRUE(fs::exists(tmp / ("run-" + preset + "/export/config.json"))) << preset;
  }
  // No preset: full.
  EXPECT_EQ(run_tailor("init", tmp).out, read_file(tmp / "full.yaml"));
}

TEST(Init, RefusesToOverwriteAndUnknownPresets) {
  TempDir tmp;
  write_text(tmp / "mine.yaml", "precious\n");
  auto r = run_tailor("init lora -o " + tmp / "mine.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "mine.yaml" + ": exists; not overwritten (give another -o, or remove it "
                                       "first)\n");
  EXPECT_EQ(read_file(tmp / "mine.yaml"), "precious\n");
  r = run_tailor("init qlora", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("qlora: QLoRA is not built yet"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  r = run_tailor("init llama", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "tailor init: unknown preset \"llama\" (the presets are full, lora, "
                   "translation, chat)\n");
}

// The first sentence of a file's opening comment, read here independently.
std::string first_sentence(const std::string& path) {
  std::ifstream f(path);
  std::string text, line;
  while (std::getline(f, line) && line.rfind("# ", 0) == 0) {
    if (!text.empty()) text += ' ';
    text += line.substr(2);
    const auto dot = text.find(". ");
    if (dot != std::string::npos) return text.substr(0, dot + 1);
    if (text.back() == '.') break;
  }
  return text;
}

TEST(Configs, ListsEveryBundledConfigWithItsDescription) {
  TempDir tmp;
  const auto r = run_tailor("configs", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> files;
  for (const char* dir : {"/configs", "/configs/recipes"})  // not configs/templates/
    for (const auto& e : fs::directory_iterator(std::string(TAILOR_SOURCE_DIR) + dir))
      if (e.path().extension() == ".yaml") files.push_back(e.path().filename().string());
  ASSERT_GE(files.size(), 3u);
  EXPECT_EQ(lines(r.out), static_cast<int>(files.size())) << r.out;
  std::istringstream out(r.out);
  for (std::string line; std::getline(out, line);) {
    const std::string path = line.substr(0, line.find(' '));
    ASSERT_EQ(path.rfind("configs/", 0), 0u) << line;
    const std::string description = first_sentence(TAILOR_SOURCE_DIR "/" + path);
    ASSERT_FALSE(description.empty()) << path;
    EXPECT_TRUE(line.ends_with("  " + description)) << line << "\nwant: " << description;
  }
  EXPECT_NE(r.out.find("configs/quickstart.yaml"), std::string::npos);
}

TEST(Cli, UnknownCommandSuggestsTheNearest) {
  TempDir tmp;
  auto r = run_tailor("trian configs/quickstart.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "tailor: unknown command \"trian\" (did you mean train?)\n");
  r = run_tailor("valdiate configs/quickstart.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "tailor: unknown command \"valdiate\" (did you mean validate?)\n");
  r = run_tailor("frobnicate", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("tailor: unknown command \"frobnicate\" (commands: init, configs, "
                       "validate, prepare, train"),
            std::string::npos)
      << r.err;
}

}  // namespace
