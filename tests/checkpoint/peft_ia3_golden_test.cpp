// Golden numerics of IA3 against the `peft` library (tests/golden/make_peft_fixtures.py; fixtures
// in tests/golden/peft/ia3_*/): peft's own IA3 adapters, with ia3_l re-drawn away from 1, on
//
//   ia3_llama   the tiny LLaMA, peft's default targets (k, v, down; down scaled on its input)
//   ia3_qwen2   the tiny Qwen2, peft's default (q, v, down): the q and v biases are scaled too
//   ia3_mixed   the tiny LLaMA, all seven linears, q, o and up scaled on their input
//   tailor_ia3  Tailor's own export (`tailor export --format peft` of the committed checkpoint of
//               `tailor train tests/golden/peft/tailor_ia3.yaml`), which peft loaded onto the base
//               with no missing or unexpected key; its logits are peft's on that adapter
//               (export_golden_test.cpp checks that today's exporter writes these bytes)
//
// Tailor builds the model from the base's config.json and the adapter's adapter_config.json
// (targets and feed-forward modules as written, or the family's default where peft wrote none),
// loads the base and the adapter and runs peft's batch on the CPU in f32: logits and loss within
// 1e-5 (normwise relative), every ia3_l gradient within 1e-4. The merged Hugging Face export
// (to_hf_tensors: W's rows or columns and the bias times l), loaded into a plain model, gives
// the logits of peft's merge_and_unload() within 1e-5; writing the loaded adapter back
// (peft::Ia3::save_peft) gives peft's tensors bitwise under peft's names and shapes.
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "peft/ia3.h"
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

const Case kCases[] = {{"ia3_llama", "tests/golden/models/llama"},
                       {"ia3_qwen2", "tests/golden/models/qwen2"},
                       {"ia3_mixed", "tests/golden/models/llama"},
                       {"tailor_ia3", "tests/golden/models/llama"}};

class Ia3Golden : public ::testing::TestWithParam<Case> {
 protected:
  std::string base() const { return source_path(GetParam().base); }
  std::string dir() const { return source_path(std::string("tests/golden/peft/") + GetParam().name); }
  std::string label() const { return std::string("ia3 golden ") + GetParam().name; }
  LoadedAdapter load() const { return LoadedAdapter(base(), dir(), peft::Ia3::from_adapter); }
};

TEST_P(Ia3Golden, LogitsAndLossMatchPeft) {
  LoadedAdapter m = load();
  golden::expect_logits_match_peft(m, SafetensorsFile(dir() + "/expected.safetensors"),
                                   label().c_str());
}

TEST_P(Ia3Golden, GradientsMatchPeft) {
  LoadedAdapter m = load();
  golden::expect_gradients_match_peft(m, SafetensorsFile(dir() + "/expected.safetensors"),
                                      peft::Ia3::kName, label().c_str());
}

// The merged export (W's rows or columns and the bias times l) is a plain model of the family
// whose logits are peft's merged model's.
TEST_P(Ia3Golden, MergedExportMatchesPeftMerge) {
  LoadedAdapter m = load();
  golden::expect_merged_export_matches_peft(
      m, base(), SafetensorsFile(dir() + "/expected.safetensors"), label().c_str());
}

// Import then export: peft's tensors, names and shapes, bitwise; the same targets read back.
TEST_P(Ia3Golden, AdapterRoundTripsBitwise) {
  LoadedAdapter m = load();
  const ScratchDir tmp(std::string("ia3-") + GetParam().name + "-rt");
  const std::string out = tmp.path + "/adapter";
  m.method->save_peft(out, {m.cfg, *m.model, m.ops, GetParam().base});
  golden::expect_same_adapter_tensors(dir(), out);
  const auto& want = dynamic_cast<const peft::Ia3&>(*m.method).spec();
  const peft::Ia3Spec again = peft::read_peft_ia3_config(out, m.cfg.spec);
  for (const char* module : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                             "down_proj"}) {
    EXPECT_EQ(again.targets_module(module), want.targets_module(module)) << module;
    EXPECT_EQ(again.feedforward_module(module), want.feedforward_module(module)) << module;
  }
}

std::string case_name(const ::testing::TestParamInfo<Case>& p) { return p.param.name; }

INSTANTIATE_TEST_SUITE_P(Adapters, Ia3Golden, ::testing::ValuesIn(kCases), case_name);

// peft's defaults per family, read from adapter configs that leave them out, and refusals.
TEST(Ia3GoldenConfig, FamilyDefaultsAndRefusals) {
  const HfModelConfig llama = read_hf_config(source_path("tests/golden/models/llama"));
  const HfModelConfig qwen2 = read_hf_config(source_path("tests/golden/models/qwen2"));
  const ScratchDir tmp("ia3-cfg");
  const auto write = [&](const std::string& body) {
    std::ofstream(tmp.path + "/adapter_config.json") << body;
    return tmp.path;
  };
  const std::string dir = write(R"({"peft_type": "IA3", "target_modules": null})");
  const peft::Ia3Spec l = peft::read_peft_ia3_config(dir, llama.spec);
  EXPECT_TRUE(l.targets_module("k_proj"));
  EXPECT_FALSE(l.targets_module("q_proj"));
  EXPECT_TRUE(l.feedforward_module("down_proj"));
  EXPECT_FALSE(l.feedforward_module("v_proj"));
  const peft::Ia3Spec q = peft::read_peft_ia3_config(dir, qwen2.spec);
  EXPECT_TRUE(q.targets_module("q_proj"));
  EXPECT_FALSE(q.targets_module("k_proj"));
  for (const char* bad : {R"({"peft_type": "LORA"})",
                          R"({"peft_type": "IA3", "fan_in_fan_out": true})",
                          R"({"peft_type": "IA3", "target_modules": ["qkv"]})",
                          R"({"peft_type": "IA3", "modules_to_save": ["lm_head"]})"}) {
    try {
      (void)peft::read_peft_ia3_config(write(bad), llama.spec);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("adapter_config.json"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace tailor::checkpoint
