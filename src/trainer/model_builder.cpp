#include "trainer/model_builder.h"

#include "core/logging.h"
#include "peft/registry.h"
#include "trainer/checkpointing.h"
#include "trainer/device.h"
#include "trainer/from_config.h"
#include "trainer/prepare.h"

namespace tailor::trainer {

std::vector<const model::Attachment*> ModelSetup::attachments() const {
  if (method == nullptr) return {};
  return {method.get()};
}

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
  if (cfg.data.tokenizer == config::TokenizerKind::kModel) s.tokenizer_dir = cfg.model.path;
  s.method = peft::method_from_config(cfg.peft, s.hf.spec);
  return s;
}

std::unique_ptr<model::Transformer> build_model(const config::ExperimentConfig& cfg,
                                                const ModelSetup& s, backend::Ops& ops,
                                                comm::Communicator* tp, InitialWeights weights) {
  auto model = std::make_unique<model::Transformer>(
      s.hf.spec, ops, compute_dtype(cfg.runtime, ops.device()), tp, s.attachments());
  const bool peft = s.method != nullptr;
  if (weights == InitialWeights::kBase && !peft) return model;  // the checkpoint holds it all
  if (s.from_hf) {
    log::info("loading {} weights from {}", s.hf.model_type, cfg.model.path);
    checkpoint::load_hf_weights(cfg.model.path, s.hf, *model, ops);
  } else {
    model->init_parameters(cfg.train.seed);
  }
  if (weights == InitialWeights::kBase || !peft) return model;
  if (s.from_hf) model->init_method_parameters(cfg.train.seed);  // the base came from model.path
  // Starting values beyond the init by role (prompt tuning's text init, with the run's tokenizer).
  std::unique_ptr<data::Tokenizer> tokenizer;
  const peft::InitContext init{[&](const std::string& text) {
                                 if (!tokenizer) tokenizer = tokenizer_from_config(cfg);
                                 return tokenizer->encode(text);
                               },
                               cfg.source, &ops, tp};
  s.method->initialize(*model, init);
  if (!cfg.peft.adapter.empty()) {
    log::info("loading the {} adapter {}", s.method->display_name(), cfg.peft.adapter);
    s.method->load_adapter(cfg.peft.adapter, *model, ops);
  }
  return model;
}

}  // namespace tailor::trainer
