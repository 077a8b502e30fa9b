// Importing a PEFT LoRA adapter (adapter_config.json, peft::read_peft_lora_config) refuses what
// Tailor does not compute, each with one line naming the file and the key: per-module rank
// or alpha patterns, fan_in_fan_out (Conv1D-style transposed weights), bias training, and target
// modules that are not one of the linears Tailor can adapt. The starting point is peft's own
// adapter config (tests/golden/peft/lora_hub), which is accepted; with use_dora it reads as DoRA
// (and a DoRA adapter's lora_dropout, which Tailor's DoRA does not compute, as none).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "peft/lora.h"

namespace tailor::peft {
namespace {

namespace fs = std::filesystem;

nlohmann::json hub_config() {
  std::ifstream f(TAILOR_SOURCE_DIR "/tests/golden/peft/lora_hub/adapter_config.json");
  return nlohmann::json::parse(f);
}

// The message read_peft_lora_config gives for `config` ("" when it is accepted).
std::string refusal(const nlohmann::json& config, std::string* path = nullptr) {
  const fs::path dir = fs::temp_directory_path() /
                       ("tailor-lora-refusal-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "adapter_config.json") << config.dump(2);
  if (path != nullptr) *path = (dir / "adapter_config.json").string();
  std::string message;
  try {
    (void)read_peft_lora_config(dir.string());
  } catch (const UserError& e) {
    message = e.what();
  }
  fs::remove_all(dir);
  return message;
}

TEST(LoraImport, PeftsOwnConfigIsAccepted) {
  EXPECT_EQ(refusal(hub_config()), "");
}

TEST(LoraImport, UnsupportedSettingsAreRefusedNamingFileAndKey) {
  struct Case {
    const char* key;
    nlohmann::json value;
    const char* reason;
  };
  const Case cases[] = {
      {"rank_pattern", {{"q_proj", 8}}, "rank_pattern: per-module ranks are not supported"},
      {"alpha_pattern", {{"v_proj", 16}}, "alpha_pattern: per-module ranks are not supported"},
      {"fan_in_fan_out", true, "fan_in_fan_out: not supported"},
      {"bias", "lora_only", "bias: only \"none\" is supported"},
      {"target_modules", {"q_proj", "c_attn"}, "target_modules: c_attn is not a linear Tailor can adapt"},
      {"target_modules", nlohmann::json::array(), "target_modules: missing or empty"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    nlohmann::json config = hub_config();
    config[c.key] = c.value;
    std::string path;
    const std::string message = refusal(config, &path);
    EXPECT_EQ(message, path + ": " + c.reason);
  }
  // The settings that mean "nothing special" are accepted as written by peft.
  nlohmann::json plain = hub_config();
  plain["use_dora"] = false;
  plain["rank_pattern"] = nlohmann::json::object();
  plain["fan_in_fan_out"] = false;
  EXPECT_EQ(refusal(plain), "");
}

TEST(LoraImport, UseDoraReadsAsDoraWithoutDropout) {
  const fs::path dir = fs::temp_directory_path() /
                       ("tailor-lora-dora-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  nlohmann::json config = hub_config();
  config["lora_dropout"] = 0.05;
  std::ofstream(dir / "adapter_config.json") << config.dump(2);
  const LoraSpec plain = read_peft_lora_config(dir.string());
  EXPECT_FALSE(plain.use_dora);
  EXPECT_EQ(plain.dropout, 0.05);
  config["use_dora"] = true;
  std::ofstream(dir / "adapter_config.json") << config.dump(2);
  const LoraSpec dora = read_peft_lora_config(dir.string());
  fs::remove_all(dir);
  EXPECT_TRUE(dora.use_dora);
  EXPECT_EQ(dora.dropout, 0.0);
  EXPECT_EQ(dora.rank, plain.rank);
}

}  // namespace
}  // namespace tailor::peft
