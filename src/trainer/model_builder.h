// The model a config describes, built the same way by training, `export --checkpoint` and `eval`:
// the architecture (model.path's config.json, or the config's own keys), the PEFT attachments
// (LoRA, bottleneck adapters, prompt tuning) and the starting weights.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/ops.h"
#include "checkpoint/hf_model.h"
#include "comm/communicator.h"
#include "config/config.h"
#include "model/transformer.h"
#include "peft/method.h"

namespace tailor::trainer {

struct ModelSetup {
  checkpoint::HfModelConfig hf;        // spec, family, special ids (from model.path)
  bool from_hf = false;                // model.path given
  // Where the run's tokenizer files are (model.path for data.tokenizer: model); "" for the byte
  // tokenizer, whose Hugging Face files an export writes itself (ByteTokenizer::hf_files).
  std::string tokenizer_dir;
  // peft.method's (with peft.adapter's settings when given); nullptr for full fine-tuning.
  std::shared_ptr<const peft::Method> method;

  // What the model is built with (model::Transformer's attachments).
  [[nodiscard]] std::vector<const model::Attachment*> attachments() const;
  // Virtual-token slots that open every document (prompt tuning), 0 otherwise.
  [[nodiscard]] std::int64_t virtual_tokens() const {
    return method != nullptr ? method->virtual_tokens() : 0;
  }
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
