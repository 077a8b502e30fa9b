// The export chain, written once for the end of training and `tailor export --format hf`: the
// model as a Hugging Face directory (linear adapters such as LoRA merged; the unchanged base
// otherwise) and the PEFT method's adapter in its own format under `adapter/`.
#pragma once

#include <string>

#include "backend/ops.h"
#include "model/transformer.h"
#include "trainer/model_builder.h"

namespace tailor::trainer {

// Writes out_dir from a single-rank model built from `setup`. `base_dir`: the base model's
// directory the adapters apply to ("" for a config-defined base). `what` names the model in the
// log line ("the final model").
void export_hf(const std::string& out_dir, const ModelSetup& setup, const model::Transformer& model,
               backend::Ops& ops, const std::string& base_dir, bool bf16, const char* what);

}  // namespace tailor::trainer
