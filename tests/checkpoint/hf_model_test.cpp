// HF model directories written by Tailor load back exactly (every layout: llama, qwen2-style
// biases, gpt2's fused/transposed tensors, tied heads, TP shards), and malformed directories give
// one line naming the file and tensor.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "checkpoint/safetensors.h"
#include "comm/communicator.h"

namespace tailor::checkpoint {
namespace {

namespace fs = std::filesystem;

struct TmpDir {
  fs::path path = fs::temp_directory_path() / ("tailor-hf-" + std::to_string(::getpid()) + "-" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TmpDir() { fs::remove_all(path); fs::create_directories(path); }
  ~TmpDir() { fs::remove_all(path); }
  [[nodiscard]] std::string str(const std::string& sub = "") const { return (path / sub).string(); }
};

HfModelConfig tiny(const std::string& type) {
  HfModelConfig c;
  c.model_type = type;
  model::ModelSpec& s = c.spec;
  s.vocab_size = 37;
  s.hidden_size = 16;
  s.num_layers = 2;
  s.num_heads = 4;
  s.num_kv_heads = type == "gpt2" ? 4 : 2;
  s.head_dim = 4;
  s.intermediate_size = 24;
  s.max_position_embeddings = 32;
  s.init_std = 0.5;
  if (type == "gpt2") {
    s.norm = model::NormType::kLayerNorm;
    s.position = model::PositionType::kLearned;
    s.mlp = model::MlpType::kGelu;
    s.attention_bias = s.o_bias = s.mlp_bias = s.tie_embeddings = true;
  } else if (type == "qwen2") {
    s.attention_bias = true;
  } else {
    s.rope_type = "llama3";
    s.rope_factor = 8.0;
    s.rope_original_max_positions = 16;
  }
  return c;
}

void randomize(model::Transformer& m, backend::Ops& ops) {
  m.init_parameters(7);
  (void)ops;
  // Norms and biases away from their 1 / 0 initial values, so a mix-up shows.
  for (auto& p : m.params().all()) {
    if (p.shape.rank() != 1) continue;
    float* v = p.value.ptr<float>();
    for (std::int64_t i = 0; i < p.shape.numel(); ++i) v[i] += 0.01f * static_cast<float>(i % 7) + 0.003f;
  }
}

class HfRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(HfRoundTrip, SaveThenLoadGivesTheSameParameters) {
  TmpDir tmp;
  backend::CpuOps ops(2);
  const HfModelConfig cfg = tiny(GetParam());
  model::Transformer a(cfg.spec, ops, DType::kF32);
  randomize(a, ops);
  save_hf_model(tmp.str("m"), cfg, a, ops, "");
  const HfModelConfig back = read_hf_config(tmp.str("m"));
  EXPECT_EQ(back.model_type, cfg.model_type);
  EXPECT_EQ(back.spec.num_parameters(), cfg.spec.num_parameters());
  EXPECT_EQ(back.spec.rope_type, cfg.spec.rope_type);
  EXPECT_EQ(back.spec.o_bias, cfg.spec.o_bias);
  model::Transformer b(back.spec, ops, DType::kF32);
  load_hf_weights(tmp.str("m"), back, b, ops);
  for (const auto& p : a.params().all()) {
    const auto* q = b.params().find(p.name);
    ASSERT_NE(q, nullptr) << p.name;
    ASSERT_EQ(std::memcmp(p.value.data, q->value.data, p.value.bytes()), 0) << p.name;
  }
  // HF layout: no lm_head when tied, vocabulary padding stripped, GPT-2 Conv1D transposed.
  const SafetensorsFile f(tmp.str("m/model.safetensors"));
  if (cfg.model_type == "gpt2") {
    EXPECT_TRUE(f.has("transformer.h.1.attn.c_attn.weight"));
    EXPECT_EQ(f.info("transformer.h.1.attn.c_attn.weight").shape, (std::vector<std::int64_t>{16, 48}));
    EXPECT_EQ(f.info("transformer.wte.weight").shape, (std::vector<std::int64_t>{37, 16}));
    EXPECT_FALSE(f.has("lm_head.weight"));
  } else {
    EXPECT_EQ(f.info("lm_head.weight").shape, (std::vector<std::int64_t>{37, 16}));
    EXPECT_EQ(f.has("model.layers.0.self_attn.o_proj.bias"), cfg.spec.o_bias);
    EXPECT_EQ(f.has("model.layers.0.self_attn.q_proj.bias"), cfg.spec.attention_bias);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, HfRoundTrip, ::testing::Values("llama", "qwen2", "gpt2"));

// A tensor-parallel rank loads exactly its slice of each tensor.
TEST(HfLoad, TensorParallelShardsAreSlices) {
  TmpDir tmp;
  backend::CpuOps ops(1);
  const HfModelConfig cfg = tiny("llama");
  model::Transformer full(cfg.spec, ops, DType::kF32);
  randomize(full, ops);
  save_hf_model(tmp.str("m"), cfg, full, ops, "");

  // A fake TP group of 2 (rank 1): only the layout matters for loading.
  struct FakeTp final : comm::Communicator {
    [[nodiscard]] int rank() const noexcept override { return 1; }
    [[nodiscard]] int size() const noexcept override { return 2; }
    [[nodiscard]] std::string describe() const override { return "fake"; }
    void all_reduce(const backend::Tensor&, comm::ReduceOp) override {}
    void reduce_scatter(const backend::Tensor&, const backend::Tensor&) override {}
    void all_gather(const backend::Tensor&, const backend::Tensor&) override {}
    void broadcast(const backend::Tensor&, int) override {}
    void barrier() override {}
    [[nodiscard]] std::unique_ptr<comm::Communicator> split(int, int) override { return std::make_unique<comm::SelfCommunicator>(); }
  } tp;
  model::Transformer shard(cfg.spec, ops, DType::kF32, &tp);
  load_hf_weights(tmp.str("m"), cfg, shard, ops);
  for (const auto& p : shard.params().all()) {
    const auto& f = full.params().at(p.name);
    const float* fv = f.value.ptr<float>();
    const float* sv = p.value.ptr<float>();
    for (std::int64_t i = 0; i < p.shape.numel(); ++i) {
      const std::int64_t g = p.global_index(i);
      // Padding rows exist only in the TP layout (vocab padded to 128 x 2).
      const float want = g < f.shape.numel() && (p.shard_dim != 0 || g / p.global_shape.cols() < f.shape[0]) ? fv[g] : 0.0f;
      ASSERT_EQ(sv[i], want) << p.name << " element " << i;
    }
  }
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(HfLoad, BadDirectoriesAreOneLineUserErrors) {
  TmpDir tmp;
  backend::CpuOps ops(1);
  const HfModelConfig cfg = tiny("llama");
  model::Transformer m(cfg.spec, ops, DType::kF32);
  randomize(m, ops);
  save_hf_model(tmp.str("m"), cfg, m, ops, "");
  const std::string dir = tmp.str("m");

  EXPECT_EQ(error_of([&] { (void)read_hf_config(tmp.str("none")); }),
            tmp.str("none") + "/config.json: cannot read (a Hugging Face model directory needs config.json)");
  fs::create_directories(tmp.str("bad"));
  write_file(tmp.str("bad/config.json"), R"({"model_type": "bert", "vocab_size": 10})");
  EXPECT_EQ(error_of([&] { (void)read_hf_config(tmp.str("bad")); }),
            tmp.str("bad") + "/config.json: model_type: bert is not supported (llama, mistral, qwen2, qwen3, phi3, gemma3_text, gpt2)");
  write_file(tmp.str("bad/config.json"), R"({"model_type": "llama", "vocab_size": 10})");
  EXPECT_EQ(error_of([&] { (void)read_hf_config(tmp.str("bad")); }),
            tmp.str("bad") + "/config.json: hidden_size: required key is missing");
  write_file(tmp.str("bad/config.json"),
             R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8,
                 "num_hidden_layers": 1, "num_attention_heads": 2, "rope_scaling": {"rope_type": "dynamic", "factor": 4}})");
  EXPECT_EQ(error_of([&] { (void)read_hf_config(tmp.str("bad")); }),
            tmp.str("bad") + "/config.json: rope_scaling.rope_type: dynamic is not supported (default, linear, llama3, yarn, longrope)");
  // Phi-4-mini's partial rotary embedding is refused, in either spelling.
  const std::string phi3 =
      R"({"model_type": "phi3", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8,
          "num_hidden_layers": 1, "num_attention_heads": 2, )";
  write_file(tmp.str("bad/config.json"), phi3 + R"("partial_rotary_factor": 0.75})");
  EXPECT_EQ(error_of([&] { (void)read_hf_config(tmp.str("bad")); }),
            tmp.str("bad") + "/config.json: partial_rotary_factor: 0.75 is not supported (only 1.0: "
                             "RoPE over the whole head)");
  write_file(tmp.str("bad/config.json"),
             phi3 + R"("rope_parameters": {"rope_theta": 10000.0, "partial_rotary_factor": 0.5}})");
  EXPECT_EQ(error_of([&] { (void)read_hf_config(tmp.str("bad")); }),
            tmp.str("bad") + "/config.json: rope_parameters.partial_rotary_factor: 0.5 is not "
                             "supported (only 1.0: RoPE over the whole head)");
  write_file(tmp.str("bad/config.json"), "[1, 2]");
  EXPECT_EQ(error_of([&] { (void)read_hf_config(tmp.str("bad")); }), tmp.str("bad") + "/config.json: not a JSON object");

  // A config that disagrees with the weights: one more layer than the file has.
  HfModelConfig more = cfg;
  more.spec.num_layers = 3;
  model::Transformer m3(more.spec, ops, DType::kF32);
  EXPECT_EQ(error_of([&] { load_hf_weights(dir, more, m3, ops); }),
            dir + ": missing tensor 'model.layers.2.input_layernorm.weight' (expected by config.json for llama)");
  // Wider intermediate size: a shape mismatch names the file and tensor.
  HfModelConfig wide = cfg;
  wide.spec.intermediate_size = 32;
  model::Transformer mw(wide.spec, ops, DType::kF32);
  EXPECT_EQ(error_of([&] { load_hf_weights(dir, wide, mw, ops); }),
            dir + "/model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape [24, 16], config.json implies [32, 16]");
  // Fewer layers than the file: the rest are unexpected tensors.
  HfModelConfig fewer = cfg;
  fewer.spec.num_layers = 1;
  model::Transformer m1(fewer.spec, ops, DType::kF32);
  EXPECT_NE(error_of([&] { load_hf_weights(dir, fewer, m1, ops); }).find("unexpected tensor 'model.layers.1."),
            std::string::npos);
}

// Which layers slide, read as transformers reads config.json (Qwen2Config: the window only with
// use_sliding_window, on the layers layer_types names, or without it on layers >=
// max_window_layers, default 28, and Qwen3Config alike; MistralModel and Phi3Model: every layer),
// written back so that it reads the same.
TEST(HfSlidingWindow, LayersAreTheOnesTransformersSlides) {
  TmpDir tmp;
  fs::create_directories(tmp.str("m"));
  const std::string base =
      R"("vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 3,
         "num_attention_heads": 2)";
  auto spec_of = [&](const std::string& type, const std::string& extra) {
    write_file(tmp.str("m/config.json"),
               "{\"model_type\": \"" + type + "\", " + base + (extra.empty() ? "" : ", " + extra) + "}");
    return read_hf_config(tmp.str("m")).spec;
  };
  auto windows = [](const model::ModelSpec& s) {
    std::vector<std::int64_t> w;
    for (std::int64_t l = 0; l < s.num_layers; ++l) w.push_back(s.attention_window(l));
    return w;
  };
  using W = std::vector<std::int64_t>;
  EXPECT_EQ(windows(spec_of("mistral", R"("sliding_window": 6)")), (W{6, 6, 6}));
  EXPECT_EQ(windows(spec_of("mistral", R"("sliding_window": null)")), (W{0, 0, 0}));
  EXPECT_EQ(windows(spec_of("qwen2", R"("sliding_window": 6)")), (W{0, 0, 0}));
  EXPECT_EQ(windows(spec_of("qwen2", R"("use_sliding_window": true, "sliding_window": 6)")),
            (W{0, 0, 0}));  // max_window_layers 28
  EXPECT_EQ(windows(spec_of("qwen2", R"("use_sliding_window": true, "sliding_window": 6,
                                        "max_window_layers": 1)")),
            (W{0, 6, 6}));
  EXPECT_EQ(windows(spec_of("qwen2", R"("use_sliding_window": true, "max_window_layers": 2)")),
            (W{0, 0, 4096}));  // transformers' default window
  EXPECT_EQ(windows(spec_of("qwen2", R"("use_sliding_window": true, "sliding_window": null,
                                        "max_window_layers": 0)")),
            (W{0, 0, 0}));
  const model::ModelSpec mixed = spec_of(
      "qwen2", R"("use_sliding_window": true, "sliding_window": 5, "max_window_layers": 0,
                  "layer_types": ["sliding_attention", "full_attention", "sliding_attention"])");
  EXPECT_EQ(windows(mixed), (W{5, 0, 5}));  // layer_types wins over max_window_layers
  // Qwen3Config: qwen2's rules.
  EXPECT_EQ(windows(spec_of("qwen3", R"("sliding_window": 6, "max_window_layers": 0)")),
            (W{0, 0, 0}));
  EXPECT_EQ(windows(spec_of("qwen3", R"("use_sliding_window": true, "sliding_window": 6)")),
            (W{0, 0, 0}));  // max_window_layers 28
  EXPECT_EQ(windows(spec_of("qwen3", R"("use_sliding_window": true, "sliding_window": 6,
                                        "max_window_layers": 2)")),
            (W{0, 0, 6}));
  EXPECT_EQ(windows(spec_of("qwen3", R"("use_sliding_window": true, "sliding_window": 4,
                  "layer_types": ["full_attention", "sliding_attention", "full_attention"])")),
            (W{0, 4, 0}));
  // Phi3Model: every layer, as mistral.
  EXPECT_EQ(windows(spec_of("phi3", R"("sliding_window": 7)")), (W{7, 7, 7}));
  EXPECT_EQ(windows(spec_of("phi3", R"("sliding_window": null)")), (W{0, 0, 0}));

  // Written back (export), each reads as it was.
  backend::CpuOps ops(1);
  for (const char* type : {"qwen2", "qwen3", "mistral", "phi3"}) {
    HfModelConfig cfg = tiny(type);
    cfg.spec.num_layers = 3;
    cfg.spec.sliding_window = 3;
    if (std::string(type) == "qwen2") cfg.spec.sliding_layers = {false, true, true};
    if (std::string(type) == "qwen3") {  // not a suffix: only layer_types can say it
      cfg.spec.qk_norm = true;
      cfg.spec.sliding_layers = {true, false, true};
    }
    model::Transformer m(cfg.spec, ops, DType::kF32);
    const std::string dir = tmp.str(std::string("out-") + type);
    save_hf_model(dir, cfg, m, ops, "");
    EXPECT_EQ(windows(read_hf_config(dir).spec), windows(cfg.spec)) << type;
  }
}

TEST(HfSlidingWindow, BadSettingsAreOneLineUserErrors) {
  TmpDir tmp;
  fs::create_directories(tmp.str("m"));
  const std::string dir = tmp.str("m");
  auto error_for = [&](const std::string& type, const std::string& extra) {
    write_file(dir + "/config.json",
               "{\"model_type\": \"" + type + R"(", "vocab_size": 10, "hidden_size": 8,
                 "intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, )" +
                   extra + "}");
    return error_of([&] { (void)read_hf_config(dir); });
  };
  EXPECT_EQ(error_for("mistral", R"("sliding_window": 0)"),
            dir + "/config.json: sliding_window: must be at least 1 (null for no window), got 0");
  EXPECT_EQ(error_for("mistral", R"("sliding_window": -4)"),
            dir + "/config.json: sliding_window: must be >= 0, got -4");
  EXPECT_EQ(error_for("qwen2", R"("use_sliding_window": true, "sliding_window": 0)"),
            dir + "/config.json: sliding_window: must be at least 1 (null for no window), got 0");
  EXPECT_EQ(error_for("qwen2", R"("layer_types": ["full_attention", "chunked_attention"])"),
            dir + "/config.json: layer_types[1]: \"chunked_attention\" is not supported "
                  "(full_attention or sliding_attention)");
  EXPECT_EQ(error_for("qwen3", R"("use_sliding_window": true, "sliding_window": 0)"),
            dir + "/config.json: sliding_window: must be at least 1 (null for no window), got 0");
  EXPECT_EQ(error_for("qwen3", R"("layer_types": ["chunked_attention", "full_attention"])"),
            dir + "/config.json: layer_types[0]: \"chunked_attention\" is not supported "
                  "(full_attention or sliding_attention)");
  EXPECT_EQ(error_for("qwen3", R"("layer_types": ["full_attention"])"),
            dir + "/config.json: layer_types: expected a list of 2 entries (num_hidden_layers), "
                  "got 1 entries");
  EXPECT_EQ(error_for("qwen2", R"("layer_types": ["full_attention"])"),
            dir + "/config.json: layer_types: expected a list of 2 entries (num_hidden_layers), "
                  "got 1 entries");
}

}  // namespace
}  // namespace tailor::checkpoint
