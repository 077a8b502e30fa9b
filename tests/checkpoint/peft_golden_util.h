// What the PEFT golden tests (LoRA, DoRA, IA3 against the `peft` library) share: loading a base
// with one adapter as `tailor generate --adapter` does, and the checks every method's fixture
// goes through — logits and loss, the adapter's gradients, the merged Hugging Face export, and the
// adapter written back bitwise. Each method's test file keeps its cases and its own config checks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "checkpoint/safetensors.h"
#include "golden_util.h"
#include "peft/method.h"

namespace tailor::checkpoint::golden {

// Tailor's parameter `<name>` is the adapter tensor `base_model.model.<name>` (peft's in-memory
// adapter-name infix, `.default`, is not stored).
inline constexpr const char* kPeftPrefix = "base_model.model.";
inline constexpr double kPeftLogitsTol = 1e-5;
inline constexpr double kPeftLossTol = 1e-5;
inline constexpr double kPeftGradTol = 1e-4;

inline std::string source_path(const std::string& rel) {
  return std::string(TAILOR_SOURCE_DIR) + "/" + rel;
}

inline std::vector<float> to_host(backend::Ops& ops, const backend::Tensor& t, const Shape& shape) {
  backend::Buffer host(DType::kF32, shape);
  ops.copy(host.tensor(), t);
  return {host.ptr<float>(), host.ptr<float>() + shape.numel()};
}

// A fresh directory under the system's temporary directory, removed with the object.
struct ScratchDir {
  std::string path;
  explicit ScratchDir(const std::string& tag)
      : path((std::filesystem::temp_directory_path() /
              ("tailor-peft-golden-" + tag + "-" + std::to_string(::getpid())))
                 .string()) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

// A base model with one adapter, loaded as `tailor generate --adapter` would: the model built
// from the base's config.json and the method `make_method` reads from the adapter directory.
struct LoadedAdapter {
  using MakeMethod =
      std::function<std::shared_ptr<const peft::Method>(const std::string&, const model::ModelSpec&)>;

  HfModelConfig cfg;
  std::shared_ptr<const peft::Method> method;
  backend::CpuOps ops{2};
  std::unique_ptr<model::Transformer> model;

  LoadedAdapter(const std::string& base, const std::string& adapter, const MakeMethod& make_method)
      : cfg(read_hf_config(base)), method(make_method(adapter, cfg.spec)) {
    model = std::make_unique<model::Transformer>(
        cfg.spec, ops, DType::kF32, nullptr, std::vector<const model::Attachment*>{method.get()});
    load_hf_weights(base, cfg, *model, ops);
    method->load_adapter(adapter, *model, ops);
  }
};

// logits [B*T, V] of `m` on the fixture's batch, the padding columns dropped; `loss` (if given)
// receives the mean loss over the batch's targets.
inline std::vector<float> logits_of(model::Transformer& m, const GoldenBatch& g, double* loss) {
  const std::int64_t v = m.spec().vocab_size;
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

// Logits within 1e-5 and loss within 1e-5 (normwise relative) of what peft computed on the
// fixture's batch (`expected`: logits [B, T, V], loss).
inline void expect_logits_match_peft(LoadedAdapter& m, const SafetensorsFile& expected,
                                     const char* label) {
  const GoldenBatch g = make_batch(expected);
  ASSERT_GT(g.count, 0);
  ASSERT_EQ(expected.info("logits").shape,
            (std::vector<std::int64_t>{g.b, g.t, m.cfg.spec.vocab_size}));
  double loss = 0.0;
  const std::vector<float> got = logits_of(*m.model, g, &loss);
  const double logits_err = rel_error(got, read_f32(expected, "logits"));
  const double want_loss = static_cast<double>(read_f32(expected, "loss").at(0));
  const double loss_err = std::abs(loss - want_loss) / std::abs(want_loss);
  std::printf("[%s] logits rel %.3e  loss %.7f vs %.7f rel %.3e\n", label, logits_err, loss,
              want_loss, loss_err);
  EXPECT_LT(logits_err, kPeftLogitsTol);
  EXPECT_LT(loss_err, kPeftLossTol);
}

// Every parameter of method `method_name` is trainable and has peft's gradient (`grad.<peft
// name>` in `expected`) within 1e-4; the base is frozen; the two sets of names are equal.
inline void expect_gradients_match_peft(LoadedAdapter& m, const SafetensorsFile& expected,
                                        std::string_view method_name, const char* label) {
  const GoldenBatch g = make_batch(expected);
  ASSERT_GT(g.count, 0);
  m.model->params().zero_grad(m.ops);
  (void)m.model->forward_backward(g.host->batch, 1.0 / static_cast<double>(g.count));
  m.model->finish_gradients();
  std::set<std::string> got_names, want_names;
  for (const std::string& n : expected.names())
    if (n.starts_with("grad.")) want_names.insert(n.substr(5));
  ASSERT_FALSE(want_names.empty());
  double worst = 0.0;
  for (const model::Parameter& p : m.model->params().all()) {
    if (p.method != method_name) {
      EXPECT_FALSE(p.trainable) << p.name;  // the frozen base: peft records no gradient either
      continue;
    }
    EXPECT_TRUE(p.trainable) << p.name;
    const std::string key = "grad." + std::string(kPeftPrefix) + p.name;
    got_names.insert(key.substr(5));
    if (!expected.has(key)) {
      ADD_FAILURE() << p.name << ": Tailor has a " << method_name << " parameter peft does not";
      continue;
    }
    EXPECT_EQ(expected.info(key).numel, p.shape.numel()) << p.name;
    if (expected.info(key).numel != p.shape.numel()) continue;
    const double e = rel_error(to_host(m.ops, p.grad, p.shape), read_f32(expected, key));
    EXPECT_LT(e, kPeftGradTol) << p.name;
    worst = std::max(worst, e);
  }
  EXPECT_EQ(got_names, want_names);
  std::printf("[%s] %zu gradients, worst rel %.3e\n", label, got_names.size(), worst);
}

// The merged Hugging Face export (to_hf_tensors), loaded into a plain model of the family, gives
// the logits of peft's merge_and_unload() (`merged_logits` in `expected`) within 1e-5.
inline void expect_merged_export_matches_peft(LoadedAdapter& m, const std::string& base,
                                              const SafetensorsFile& expected, const char* label) {
  const GoldenBatch g = make_batch(expected);
  const ScratchDir tmp(std::string(label) + "-merged");
  std::filesystem::copy_file(base + "/config.json", tmp.path + "/config.json");
  write_hf_tensors(tmp.path + "/model.safetensors",
                   to_hf_tensors(m.cfg, *m.model, m.ops, /*gradients=*/false), DType::kF32);
  model::Transformer plain(m.cfg.spec, m.ops, DType::kF32);
  load_hf_weights(tmp.path, m.cfg, plain, m.ops);
  const std::vector<float> got = logits_of(plain, g, nullptr);
  const double err = rel_error(got, read_f32(expected, "merged_logits"));
  std::printf("[%s] merged logits rel %.3e\n", label, err);
  EXPECT_LT(err, kPeftLogitsTol);
}

// The adapter file Tailor wrote holds the original's tensors, bitwise, under the same names,
// dtypes and shapes.
inline void expect_same_adapter_tensors(const std::string& original_dir,
                                        const std::string& written_dir) {
  const SafetensorsFile original(original_dir + "/adapter_model.safetensors");
  const SafetensorsFile written(written_dir + "/adapter_model.safetensors");
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
}

}  // namespace tailor::checkpoint::golden
