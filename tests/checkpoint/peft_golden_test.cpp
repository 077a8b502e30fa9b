// Golden numerics against the `peft` library: LoRA adapters on the tiny golden LLaMA
// (tests/golden/models/llama), with the logits, loss and LoRA gradients peft computed on a fixed
// batch (tests/golden/make_peft_fixtures.py; fixtures in tests/golden/peft/<case>/):
//
//   lora_hub     peft's own adapter (r 4, alpha 8, all seven linears, B != 0), as one from the Hub
//   lora_rslora  the same with use_rslora (scale alpha / sqrt(r)) on q_proj and v_proj only
//   lora_qwen3   as lora_hub on the tiny Qwen3 (tests/golden/models/qwen3): LoRA on q_proj / k_proj
//                feeds the per-head q/k RMSNorm
//   tailor_lora  Tailor's own export (`tailor export --format peft` of the committed checkpoint
//                of `tailor train tests/golden/peft/tailor_lora.yaml`), which peft loaded onto
//                the base with no missing or unexpected key; export_golden_test.cpp checks that
//                today's exporter writes these bytes
//
// Tailor builds the model from the base's config.json and the adapter's adapter_config.json,
// loads the base and then the adapter, runs the same batch on the CPU in f32 and must agree:
// normwise relative error < 1e-5 on logits and loss, < 1e-4 on every LoRA gradient. Writing the
// loaded adapter back (peft::Lora::save_peft) gives the same tensors bitwise.
//
// Prompt tuning (PromptTuningConfig): prompt_llama / prompt_gpt2 are peft's own prompts on the
// tiny LLaMA / GPT-2, tailor_prompt Tailor's export (of the committed checkpoint of `tailor train
// tests/golden/peft/tailor_prompt.yaml`, rechecked like tailor_lora) that peft loaded cleanly; Tailor runs each fixture row as
// one document opened by the virtual tokens and must give peft's logits (all n + T positions) and
// loss within 1e-5 and its prompt_embeddings gradient within 1e-4.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <ostream>
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
#include "peft_golden_util.h"
#include "model/model_test_util.h"
#include "peft/adapter_files.h"
#include "peft/lora.h"
#include "peft/prompt_tuning.h"

namespace tailor::checkpoint {
namespace {

using model::testing::HostBatch;
using golden::dims;
using golden::GoldenBatch;
using golden::make_batch;
using golden::read_f32;
using golden::read_i32;
using golden::rel_error;

using golden::kPeftPrefix;
using golden::source_path;
using golden::to_host;
using TempDir = golden::ScratchDir;

constexpr double kLogitsTol = golden::kPeftLogitsTol;
constexpr double kLossTol = golden::kPeftLossTol;
constexpr double kGradTol = golden::kPeftGradTol;
constexpr int kThreads = 2;

std::string base_dir() { return source_path("tests/golden/models/llama"); }

struct Case {
  const char* name;
  const char* expected;  // file of what peft computed, in the adapter directory
  const char* base = "tests/golden/models/llama";  // the base model it adapts
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const Case kCases[] = {{"lora_hub", "expected.safetensors"},
                       {"lora_rslora", "expected.safetensors"},
                       {"tailor_lora", "expected_logits.safetensors"},
                       {"lora_qwen3", "expected.safetensors", "tests/golden/models/qwen3"}};

std::string adapter_dir(const Case& c) {
  return source_path(std::string("tests/golden/peft/") + c.name);
}
std::string expected_path(const Case& c) { return adapter_dir(c) + "/" + c.expected; }



// The base with one adapter, loaded as a user evaluating or continuing a Hub adapter would.
struct Loaded {
  HfModelConfig cfg;
  peft::LoraSpec lora;
  peft::Lora method;
  backend::CpuOps ops{kThreads};
  std::unique_ptr<model::Transformer> model;

  explicit Loaded(const std::string& adapter, const std::string& base = base_dir())
      : cfg(read_hf_config(base)), lora(peft::read_peft_lora_config(adapter)), method(lora) {
    model = std::make_unique<model::Transformer>(cfg.spec, ops, DType::kF32, nullptr,
                                                 std::vector<const model::Attachment*>{&method});
    load_hf_weights(base, cfg, *model, ops);
    method.load_adapter(adapter, *model, ops);
  }
};

class PeftGolden : public ::testing::TestWithParam<Case> {
 protected:
  const char* name() const { return GetParam().name; }
  std::string dir() const { return adapter_dir(GetParam()); }
};

TEST_P(PeftGolden, LogitsAndLossMatchPeft) {
  Loaded m(dir(), source_path(GetParam().base));
  const SafetensorsFile expected(expected_path(GetParam()));
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
  std::printf(
      "[peft golden] %-12s logits rel %.3e (worst row b=%lld t=%lld: %.3e)  loss %.7f vs %.7f rel "
      "%.3e\n",
      name(), logits_err, static_cast<long long>(worst_pos / g.t),
      static_cast<long long>(worst_pos % g.t), worst_pos_err, loss, want_loss, loss_err);
  EXPECT_LT(logits_err, kLogitsTol);
  EXPECT_LT(loss_err, kLossTol);
}

TEST_P(PeftGolden, LoraGradientsMatchPeft) {
  Loaded m(dir(), source_path(GetParam().base));
  const SafetensorsFile expected(expected_path(GetParam()));
  GoldenBatch g = make_batch(expected);
  ASSERT_GT(g.count, 0);

  m.model->params().zero_grad(m.ops);
  const double sum = m.model->forward_backward(g.host->batch, 1.0 / static_cast<double>(g.count));
  m.model->finish_gradients();
  const double want_loss = static_cast<double>(read_f32(expected, "loss").at(0));
  EXPECT_LT(std::abs(sum / static_cast<double>(g.count) - want_loss) / std::abs(want_loss),
            kLossTol);

  std::set<std::string> got_names, want_names;
  for (const std::string& n : expected.names())
    if (n.starts_with("grad.")) want_names.insert(n.substr(5));
  ASSERT_FALSE(want_names.empty());
  double worst = 0.0;
  std::string worst_name;
  for (const model::Parameter& p : m.model->params().all()) {
    if (p.name.find(".lora_") == std::string::npos) {
      // The frozen base: no gradient (peft records none either).
      EXPECT_FALSE(p.trainable) << p.name;
      continue;
    }
    EXPECT_TRUE(p.trainable) << p.name;
    const std::string peft_name = kPeftPrefix + p.name;
    got_names.insert(peft_name);
    const std::string key = "grad." + peft_name;
    if (!expected.has(key)) {
      ADD_FAILURE() << p.name << ": Tailor has a LoRA factor peft does not (" << peft_name << ")";
      continue;
    }
    EXPECT_EQ(dims(p.global_shape), expected.info(key).shape) << p.name;
    if (dims(p.global_shape) != expected.info(key).shape) continue;
    const double e = rel_error(to_host(m.ops, p.grad, p.shape), read_f32(expected, key));
    EXPECT_LT(e, kGradTol) << p.name;
    if (e > worst || worst_name.empty()) {
      worst = e;
      worst_name = p.name;
    }
  }
  EXPECT_EQ(got_names, want_names);
  std::printf("[peft golden] %-12s %zu LoRA gradients, worst rel %.3e (%s)\n", name(),
              got_names.size(), worst, worst_name.c_str());
}

// Import then export: the adapter Tailor writes holds the tensors it read, bitwise, under the same
// names (and the values it loaded are the file's).
TEST_P(PeftGolden, AdapterRoundTripsBitwise) {
  Loaded m(dir(), source_path(GetParam().base));
  const SafetensorsFile original(dir() + "/adapter_model.safetensors");
  for (const model::Parameter& p : m.model->params().all()) {
    if (p.name.find(".lora_") == std::string::npos) continue;
    const std::string peft_name = kPeftPrefix + p.name;
    ASSERT_TRUE(original.has(peft_name)) << peft_name;
    const std::vector<float> held = to_host(m.ops, p.value, p.shape);
    const std::span<const std::byte> raw = original.raw(peft_name);
    ASSERT_EQ(original.info(peft_name).dtype, "F32") << peft_name;
    ASSERT_EQ(raw.size(), held.size() * sizeof(float)) << peft_name;
    EXPECT_EQ(std::memcmp(raw.data(), held.data(), raw.size()), 0)
        << peft_name << " loaded inexactly";
  }

  const TempDir tmp(name());
  const std::string out = tmp.path + "/adapter";
  m.method.save_peft(out, {m.cfg, *m.model, m.ops, "tests/golden/models/llama"});
  golden::expect_same_adapter_tensors(dir(), out);
  // And what it wrote reads back to the same LoRA settings.
  const peft::LoraSpec again = peft::read_peft_lora_config(out);
  EXPECT_EQ(again.rank, m.lora.rank);
  EXPECT_EQ(again.alpha, m.lora.alpha);
  EXPECT_EQ(again.rslora, m.lora.rslora);
  EXPECT_EQ(again.scale(), m.lora.scale());
}

std::string case_name(const ::testing::TestParamInfo<Case>& p) { return p.param.name; }

INSTANTIATE_TEST_SUITE_P(Adapters, PeftGolden, ::testing::ValuesIn(kCases), case_name);

// What adapter_config.json says reaches the LoraSpec.
TEST(PeftGoldenConfig, AdapterConfigsReadAsPeftWroteThem) {
  const peft::LoraSpec hub = peft::read_peft_lora_config(adapter_dir(kCases[0]));
  EXPECT_EQ(hub.rank, 4);
  EXPECT_EQ(hub.alpha, 8.0);
  EXPECT_FALSE(hub.rslora);
  EXPECT_EQ(hub.scale(), 2.0);
  for (const char* m :
       {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
    EXPECT_TRUE(hub.targets_module(m)) << m;

  const peft::LoraSpec rs = peft::read_peft_lora_config(adapter_dir(kCases[1]));
  EXPECT_EQ(rs.rank, 4);
  EXPECT_EQ(rs.alpha, 8.0);
  EXPECT_TRUE(rs.rslora);
  EXPECT_EQ(rs.scale(), 4.0);  // alpha / sqrt(r), not alpha / r
  EXPECT_TRUE(rs.targets_module("q_proj"));
  EXPECT_TRUE(rs.targets_module("v_proj"));
  for (const char* m : {"k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
    EXPECT_FALSE(rs.targets_module(m)) << m;

  const peft::LoraSpec own = peft::read_peft_lora_config(adapter_dir(kCases[2]));
  EXPECT_EQ(own.rank, 4);
  EXPECT_EQ(own.alpha, 8.0);
  EXPECT_FALSE(own.rslora);
  for (const char* m :
       {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
    EXPECT_TRUE(own.targets_module(m)) << m;
}

// ---- prompt tuning ---------------------------------------------------------------------------
// peft prepends the virtual tokens to every row: a Tailor row holding one document opens with
// them at positions 0..n-1 (ids -1 - k), so the two compute the same thing. The fixtures record
// logits at all n + T positions, peft's loss (the virtual positions carry no label) and the
// gradient of prompt_embeddings.
struct PromptCase {
  const char* name;
  const char* base;      // repository-relative base model directory
  const char* expected;
};

void PrintTo(const PromptCase& c, std::ostream* os) { *os << c.name; }

const PromptCase kPromptCases[] = {
    {"prompt_llama", "tests/golden/models/llama", "expected.safetensors"},
    {"prompt_gpt2", "tests/golden/models/gpt2", "expected.safetensors"},
    {"tailor_prompt", "tests/golden/models/llama", "expected_logits.safetensors"}};

struct LoadedPrompt {
  HfModelConfig cfg;
  std::int64_t n = 0;
  std::unique_ptr<peft::PromptTuning> method;
  backend::CpuOps ops{kThreads};
  std::unique_ptr<model::Transformer> model;

  LoadedPrompt(const std::string& base, const std::string& adapter) : cfg(read_hf_config(base)) {
    EXPECT_EQ(peft::read_peft_type(adapter), "PROMPT_TUNING");
    n = peft::read_peft_prompt_config(adapter, cfg.spec);
    method = std::make_unique<peft::PromptTuning>(n);
    model = std::make_unique<model::Transformer>(
        cfg.spec, ops, DType::kF32, nullptr, std::vector<const model::Attachment*>{method.get()});
    load_hf_weights(base, cfg, *model, ops);
    method->load_adapter(adapter, *model, ops);
  }
};

// The fixture's rows with the virtual tokens in front; target i is peft's label i + 1.
struct PromptBatch {
  std::int64_t b = 0, t = 0;  // t: n + the fixture's T
  std::int64_t count = 0;
  std::unique_ptr<HostBatch> host;
};

PromptBatch prompt_batch(const SafetensorsFile& expected, std::int64_t n) {
  PromptBatch g;
  const std::vector<std::int64_t>& shape = expected.info("input_ids").shape;
  g.b = shape[0];
  const std::int64_t t0 = shape[1];
  g.t = n + t0;
  const std::vector<std::int32_t> ids = read_i32(expected, "input_ids");
  const std::vector<std::int32_t> labels = read_i32(expected, "labels");
  std::vector<std::int32_t> row_ids, targets, positions;
  for (std::int64_t r = 0; r < g.b; ++r) {
    std::vector<std::int32_t> full_labels(static_cast<std::size_t>(n), -100);
    for (std::int64_t k = 0; k < n; ++k) row_ids.push_back(static_cast<std::int32_t>(-1 - k));
    for (std::int64_t c = 0; c < t0; ++c) {
      row_ids.push_back(ids[static_cast<std::size_t>(r * t0 + c)]);
      full_labels.push_back(labels[static_cast<std::size_t>(r * t0 + c)]);
    }
    for (std::int64_t i = 0; i < g.t; ++i) {
      const std::int32_t target = i + 1 < g.t ? full_labels[static_cast<std::size_t>(i + 1)] : -100;
      targets.push_back(target);
      positions.push_back(static_cast<std::int32_t>(i));
      if (target != -100) ++g.count;
    }
  }
  g.host = std::make_unique<HostBatch>(g.b, g.t, row_ids, targets, positions,
                                       std::vector<std::int32_t>{});
  return g;
}

class PeftPromptGolden : public ::testing::TestWithParam<PromptCase> {
 protected:
  const char* name() const { return GetParam().name; }
  std::string dir() const { return source_path(std::string("tests/golden/peft/") + name()); }
  std::string base() const { return source_path(GetParam().base); }
  std::string expected_file() const { return dir() + "/" + GetParam().expected; }
};

TEST_P(PeftPromptGolden, LogitsLossAndPromptGradientMatchPeft) {
  LoadedPrompt m(base(), dir());
  const SafetensorsFile expected(expected_file());
  PromptBatch g = prompt_batch(expected, m.n);
  ASSERT_GT(g.count, 0);
  const std::int64_t v = m.cfg.spec.vocab_size;
  const std::int64_t pv = m.cfg.spec.padded_vocab();
  ASSERT_EQ(expected.info("logits").shape, (std::vector<std::int64_t>{g.b, g.t, v}));

  backend::Buffer logits(DType::kF32, Shape{g.b * g.t, pv});
  const backend::Tensor logits_out = logits.tensor();
  const double sum = m.model->forward(g.host->batch, &logits_out);
  std::vector<float> got(static_cast<std::size_t>(g.b * g.t * v));
  for (std::int64_t r = 0; r < g.b * g.t; ++r)
    std::copy_n(logits.ptr<float>() + r * pv, v, got.begin() + r * v);
  const double logits_err = rel_error(got, read_f32(expected, "logits"));
  const double want_loss = static_cast<double>(read_f32(expected, "loss").at(0));
  const double loss = sum / static_cast<double>(g.count);
  const double loss_err = std::abs(loss - want_loss) / std::abs(want_loss);
  EXPECT_LT(logits_err, kLogitsTol);
  EXPECT_LT(loss_err, kLossTol);

  m.model->params().zero_grad(m.ops);
  const double sum2 = m.model->forward_backward(g.host->batch, 1.0 / static_cast<double>(g.count));
  m.model->finish_gradients();
  EXPECT_EQ(sum2, sum);
  const model::Parameter& p = m.model->params().at(peft::kPromptEmbeddings);
  ASSERT_EQ(dims(p.global_shape), expected.info("grad.prompt_embeddings").shape);
  const double grad_err =
      rel_error(to_host(m.ops, p.grad, p.shape), read_f32(expected, "grad.prompt_embeddings"));
  EXPECT_LT(grad_err, kGradTol);
  for (const model::Parameter& q : m.model->params().all())
    EXPECT_EQ(q.trainable, q.name == peft::kPromptEmbeddings) << q.name;
  std::printf("[peft golden] %-13s logits rel %.3e  loss %.7f vs %.7f rel %.3e  prompt grad rel "
              "%.3e\n",
              name(), logits_err, loss, want_loss, loss_err, grad_err);
}

// Import then export: the same tensor bytes, and a config that reads back to the same n.
TEST_P(PeftPromptGolden, AdapterRoundTripsBitwise) {
  LoadedPrompt m(base(), dir());
  const TempDir tmp(name());
  const std::string out = tmp.path + "/adapter";
  m.method->save_peft(out, {m.cfg, *m.model, m.ops, GetParam().base});
  const SafetensorsFile original(dir() + "/adapter_model.safetensors");
  const SafetensorsFile written(out + "/adapter_model.safetensors");
  EXPECT_EQ(written.names(), original.names());
  const std::string n = peft::kPromptEmbeddings;
  EXPECT_EQ(written.info(n).dtype, "F32");
  EXPECT_EQ(written.info(n).shape, original.info(n).shape);
  const std::span<const std::byte> x = original.raw(n), y = written.raw(n);
  ASSERT_EQ(x.size(), y.size());
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size()), 0);
  EXPECT_EQ(peft::read_peft_prompt_config(out, m.cfg.spec), m.n);
}

std::string prompt_case_name(const ::testing::TestParamInfo<PromptCase>& p) {
  return p.param.name;
}

INSTANTIATE_TEST_SUITE_P(Prompts, PeftPromptGolden, ::testing::ValuesIn(kPromptCases),
                         prompt_case_name);

// A prompt-tuning adapter is not a LoRA adapter, and the reverse, and a base of another width is
// refused: one line naming the file.
TEST(PeftPromptGoldenConfig, MismatchesAreUserErrors) {
  const std::string prompt = source_path("tests/golden/peft/prompt_llama");
  const std::string lora = source_path("tests/golden/peft/lora_hub");
  const HfModelConfig llama = read_hf_config(base_dir());
  const HfModelConfig gpt2 = read_hf_config(source_path("tests/golden/models/gpt2"));
  EXPECT_THROW((void)peft::read_peft_lora_config(prompt), UserError);
  try {
    (void)peft::read_peft_prompt_config(lora, llama.spec);
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              lora + "/adapter_config.json: peft_type: LORA is not a prompt-tuning adapter "
                     "(PROMPT_TUNING)");
  }
  try {
    (void)peft::read_peft_prompt_config(prompt, gpt2.spec);
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              prompt +
                  "/adapter_config.json: token_dim: 64, but the base model's hidden size is 32");
  }
}

}  // namespace
}  // namespace tailor::checkpoint
