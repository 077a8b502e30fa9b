// Golden numerics against Hugging Face transformers: tiny random models of each family saved with
// save_pretrained, with the logits, loss and gradient of every parameter that transformers computed
// on a fixed batch (tests/golden/make_model_fixtures.py; fixtures in tests/golden/models/<case>/).
// Tailor loads each directory, runs the same batch on the CPU in f32 and must agree: normwise
// relative error < 1e-5 on logits and loss, < 1e-4 on every gradient, bitwise on the weights it
// hands back in HF layout.
//
// With TAILOR_HF_DIR set, every directory under it holding a config.json (real downloaded models)
// is loaded and run on a few tokens; when make_model_fixtures.py --real wrote
// tailor_expected_logits.safetensors there, the logits are compared with transformers' too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "checkpoint/safetensors.h"
#include "golden_util.h"
#include "model/model_test_util.h"

namespace tailor::checkpoint {
namespace {

namespace fs = std::filesystem;
using model::testing::HostBatch;
using golden::dims;
using golden::GoldenBatch;
using golden::make_batch;
using golden::read_f32;
using golden::read_i32;
using golden::rel_error;

constexpr double kLogitsTol = 1e-5;
constexpr double kLossTol = 1e-5;
constexpr double kGradTol = 1e-4;
constexpr int kThreads = 2;

std::string fixture_dir(const std::string& name) {
  return std::string(TAILOR_SOURCE_DIR) + "/tests/golden/models/" + name;
}

// The fixture's batch in Tailor's form: HF shifts labels inside the model (logits[:, t] predict
// labels[:, t + 1]); Tailor's targets are already shifted, the last position carries no loss.
// One fixture directory, loaded into a Tailor model.
struct Loaded {
  HfModelConfig cfg;
  backend::CpuOps ops{kThreads};
  std::unique_ptr<model::Transformer> model;

  explicit Loaded(const std::string& dir) : cfg(read_hf_config(dir)) {
    model = std::make_unique<model::Transformer>(cfg.spec, ops, DType::kF32);
    load_hf_weights(dir, cfg, *model, ops);
  }
};

// Every fixture directory (a config.json and transformers' expected.safetensors): a new family's
// fixture is picked up without touching this file.
std::vector<std::string> fixture_cases() {
  std::vector<std::string> cases;
  for (const auto& e : fs::directory_iterator(fixture_dir("")))
    if (fs::exists(e.path() / "config.json") && fs::exists(e.path() / "expected.safetensors"))
      cases.push_back(e.path().filename().string());
  std::sort(cases.begin(), cases.end());
  return cases;
}

class ModelGolden : public ::testing::TestWithParam<std::string> {
 protected:
  std::string dir() const { return fixture_dir(GetParam()); }
};

TEST_P(ModelGolden, LogitsAndLossMatchTransformers) {
  Loaded m(dir());
  const SafetensorsFile expected(dir() + "/expected.safetensors");
  GoldenBatch g = make_batch(expected);
  ASSERT_GT(g.count, 0);

  const std::int64_t v = m.cfg.spec.vocab_size;
  const std::int64_t pv = m.cfg.spec.padded_vocab();
  ASSERT_EQ(expected.info("logits").shape, (std::vector<std::int64_t>{g.b, g.t, v}));
  backend::Buffer logits(DType::kF32, Shape{g.b * g.t, pv});
  const backend::Tensor logits_out = logits.tensor();
  const double sum = m.model->forward(g.host->batch, &logits_out);
  const double loss = sum / static_cast<double>(g.count);

  std::vector<float> got(static_cast<std::size_t>(g.b * g.t * v));
  for (std::int64_t r = 0; r < g.b * g.t; ++r)
    std::copy_n(logits.ptr<float>() + r * pv, v, got.begin() + r * v);
  const std::vector<float> want = read_f32(expected, "logits");
  const double logits_err = rel_error(got, want);
  // Per position too, so a failure shows where (e.g. only positions > 0: RoPE).
  double worst_pos_err = 0.0;
  std::int64_t worst_pos = 0;
  for (std::int64_t r = 0; r < g.b * g.t; ++r) {
    const auto off = static_cast<std::size_t>(r * v);
    const auto n = static_cast<std::size_t>(v);
    const double e = rel_error(std::span<const float>(got).subspan(off, n),
                               std::span<const float>(want).subspan(off, n));
    if (e > worst_pos_err) {
      worst_pos_err = e;
      worst_pos = r;
    }
  }
  const double want_loss = static_cast<double>(read_f32(expected, "loss").at(0));
  const double loss_err = std::abs(loss - want_loss) / std::abs(want_loss);
  std::printf("[golden] %-16s logits rel %.3e (worst row b=%lld t=%lld: %.3e)  loss %.7f vs %.7f rel %.3e\n",
              GetParam().c_str(), logits_err, static_cast<long long>(worst_pos / g.t),
              static_cast<long long>(worst_pos % g.t), worst_pos_err, loss, want_loss, loss_err);
  EXPECT_LT(logits_err, kLogitsTol);
  EXPECT_LT(loss_err, kLossTol);
}

TEST_P(ModelGolden, GradientsMatchTransformers) {
  Loaded m(dir());
  const SafetensorsFile expected(dir() + "/expected.safetensors");
  GoldenBatch g = make_batch(expected);
  ASSERT_GT(g.count, 0);

  m.model->params().zero_grad(m.ops);
  const double sum = m.model->forward_backward(g.host->batch, 1.0 / static_cast<double>(g.count));
  m.model->finish_gradients();
  const double want_loss = static_cast<double>(read_f32(expected, "loss").at(0));
  EXPECT_LT(std::abs(sum / static_cast<double>(g.count) - want_loss) / std::abs(want_loss), kLossTol);

  const std::vector<HfTensor> grads = to_hf_tensors(m.cfg, *m.model, m.ops, /*gradients=*/true);
  std::set<std::string> got_names, want_names;
  for (const std::string& n : expected.names())
    if (n.starts_with("grad.")) want_names.insert(n.substr(5));
  double worst = 0.0;
  std::string worst_name;
  for (const HfTensor& t : grads) {
    EXPECT_TRUE(got_names.insert(t.name).second) << "duplicate " << t.name;
    const std::string key = "grad." + t.name;
    if (!expected.has(key)) {
      ADD_FAILURE() << t.name << ": Tailor has a gradient transformers does not";
      continue;
    }
    EXPECT_EQ(dims(t.shape), expected.info(key).shape) << t.name;
    if (dims(t.shape) != expected.info(key).shape) continue;
    const double e = rel_error(t.data, read_f32(expected, key));
    EXPECT_LT(e, kGradTol) << t.name;
    if (e > worst || worst_name.empty()) {
      worst = e;
      worst_name = t.name;
    }
  }
  EXPECT_EQ(got_names, want_names);
  std::printf("[golden] %-16s %zu gradients, worst rel %.3e (%s)\n", GetParam().c_str(), grads.size(), worst,
              worst_name.c_str());
}

TEST_P(ModelGolden, WeightsRoundTripBitwise) {
  Loaded m(dir());
  const SafetensorsFile weights(dir() + "/model.safetensors");
  const std::vector<HfTensor> back = to_hf_tensors(m.cfg, *m.model, m.ops, /*gradients=*/false);
  std::set<std::string> got_names;
  for (const HfTensor& t : back) {
    got_names.insert(t.name);
    if (!weights.has(t.name)) {
      ADD_FAILURE() << t.name << ": not in model.safetensors";
      continue;
    }
    const SafetensorsTensorInfo& info = weights.info(t.name);
    ASSERT_EQ(info.dtype, "F32") << t.name;
    ASSERT_EQ(dims(t.shape), info.shape) << t.name;
    const std::span<const std::byte> raw = weights.raw(t.name);
    ASSERT_EQ(raw.size(), t.data.size() * sizeof(float)) << t.name;
    if (m.cfg.spec.norm_unit_offset && t.name.ends_with("norm.weight")) {
      // Gemma's norms: Tailor holds 1 + w in f32, so w comes back within half an ulp of 1 + w.
      const std::vector<float> want = read_f32(weights, t.name);
      for (std::size_t i = 0; i < want.size(); ++i)
        EXPECT_LE(std::abs(static_cast<double>(t.data[i]) - want[i]),
                  0.5 * std::ldexp(1.0, std::ilogb(1.0 + std::abs(want[i])) - 23))
            << t.name << "[" << i << "]";
      continue;
    }
    EXPECT_EQ(std::memcmp(raw.data(), t.data.data(), raw.size()), 0) << t.name << " differs";
  }
  const std::vector<std::string> names = weights.names();
  EXPECT_EQ(got_names, std::set<std::string>(names.begin(), names.end()));
}

std::string case_name(const ::testing::TestParamInfo<std::string>& p) { return p.param; }

INSTANTIATE_TEST_SUITE_P(Families, ModelGolden, ::testing::ValuesIn(fixture_cases()), case_name);

// A registered family without a transformers fixture would go unchecked.
TEST(ModelGoldenFixtures, EveryRegisteredFamilyHasOne) {
  std::set<std::string> covered;
  for (const std::string& c : fixture_cases()) covered.insert(read_hf_config(fixture_dir(c)).model_type);
  for (const model::Family* f : model::families())
    EXPECT_TRUE(covered.contains(std::string(f->model_type())))
        << "no fixture under tests/golden/models/ for family " << f->model_type();
  EXPECT_GE(fixture_cases().size(), 8U);  // the fixtures committed today
}

// What config.json says reaches the spec (the numerics tests would also catch most of these, but
// this names the key).
TEST(ModelGoldenConfig, FamiliesReadAsTheirConfigsSay) {
  const HfModelConfig llama = read_hf_config(fixture_dir("llama"));
  EXPECT_EQ(llama.model_type, "llama");
  EXPECT_EQ(llama.spec.num_heads, 4);
  EXPECT_EQ(llama.spec.num_kv_heads, 2);
  EXPECT_EQ(llama.spec.head_dim, 16);
  EXPECT_EQ(llama.spec.rope_type, "default");
  EXPECT_FALSE(llama.spec.tie_embeddings);
  EXPECT_EQ(llama.bos_token_id, 1);
  EXPECT_EQ(llama.eos_token_id, 2);

  const HfModelConfig tied = read_hf_config(fixture_dir("llama_tied"));
  EXPECT_TRUE(tied.spec.tie_embeddings);
  EXPECT_TRUE(tied.spec.attention_bias);
  EXPECT_TRUE(tied.spec.o_bias);
  EXPECT_TRUE(tied.spec.mlp_bias);
  EXPECT_EQ(tied.spec.rope_theta, 500000.0);
  EXPECT_EQ(tied.spec.norm_eps, 1e-6);

  const HfModelConfig qwen = read_hf_config(fixture_dir("qwen2"));
  EXPECT_EQ(qwen.model_type, "qwen2");
  EXPECT_TRUE(qwen.spec.attention_bias);
  EXPECT_FALSE(qwen.spec.o_bias);
  EXPECT_FALSE(qwen.spec.mlp_bias);
  EXPECT_EQ(qwen.spec.sliding_window, 0);

  const HfModelConfig qwen3 = read_hf_config(fixture_dir("qwen3"));
  EXPECT_EQ(qwen3.model_type, "qwen3");
  EXPECT_TRUE(qwen3.spec.qk_norm);
  EXPECT_EQ(qwen3.spec.head_dim, 16);  // explicit: 4 heads x 16 != hidden 32
  EXPECT_FALSE(qwen3.spec.attention_bias);
  EXPECT_FALSE(qwen3.spec.o_bias);
  EXPECT_TRUE(qwen3.spec.tie_embeddings);
  EXPECT_EQ(qwen3.spec.rope_theta, 1000000.0);
  EXPECT_EQ(qwen3.spec.norm_eps, 1e-6);
  // A Tailor-defined model with q/k norm exports as qwen3, never as llama (which has none).
  EXPECT_EQ(model::family_for_spec(qwen3.spec)->model_type(), "qwen3");

  const HfModelConfig phi3 = read_hf_config(fixture_dir("phi3"));
  EXPECT_EQ(phi3.model_type, "phi3");
  EXPECT_EQ(phi3.spec.head_dim, 8);
  EXPECT_EQ(phi3.spec.sliding_window, 24);
  EXPECT_FALSE(phi3.spec.attention_bias);
  EXPECT_FALSE(phi3.spec.tie_embeddings);
  const HfModelConfig longrope = read_hf_config(fixture_dir("phi3_longrope"));
  EXPECT_EQ(longrope.spec.rope_type, "longrope");
  EXPECT_EQ(longrope.spec.rope_original_max_positions, 8);
  EXPECT_DOUBLE_EQ(longrope.spec.rope_attention_factor, std::sqrt(2.0));  // factor 64 / 8
  EXPECT_EQ(longrope.spec.sliding_window, 0);
  const HfModelConfig yarn = read_hf_config(fixture_dir("qwen3_yarn"));
  EXPECT_EQ(yarn.spec.rope_type, "yarn");
  EXPECT_DOUBLE_EQ(yarn.spec.rope_attention_factor, 0.1 * std::log(4.0) + 1.0);

  const HfModelConfig mistral = read_hf_config(fixture_dir("mistral"));
  EXPECT_EQ(mistral.model_type, "mistral");
  EXPECT_EQ(mistral.spec.head_dim, 12);
  EXPECT_EQ(mistral.spec.sliding_window, 16);
  EXPECT_EQ(mistral.spec.attention_window(1), 16);

  // transformers' layer_types: layer 0 global, layers 1 and 2 with a window of 4.
  const HfModelConfig qwen_window = read_hf_config(fixture_dir("qwen2_window"));
  EXPECT_EQ(qwen_window.spec.attention_window(0), 0);
  EXPECT_EQ(qwen_window.spec.attention_window(1), 4);
  EXPECT_EQ(qwen_window.spec.attention_window(2), 4);
  EXPECT_EQ(read_hf_config(fixture_dir("mistral_window")).spec.attention_window(0), 5);
  // Qwen3 as Qwen2: layer_types (layers 0 and 2) over max_window_layers 28 (which says none).
  const HfModelConfig qwen3_window = read_hf_config(fixture_dir("qwen3_window"));
  EXPECT_TRUE(qwen3_window.spec.qk_norm);
  EXPECT_EQ(qwen3_window.spec.attention_window(0), 4);
  EXPECT_EQ(qwen3_window.spec.attention_window(1), 0);
  EXPECT_EQ(qwen3_window.spec.attention_window(2), 4);

  // Gemma 3: three sliding layers (window 4) then a global one, a RoPE base per kind of layer
  // (the global one linear-scaled), the softmax scale 24^-1/2 (not head_dim's 16^-1/2).
  const HfModelConfig gemma3 = read_hf_config(fixture_dir("gemma3"));
  EXPECT_EQ(gemma3.model_type, "gemma3_text");
  EXPECT_EQ(gemma3.spec.mlp, model::MlpType::kGeGLU);
  EXPECT_TRUE(gemma3.spec.norm_unit_offset);
  EXPECT_TRUE(gemma3.spec.sandwich_norms);
  EXPECT_TRUE(gemma3.spec.qk_norm);
  EXPECT_TRUE(gemma3.spec.tie_embeddings);
  EXPECT_EQ(gemma3.spec.embedding_multiplier, static_cast<double>(std::sqrt(32.0f)));
  EXPECT_DOUBLE_EQ(gemma3.spec.attention_scale(), 1.0 / std::sqrt(24.0));
  for (int l = 0; l < 3; ++l) EXPECT_EQ(gemma3.spec.attention_window(l), 4) << l;
  EXPECT_EQ(gemma3.spec.attention_window(3), 0);
  EXPECT_EQ(gemma3.spec.rope_type, "linear");
  EXPECT_EQ(gemma3.spec.rope_factor, 2.0);
  EXPECT_EQ(gemma3.spec.rope_theta, 1000000.0);
  EXPECT_EQ(gemma3.spec.rope_local_theta, 10000.0);
  EXPECT_EQ(model::family_for_spec(gemma3.spec)->model_type(), "gemma3_text");

  const HfModelConfig gpt2 = read_hf_config(fixture_dir("gpt2"));
  EXPECT_EQ(gpt2.model_type, "gpt2");
  EXPECT_EQ(gpt2.spec.norm, model::NormType::kLayerNorm);
  EXPECT_EQ(gpt2.spec.position, model::PositionType::kLearned);
  EXPECT_EQ(gpt2.spec.mlp, model::MlpType::kGelu);
  EXPECT_TRUE(gpt2.spec.tie_embeddings);
  EXPECT_EQ(gpt2.spec.max_position_embeddings, 64);
}

// Gemma 3 in transformers 4's spelling (the Hub's configs): rope_theta + rope_scaling for the
// global layers, rope_local_base_freq for the sliding ones, and no layer_types but
// sliding_window_pattern (every pattern-th layer global), read as the fixture's transformers 5
// spelling says.
TEST(ModelGoldenConfig, Gemma3TransformersFourSpellingGivesTheSameSpec) {
  nlohmann::json j;
  {
    std::ifstream in(fixture_dir("gemma3") + "/config.json");
    j = nlohmann::json::parse(in);
  }
  j.erase("rope_parameters");
  j.erase("layer_types");
  j.erase("_sliding_window_pattern");
  j["rope_theta"] = 1000000.0;
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  j["rope_local_base_freq"] = 10000.0;
  j["sliding_window_pattern"] = 4;
  const fs::path dir = fs::temp_directory_path() /
                       ("tailor-gemma3-hub-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << j.dump(2);
  const HfModelConfig hub = read_hf_config(dir.string());
  fs::remove_all(dir);
  const HfModelConfig v5 = read_hf_config(fixture_dir("gemma3"));
  EXPECT_EQ(hub.spec.sliding_layers, v5.spec.sliding_layers);
  EXPECT_EQ(hub.spec.sliding_window, v5.spec.sliding_window);
  EXPECT_EQ(hub.spec.rope_type, v5.spec.rope_type);
  EXPECT_EQ(hub.spec.rope_factor, v5.spec.rope_factor);
  EXPECT_EQ(hub.spec.rope_theta, v5.spec.rope_theta);
  EXPECT_EQ(hub.spec.rope_local_theta, v5.spec.rope_local_theta);
  EXPECT_EQ(hub.spec.rope_inv_freq(), v5.spec.rope_inv_freq());
  EXPECT_EQ(hub.spec.rope_local_inv_freq(), v5.spec.rope_local_inv_freq());
}

TEST(ModelGoldenConfig, BothRopeSpellingsGiveTheSameSpec) {
  const HfModelConfig a = read_hf_config(fixture_dir("llama3_rope"));      // rope_parameters
  const HfModelConfig b = read_hf_config(fixture_dir("llama3_rope_hub"));  // rope_theta + rope_scaling
  for (const HfModelConfig* c : {&a, &b}) {
    EXPECT_EQ(c->spec.rope_type, "llama3");
    EXPECT_EQ(c->spec.rope_theta, 10000.0);
    EXPECT_EQ(c->spec.rope_factor, 8.0);
    EXPECT_EQ(c->spec.rope_low_freq_factor, 1.0);
    EXPECT_EQ(c->spec.rope_high_freq_factor, 4.0);
    EXPECT_EQ(c->spec.rope_original_max_positions, 8);
  }
  EXPECT_EQ(a.spec.summary(), b.spec.summary());
  EXPECT_EQ(a.spec.rope_inv_freq(), b.spec.rope_inv_freq());
}

// Real downloaded models (TAILOR_HF_DIR): every directory below it with a config.json.
TEST(ModelGoldenReal, DownloadedModelsLoadAndRun) {
  const char* root = std::getenv("TAILOR_HF_DIR");
  if (root == nullptr || *root == '\0') GTEST_SKIP() << "TAILOR_HF_DIR is not set";
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::recursive_directory_iterator(
           root, fs::directory_options::follow_directory_symlink))
    if (entry.is_regular_file() && entry.path().filename() == "config.json")
      dirs.push_back(entry.path().parent_path());
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) GTEST_SKIP() << "no directory with a config.json under " << root;
  for (const fs::path& d : dirs) {
    SCOPED_TRACE(d.string());
    // Directories with a config.json but no weights (e.g. a tokenizer-only folder) are not models.
    bool has_weights = false;
    for (const auto& f : fs::directory_iterator(d))
      has_weights = has_weights || f.path().extension() == ".safetensors";
    if (!has_weights) continue;
    // Only the supported families: other models may share the directory.
    std::ifstream config_file(d / "config.json");
    const nlohmann::json config = nlohmann::json::parse(config_file, nullptr, /*allow_exceptions=*/false);
    const std::string type = config.is_object() && config.contains("model_type") &&
                                     config["model_type"].is_string()
                                 ? config["model_type"].get<std::string>()
                                 : "";
    if (model::find_family(type) == nullptr) {
      std::printf("[golden] %s: model_type '%s' is not a supported family, skipped\n",
                  d.string().c_str(), type.c_str());
      continue;
    }
    Loaded m(d.string());
    const std::string expected_path = (d / "tailor_expected_logits.safetensors").string();
    std::vector<std::int32_t> ids;
    std::unique_ptr<SafetensorsFile> expected;
    if (fs::exists(expected_path)) {
      expected = std::make_unique<SafetensorsFile>(expected_path);
      ids = read_i32(*expected, "input_ids");
    } else {
      const std::int64_t v = m.cfg.spec.vocab_size;
      if (m.cfg.bos_token_id >= 0) ids.push_back(m.cfg.bos_token_id);
      for (std::int64_t i = 1; ids.size() < 8; ++i)
        ids.push_back(static_cast<std::int32_t>((i * 7919) % v));
    }
    ASSERT_GE(ids.size(), 2u);
    const auto t = static_cast<std::int64_t>(ids.size());
    std::vector<std::int32_t> targets, positions;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      positions.push_back(static_cast<std::int32_t>(i));
      targets.push_back(i + 1 < ids.size() ? ids[i + 1] : -100);
    }
    HostBatch batch(1, t, ids, targets, positions, std::vector<std::int32_t>(ids.size(), 0));
    batch.batch.doc_ids = backend::Tensor{};
    const std::int64_t v = m.cfg.spec.vocab_size, pv = m.cfg.spec.padded_vocab();
    backend::Buffer logits(DType::kF32, Shape{t, pv});
    const backend::Tensor logits_out = logits.tensor();
    const double sum = m.model->forward(batch.batch, &logits_out);
    EXPECT_TRUE(std::isfinite(sum));
    std::vector<float> got(static_cast<std::size_t>(t * v));
    for (std::int64_t r = 0; r < t; ++r)
      std::copy_n(logits.ptr<float>() + r * pv, v, got.begin() + r * v);
    EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](float x) { return std::isfinite(x); }));
    std::printf("[golden] %s: %s, %lld tokens, mean loss %.5f", d.string().c_str(),
                m.cfg.model_type.c_str(), static_cast<long long>(t),
                sum / static_cast<double>(t - 1));
    if (expected) {
      // Real models are deep and often stored in bf16: a looser bound than the tiny fixtures.
      const double e = rel_error(got, read_f32(*expected, "logits"));
      std::printf(", logits rel %.3e vs transformers", e);
      EXPECT_LT(e, 1e-4);
    }
    std::printf("\n");
  }
}

}  // namespace
}  // namespace tailor::checkpoint
