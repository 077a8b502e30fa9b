#include "trainer/export.h"

#include "core/logging.h"
#include "peft/peft_export.h"

namespace tailor::trainer {

void export_hf(const std::string& out_dir, const ModelSetup& setup, const model::Transformer& model,
               backend::Ops& ops, const std::string& base_dir, bool bf16, const char* what) {
  const checkpoint::HfModelConfig& hf = setup.hf;
  checkpoint::save_hf_model(out_dir, hf, model, ops, base_dir, bf16);
  log::info("exported {} ({}{}) to {}", what, hf.model_type, setup.lora ? ", LoRA merged" : "",
            out_dir);
  const std::string adapter_dir = out_dir + "/adapter";
  if (setup.bottleneck > 0) {
    peft::save_bottleneck_adapters(adapter_dir, model, ops);
    log::info("exported the bottleneck adapters (Tailor layout) to {}", adapter_dir);
  }
  if (setup.lora && hf.family().peft_lora_unsupported().empty()) {
    // The adapter applies to the base it was trained on: model.path (a config-defined base has no
    // directory of its own; out_dir holds the merged model).
    peft::save_peft_lora(adapter_dir, hf, model, ops, base_dir);
    log::info("exported the LoRA adapter (PEFT format) to {}", adapter_dir);
  }
  if (setup.virtual_tokens > 0) {  // out_dir holds the unchanged base
    peft::save_peft_prompt_tuning(adapter_dir, model, ops, base_dir);
    log::info("exported the prompt-tuning adapter (PEFT format) to {}", adapter_dir);
  }
}

}  // namespace tailor::trainer
