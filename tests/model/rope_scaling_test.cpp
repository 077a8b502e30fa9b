// RoPE scaling yarn and longrope against transformers' own rope init functions
// (tests/golden/make_rope_fixtures.py -> tests/golden/rope/rope_cases.json): each case's config.json
// keys read by read_rope must give the inverse frequencies transformers computes (f32, relative
// 1e-6 per frequency) and its attention scaling (the factor on cos and sin, 1e-12), and longrope
// its long set past original_max_position_embeddings. The whole-model effect (the attention scale
// in forward and backward) is checked by the qwen3_yarn golden model (model_golden_test).
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/families/hf_config_reader.h"

namespace tailor::model {
namespace {

const char* kCases = TAILOR_SOURCE_DIR "/tests/golden/rope/rope_cases.json";

nlohmann::json cases() {
  std::ifstream f(kCases);
  return nlohmann::json::parse(f);
}

ModelSpec read(const nlohmann::json& config) {
  ModelSpec s;
  s.num_heads = config.at("num_attention_heads").get<std::int64_t>();
  s.hidden_size = config.at("hidden_size").get<std::int64_t>();
  s.head_dim = config.contains("head_dim") ? config.at("head_dim").get<std::int64_t>()
                                           : s.hidden_size / s.num_heads;
  s.max_position_embeddings = config.at("max_position_embeddings").get<std::int64_t>();
  const HfConfigReader c(config, "config.json");
  // Phi-3's config class defaults original_max_position_embeddings to 4096.
  read_rope(c, s, config.at("model_type") == "phi3" ? std::optional<std::int64_t>(4096)
                                                     : std::nullopt);
  return s;
}

double max_rel(const std::vector<float>& got, const nlohmann::json& want) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const double w = want[i].get<double>();
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - w) / std::abs(w));
  }
  return worst;
}

TEST(RopeScaling, MatchesTransformersRopeInitFunctions) {
  int yarn = 0, longrope = 0;
  const nlohmann::json all = cases();
  for (const nlohmann::json& c : all.at("cases")) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const ModelSpec s = read(c.at("config"));
    EXPECT_LT(max_rel(s.rope_inv_freq(), c.at("inv_freq")), 1e-6);
    EXPECT_NEAR(s.rope_attention_factor, c.at("attention_scaling").get<double>(), 1e-12);
    EXPECT_NEAR(s.attention_scale(),
                s.rope_attention_factor * s.rope_attention_factor / std::sqrt(double(s.head_dim)),
                1e-15);
    if (s.rope_type == "longrope") {
      ++longrope;
      EXPECT_LT(max_rel(s.rope_inv_freq(true), c.at("inv_freq_long")), 1e-6);
      // transformers switches on max(position_ids) + 1 > original_max_position_embeddings.
      EXPECT_FALSE(s.rope_long_context(s.rope_original_max_positions - 1));
      EXPECT_TRUE(s.rope_long_context(s.rope_original_max_positions));
    } else {
      ASSERT_EQ(s.rope_type, "yarn");
      ++yarn;
      EXPECT_FALSE(s.rope_long_context(1 << 30));
    }
  }
  EXPECT_EQ(yarn, 3);
  EXPECT_EQ(longrope, 2);
}

// A scaling the frequencies differ from: not vacuous (each case changes the default frequencies).
TEST(RopeScaling, EveryCaseChangesTheFrequencies) {
  const nlohmann::json all = cases();
  ASSERT_EQ(all.at("cases").size(), 5u);
  for (const nlohmann::json& c : all.at("cases")) {
    nlohmann::json plain = c.at("config");
    plain.erase("rope_scaling");
    EXPECT_GT(max_rel(read(plain).rope_inv_freq(), c.at("inv_freq")), 1e-3) << c.at("name");
  }
}

std::string error_of(const nlohmann::json& config) {
  try {
    (void)read(config);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(RopeScaling, BadSettingsNameTheKey) {
  const nlohmann::json base = {{"model_type", "qwen3"}, {"hidden_size", 64},
                               {"num_attention_heads", 4}, {"head_dim", 16},
                               {"max_position_embeddings", 1024}};
  nlohmann::json j = base;
  j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  EXPECT_EQ(error_of(j), "config.json: rope_scaling.rope_type: dynamic is not supported (default, "
                         "linear, llama3, yarn, longrope)");
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"original_max_position_embeddings", 64}};
  EXPECT_EQ(error_of(j), "config.json: rope_scaling.factor: required for yarn");
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", -4.0}};
  EXPECT_EQ(error_of(j), "config.json: rope_scaling.factor: must be positive, got -4");
  j["rope_scaling"] = {{"rope_type", "longrope"}, {"short_factor", {1.0, 1.0}},
                       {"long_factor", std::vector<double>(8, 2.0)}};
  EXPECT_EQ(error_of(j), "config.json: rope_scaling.short_factor: expected a list of 8 numbers "
                         "(head_dim / 2), got [1.0,1.0]");
  j["rope_scaling"] = {{"rope_type", "longrope"}, {"short_factor", std::vector<double>(8, 1.0)}};
  EXPECT_EQ(error_of(j), "config.json: rope_scaling.long_factor: required for longrope");
}

}  // namespace
}  // namespace tailor::model
