#include "trainer/model_builder.h"

#include "trainer/device.h"

#include "core/logging.h"
#include "peft/peft_import.h"
#include "trainer/checkpointing.h"
#include "trainer/from_config.h"
#include "trainer/prepare.h"

namespace tailor::trainer {
namespace {

// Prompt tuning's starting prompt from peft.prompt_init_text: the embeddings of its tokens
// (otherwise it keeps its seeded N(0, init_std) init).
void init_prompt(const config::ExperimentConfig& cfg, const ModelSetup& s, model::Transformer& m) {
  const std::string& text = cfg.peft.prompt_init_text;
  if (text.empty()) return;
  const std::unique_ptr<data::Tokenizer> tokenizer = tokenizer_from_config(cfg);
  const std::vector<std::int32_t> ids = tokenizer->encode(text);
  TAILOR_CHECK_USER(!ids.empty(), cfg.source, "peft.prompt_init_text: the text has no tokens");
  for (const std::int32_t id : ids)
    TAILOR_CHECK_USER(id >= 0 && id < s.hf.spec.vocab_size, cfg.source,
                      "peft.prompt_init_text: token id {} is outside the model's vocabulary ({})",
                      id, s.hf.spec.vocab_size);
  m.init_prompt_from_tokens(ids);
  log::info("prompt tuning: {} virtual tokens initialized from the {} tokens of \"{}\"",
            s.virtual_tokens, ids.size(), text);
}

}  // namespace

ModelSetup model_setup(const config::ExperimentConfig& cfg) {
  ModelSetup s;
  s.from_hf = !cfg.model.path.empty();
  if (s.from_hf) {
    s.hf = checkpoint::read_hf_config(cfg.model.path);
  } else {
    s.hf.spec = model_spec_from_config(cfg.model);
    // Exported as the first family that represents it exactly ("" when none does).
    if (const model::Family* f = model::family_for_spec(s.hf.spec)) s.hf.model_type = f->model_type();
  }
  if (cfg.peft.method == config::PeftMethod::kLora) {
    s.lora.emplace();
    s.lora->rank = cfg.peft.rank;
    s.lora->alpha = cfg.peft.alpha;
    s.lora->rslora = cfg.peft.use_rslora;
    s.lora->targets = cfg.peft.target_modules;
    s.lora->dropout = cfg.peft.dropout;
    if (!cfg.peft.adapter.empty()) s.lora = peft::read_peft_lora_config(cfg.peft.adapter);
  }
  s.bottleneck = cfg.peft.method == config::PeftMethod::kAdapter ? cfg.peft.bottleneck : 0;
  if (cfg.peft.method == config::PeftMethod::kPromptTuning) {
    s.virtual_tokens = cfg.peft.adapter.empty()
                           ? cfg.peft.num_virtual_tokens
                           : peft::read_peft_prompt_config(cfg.peft.adapter, s.hf.spec);
  }
  return s;
}

std::unique_ptr<model::Transformer> build_model(const config::ExperimentConfig& cfg,
                                                const ModelSetup& s, backend::Ops& ops,
                                                comm::Communicator* tp, InitialWeights weights) {
  auto model = std::make_unique<model::Transformer>(s.hf.spec, ops,
                                                    compute_dtype(cfg.runtime, ops.device()), tp,
                                                    s.lora ? &*s.lora : nullptr, s.bottleneck,
                                                    s.virtual_tokens);
  const bool peft = cfg.peft.method != config::PeftMethod::kNone;
  if (weights == InitialWeights::kBase && !peft) return model;  // the checkpoint holds it all
  if (s.from_hf) {
    log::info("loading {} weights from {}", s.hf.model_type, cfg.model.path);
    checkpoint::load_hf_weights(cfg.model.path, s.hf, *model, ops);
  } else {
    model->init_parameters(cfg.train.seed);
  }
  if (weights == InitialWeights::kBase) return model;
  if (s.from_hf) model->init_method_parameters(cfg.train.seed);  // the base came from model.path
  if (s.virtual_tokens > 0) init_prompt(cfg, s, *model);
  if (!cfg.peft.adapter.empty() && s.lora) {
    log::info("loading the LoRA adapter {}", cfg.peft.adapter);
    peft::load_peft_lora_weights(cfg.peft.adapter, *model, ops);
  }
  if (!cfg.peft.adapter.empty() && s.virtual_tokens > 0) {
    log::info("loading the prompt-tuning adapter {}", cfg.peft.adapter);
    peft::load_peft_prompt_weights(cfg.peft.adapter, *model, ops);
  }
  return model;
}

}  // namespace tailor::trainer
