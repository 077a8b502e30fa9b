// The model a config describes, built the same way by training, `export --checkpoint` and `eval`:
// the architecture (model.path's config.json, or the config's own keys), the PEFT attachments
// (LoRA, bottleneck adapters, prompt tuning) and the starting weights.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "backend/ops.h"
#include "checkpoint/hf_model.h"
#include "comm/communicator.h"
#include "config/config.h"
#include "model/lora.h"
#include "model/transformer.h"

namespace tailor::trainer {

struct ModelSetup {
  checkpoint::HfModelConfig hf;        // spec, family, special ids (from model.path)
  bool from_hf = false;                // model.path given
  std::optional<model::LoraSpec> lora; // peft.method lora (peft.adapter's config when given)
  std::int64_t bottleneck = 0;         // peft.method adapter
  std::int64_t virtual_tokens = 0;     // peft.method prompt_tuning (peft.adapter's when given)
};

// Reads the definition (model.path's config.json or the config's keys); no weights.
[[nodiscard]] ModelSetup model_setup(const config::ExperimentConfig& cfg);

enum class InitialWeights {
  kStart,  // as training starts: model.path's weights or the seeded init, fresh adapters (a
           // prompt from peft.prompt_init_text), then peft.adapter's weights when given
  kBase,   // only what a PEFT checkpoint does not hold: the frozen base (nothing for full FT)
};

// The model on `ops` (a TP group `tp`, nullptr: one rank) with its starting weights.
[[nodiscard]] std::unique_ptr<model::Transformer> build_model(const config::ExperimentConfig& cfg,
                                                              const ModelSetup& setup,
                                                              backend::Ops& ops,
                                                              comm::Communicator* tp,
                                                              InitialWeights weights);

}  // namespace tailor::trainer
