// Golden numerics of DoRA against the `peft` library (tests/golden/make_peft_fixtures.py; fixtures
// in tests/golden/peft/dora_*/): peft's own LoRA adapters with use_dora, the factors re-drawn and
// each lora_magnitude_vector set away from its initial norm, on
//
//   dora_llama  the tiny LLaMA, all seven linears (column- and row-parallel, no biases)
//   dora_qwen2  the tiny Qwen2, q, v (with biases: y = c (z - b) + b), o and down, rsLoRA
//   tailor_dora Tailor's own export (`tailor export --format peft` of the committed checkpoint of
//               `tailor train tests/golden/peft/tailor_dora.yaml`), which peft loaded onto the
//               base with no missing or unexpected key; its logits are peft's on that adapter
//               (export_golden_test.cpp checks that today's exporter writes these bytes)
//
// Tailor builds the model from the base's config.json and the adapter's adapter_config.json,
// loads the base and the adapter and runs peft's batch on the CPU in f32: logits and loss within
// 1e-5 (normwise relative), every gradient (lora_A, lora_B, lora_magnitude_vector; the norm a
// constant as in peft) within 1e-4. The merged Hugging Face export (c (W + s B A)), loaded into a
// plain model, gives the logits of peft's merge_and_unload() within 1e-5; writing the loaded
// adapter back (peft::Lora::save_peft) gives peft's tensors bitwise under peft's names and shapes,
// and an adapter_config.json that reads back as DoRA.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "checkpoint/safetensors.h"
#include "core/error.h"
#include "golden_util.h"
#include "model/model_test_util.h"
#include "peft/lora.h"

namespace tailor::checkpoint {
namespace {

using golden::GoldenBatch;
using golden::make_batch;
using golden::read_f32;
using golden::rel_error;

constexpr double kLogitsTol = 1e-5;
constexpr double kLossTol = 1e-5;
constexpr double kGradTol = 1e-4;
constexpr const char* kPeftPrefix = "base_model.model.";

std::string source_path(const std::string& rel) {
  return std::string(TAILOR_SOURCE_DIR) + "/" + rel;
}

struct Case {
  const char* name;
  const char* base;  // repository-relative
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const Case kCases[] = {{"dora_llama", "tests/golden/models/llama"},
                       {"dora_qwen2", "tests/golden/models/qwen2"},
                       {"tailor_dora", "tests/golden/models/llama"}};

std::vector<float> to_host(backend::Ops& ops, const backend::Tensor& t, const Shape& shape) {
  backend::Buffer host(DType::kF32, shape);
  ops.copy(host.tensor(), t);
  return {host.ptr<float>(), host.ptr<float>() + shape.numel()};
}

struct TempDir {
  std::string path;
  explicit TempDir(const std::string& tag)
      : path((std::filesystem::temp_directory_path() /
              ("tailor-dora-golden-" + tag + "-" + std::to_string(::getpid())))
                 .string()) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// The base with peft's adapter, loaded as `tailor generate --adapter` would.
struct Loaded {
  HfModelConfig cfg;
  std::shared_ptr<const peft::Method> method;
  backend::CpuOps ops{2};
  std::unique_ptr<model::Transformer> model;

  Loaded(const std::string& base, const std::string& adapter)
      : cfg(read_hf_config(base)), method(peft::Lora::from_adapter(adapter, cfg.spec)) {
    model = std::make_unique<model::Transformer>(
        cfg.spec, ops, DType::kF32, nullptr, std::vector<const model::Attachment*>{method.get()});
    load_hf_weights(base, cfg, *model, ops);
    method->load_adapter(adapter, *model, ops);
  }
};

// logits [B*T, V] of `m` on the fixture's batch, the padding columns dropped.
std::vector<float> logits_of(model::Transformer& m, const GoldenBatch& g, std::int64_t v,
                             double* loss) {
  const std::int64_t pv = m.spec().padded_vocab();
  backend::Buffer logits(DType::kF32, Shape{g.b * g.t, pv});
  const backend::Tensor out = logits.tensor();
  const double sum = m.forward(g.host->batch, &out);
  if (loss != nullptr) *loss = sum / static_cast<double>(g.count);
  std::vector<float> got(static_cast<std::size_t>(g.b * g.t * v));
  for (std::int64_t r = 0; r < g.b * g.t; ++r)
    std::copy_n(logits.ptr<float>() + r * pv, v, got.begin() + r * v);
  return got;
}

class DoraGolden : public ::testing::TestWithParam<Case> {
 protected:
  std::string base() const { return source_path(GetParam().base); }
  std::string dir() const { return source_path(std::string("tests/golden/peft/") + GetParam().name); }
};

TEST_P(DoraGolden, LogitsAndLossMatchPeft) {
  Loaded m(base(), dir());
  const SafetensorsFile expected(dir() + "/expected.safetensors");
  const GoldenBatch g = make_batch(expected);
  ASSERT_GT(g.count, 0);
  double loss = 0.0;
  const std::vector<float> got = logits_of(*m.model, g, m.cfg.spec.vocab_size, &loss);
  const double logits_err = rel_error(got, read_f32(expected, "logits"));
  const double want_loss = static_cast<double>(read_f32(expected, "loss").at(0));
  const double loss_err = std::abs(loss - want_loss) / std::abs(want_loss);
  std::printf("[dora golden] %-10s logits rel %.3e  loss %.7f vs %.7f rel %.3e\n", GetParam().name,
              logits_err, loss, want_loss, loss_err);
  EXPECT_LT(logits_err, kLogitsTol);
  EXPECT_LT(loss_err, kLossTol);
}

TEST_P(DoraGolden, GradientsMatchPeft) {
  Loaded m(base(), dir());
  const SafetensorsFile expected(dir() + "/expected.safetensors");
  const GoldenBatch g = make_batch(expected);
  m.model->params().zero_grad(m.ops);
  (void)m.model->forward_backward(g.host->batch, 1.0 / static_cast<double>(g.count));
  m.model->finish_gradients();
  std::set<std::string> got_names, want_names;
  for (const std::string& n : expected.names())
    if (n.starts_with("grad.")) want_names.insert(n.substr(5));
  ASSERT_FALSE(want_names.empty());
  double worst = 0.0;
  for (const model::Parameter& p : m.model->params().all()) {
    if (p.method != peft::Lora::kName) {
      EXPECT_FALSE(p.trainable) << p.name;
      continue;
    }
    const std::string key = "grad." + std::string(kPeftPrefix) + p.name;
    got_names.insert(key.substr(5));
    if (!expected.has(key)) {
      ADD_FAILURE() << p.name << ": Tailor has a DoRA parameter peft does not";
      continue;
    }
    EXPECT_EQ(expected.info(key).numel, p.shape.numel()) << p.name;
    const double e = rel_error(to_host(m.ops, p.grad, p.shape), read_f32(expected, key));
    EXPECT_LT(e, kGradTol) << p.name;
    worst = std::max(worst, e);
  }
  EXPECT_EQ(got_names, want_names);
  std::printf("[dora golden] %-10s %zu DoRA gradients, worst rel %.3e\n", GetParam().name,
              got_names.size(), worst);
}

// The merged export is a plain model of the family whose logits are peft's merged model's.
TEST_P(DoraGolden, MergedExportMatchesPeftMerge) {
  Loaded m(base(), dir());
  const SafetensorsFile expected(dir() + "/expected.safetensors");
  const GoldenBatch g = make_batch(expected);
  const TempDir tmp(GetParam().name);
  std::filesystem::copy_file(base() + "/config.json", tmp.path + "/config.json");
  write_hf_tensors(tmp.path + "/model.safetensors",
                   to_hf_tensors(m.cfg, *m.model, m.ops, /*gradients=*/false), DType::kF32);
  model::Transformer plain(m.cfg.spec, m.ops, DType::kF32);
  load_hf_weights(tmp.path, m.cfg, plain, m.ops);
  const std::vector<float> got = logits_of(plain, g, m.cfg.spec.vocab_size, nullptr);
  const double err = rel_error(got, read_f32(expected, "merged_logits"));
  std::printf("[dora golden] %-10s merged logits rel %.3e\n", GetParam().name, err);
  EXPECT_LT(err, kLogitsTol);
}

// Import then export: peft's tensors, names and shapes, bitwise; the same targets read back.
TEST_P(DoraGolden, AdapterRoundTripsBitwise) {
  Loaded m(base(), dir());
  const TempDir tmp(std::string(GetParam().name) + "-rt");
  const std::string out = tmp.path + "/adapter";
  m.method->save_peft(out, {m.cfg, *m.model, m.ops, GetParam().base});
  const SafetensorsFile original(dir() + "/adapter_model.safetensors");
  const SafetensorsFile written(out + "/adapter_model.safetensors");
  const std::vector<std::string> a = original.names(), b = written.names();
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()), std::set<std::string>(b.begin(), b.end()));
  for (const std::string& n : b) {
    if (!original.has(n)) continue;
    EXPECT_EQ(written.info(n).dtype, original.info(n).dtype) << n;
    EXPECT_EQ(written.info(n).shape, original.info(n).shape) << n;
    const std::span<const std::byte> x = original.raw(n), y = written.raw(n);
    ASSERT_EQ(x.size(), y.size()) << n;
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size()), 0) << n << " differs";
  }
  const auto& want = dynamic_cast<const peft::Lora&>(*m.method).spec();
  ASSERT_TRUE(want.use_dora);
  const peft::LoraSpec again = peft::read_peft_lora_config(out);
  EXPECT_TRUE(again.use_dora);
  EXPECT_EQ(again.rank, want.rank);
  EXPECT_EQ(again.alpha, want.alpha);
  EXPECT_EQ(again.rslora, want.rslora);
  EXPECT_EQ(again.targets, want.targets);
}

std::string case_name(const ::testing::TestParamInfo<Case>& p) { return p.param.name; }

INSTANTIATE_TEST_SUITE_P(Adapters, DoraGolden, ::testing::ValuesIn(kCases), case_name);

// A DoRA adapter whose magnitude is missing or misshaped is refused, naming the file.
TEST(DoraGoldenConfig, MissingOrMisshapedMagnitudeIsRefused) {
  const std::string base = source_path("tests/golden/models/llama");
  const std::string src = source_path("tests/golden/peft/dora_llama");
  const HfModelConfig cfg = read_hf_config(base);
  const SafetensorsFile file(src + "/adapter_model.safetensors");
  const std::string m0 = "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector";
  ASSERT_TRUE(file.has(m0));
  for (const bool drop : {true, false}) {
    const TempDir tmp(drop ? "drop" : "shape");
    std::filesystem::copy_file(src + "/adapter_config.json", tmp.path + "/adapter_config.json");
    std::vector<HfTensor> tensors;
    for (const std::string& n : file.names()) {
      if (drop && n == m0) continue;
      const auto& info = file.info(n);
      std::vector<double> v(static_cast<std::size_t>(info.numel));
      file.read_f64(n, v);
      HfTensor t;
      t.name = n;
      t.shape = info.shape.size() == 2 ? Shape{info.shape[0], info.shape[1]} : Shape{info.shape[0]};
      if (n == m0) t.shape = Shape{1, info.shape[0]};  // [1, out]: not peft's [out]
      t.data.assign(v.begin(), v.end());
      tensors.push_back(std::move(t));
    }
    write_hf_tensors(tmp.path + "/adapter_model.safetensors", std::move(tensors), DType::kF32);
    try {
      Loaded m(base, tmp.path);
      ADD_FAILURE() << "loaded an adapter with " << (drop ? "no" : "a misshaped") << " magnitude";
    } catch (const UserError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("adapter_model.safetensors"), std::string::npos) << what;
      EXPECT_NE(what.find("lora_magnitude_vector"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace tailor::checkpoint
