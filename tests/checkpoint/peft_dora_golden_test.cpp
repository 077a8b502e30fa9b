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
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "peft/lora.h"
#include "peft_golden_util.h"

namespace tailor::checkpoint {
namespace {

using golden::LoadedAdapter;
using golden::ScratchDir;
using golden::source_path;

struct Case {
  const char* name;
  const char* base;  // repository-relative
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const Case kCases[] = {{"dora_llama", "tests/golden/models/llama"},
                       {"dora_qwen2", "tests/golden/models/qwen2"},
                       {"tailor_dora", "tests/golden/models/llama"}};

LoadedAdapter load_dora(const std::string& base, const std::string& adapter) {
  return LoadedAdapter(base, adapter, peft::Lora::from_adapter);
}

class DoraGolden : public ::testing::TestWithParam<Case> {
 protected:
  std::string base() const { return source_path(GetParam().base); }
  std::string dir() const { return source_path(std::string("tests/golden/peft/") + GetParam().name); }
  std::string label() const { return std::string("dora golden ") + GetParam().name; }
};

TEST_P(DoraGolden, LogitsAndLossMatchPeft) {
  LoadedAdapter m = load_dora(base(), dir());
  golden::expect_logits_match_peft(m, SafetensorsFile(dir() + "/expected.safetensors"),
                                   label().c_str());
}

// lora_A, lora_B and lora_magnitude_vector; the norm a constant as in peft.
TEST_P(DoraGolden, GradientsMatchPeft) {
  LoadedAdapter m = load_dora(base(), dir());
  golden::expect_gradients_match_peft(m, SafetensorsFile(dir() + "/expected.safetensors"),
                                      peft::Lora::kName, label().c_str());
}

// The merged export, c (W + s B A), is a plain model whose logits are peft's merged model's.
TEST_P(DoraGolden, MergedExportMatchesPeftMerge) {
  LoadedAdapter m = load_dora(base(), dir());
  golden::expect_merged_export_matches_peft(
      m, base(), SafetensorsFile(dir() + "/expected.safetensors"), label().c_str());
}

// Import then export: peft's tensors, names and shapes, bitwise, and a config that reads back
// as DoRA.
TEST_P(DoraGolden, AdapterRoundTripsBitwise) {
  LoadedAdapter m = load_dora(base(), dir());
  const ScratchDir tmp(std::string("dora-") + GetParam().name + "-rt");
  const std::string out = tmp.path + "/adapter";
  m.method->save_peft(out, {m.cfg, *m.model, m.ops, GetParam().base});
  golden::expect_same_adapter_tensors(dir(), out);
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
    const ScratchDir tmp(drop ? "dora-drop" : "dora-shape");
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
      LoadedAdapter m = load_dora(base, tmp.path);
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
