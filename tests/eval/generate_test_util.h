// Helpers of the generation tests: the committed golden models (tests/golden/models, optionally
// with a PEFT LoRA adapter from tests/golden/peft) loaded into a Tailor model on the CPU in f32,
// and the greedy fixture HF generate() wrote (tests/golden/generate/greedy.json).
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "model/transformer.h"
#include "peft/lora.h"

namespace tailor::eval::testing {

inline std::string source_path(const std::string& rel) {
  return std::string(TAILOR_SOURCE_DIR) + "/" + rel;
}

// A model directory (+ adapter) loaded as `tailor generate` loads it.
struct LoadedModel {
  checkpoint::HfModelConfig hf;
  std::unique_ptr<backend::CpuOps> ops;
  std::unique_ptr<peft::Lora> lora;
  std::unique_ptr<model::Transformer> model;
};

inline LoadedModel load_model(const std::string& model_dir, const std::string& adapter_dir = "",
                              int threads = 2) {
  LoadedModel m;
  m.hf = checkpoint::read_hf_config(model_dir);
  m.ops = std::make_unique<backend::CpuOps>(threads);
  std::vector<const model::Attachment*> methods;
  if (!adapter_dir.empty()) {
    m.lora = std::make_unique<peft::Lora>(peft::read_peft_lora_config(adapter_dir));
    methods.push_back(m.lora.get());
  }
  m.model = std::make_unique<model::Transformer>(m.hf.spec, *m.ops, DType::kF32, nullptr, methods);
  checkpoint::load_hf_weights(model_dir, m.hf, *m.model, *m.ops);
  if (m.lora) m.lora->load_adapter(adapter_dir, *m.model, *m.ops);
  return m;
}

// One case of tests/golden/generate/greedy.json.
struct GreedyCase {
  std::string name, model, adapter;  // repository-relative directories; adapter may be empty
  std::int32_t eos = -1;
  std::int64_t max_new_tokens = 0;
  std::vector<std::vector<std::int32_t>> prompts, generated;
};

inline std::vector<GreedyCase> greedy_cases() {
  std::ifstream f(source_path("tests/golden/generate/greedy.json"));
  EXPECT_TRUE(f.good()) << "tests/golden/generate/greedy.json";
  const nlohmann::json j = nlohmann::json::parse(f);
  std::vector<GreedyCase> out;
  for (const auto& c : j.at("cases")) {
    GreedyCase g;
    g.name = c.at("name").get<std::string>();
    g.model = c.at("model").get<std::string>();
    if (!c.at("adapter").is_null()) g.adapter = c.at("adapter").get<std::string>();
    g.eos = c.at("eos_token_id").get<std::int32_t>();
    g.max_new_tokens = c.at("max_new_tokens").get<std::int64_t>();
    g.prompts = c.at("prompts").get<std::vector<std::vector<std::int32_t>>>();
    g.generated = c.at("generated").get<std::vector<std::vector<std::int32_t>>>();
    out.push_back(std::move(g));
  }
  return out;
}

inline LoadedModel load_case(const GreedyCase& c, int threads = 2) {
  return load_model(source_path(c.model), c.adapter.empty() ? "" : source_path(c.adapter), threads);
}

}  // namespace tailor::eval::testing
