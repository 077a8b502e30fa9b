#include "trainer/export.h"

#include "core/logging.h"
#include "data/byte_tokenizer.h"

namespace tailor::trainer {

void export_hf(const std::string& out_dir, const ModelSetup& setup, const model::Transformer& model,
               backend::Ops& ops, const std::string& base_dir, bool bf16, const char* what) {
  const checkpoint::HfModelConfig& hf = setup.hf;
  // Linear adapters are merged into the exported weights (hf_model.h). The tokenizer goes with the
  // model: the base's files copied, or the byte tokenizer's written, so that `score`, `generate`
  // and transformers load the export on its own.
  const std::map<std::string, std::string> tokenizer_files =
      setup.tokenizer_dir.empty()
          ? data::ByteTokenizer::hf_files(hf.spec.max_position_embeddings)
          : std::map<std::string, std::string>{};
  checkpoint::save_hf_model(out_dir, hf, model, ops, setup.tokenizer_dir, bf16, tokenizer_files);
  const peft::Method* method = setup.method.get();
  log::info("exported {} ({}{}) to {}", what, hf.model_type,
            method != nullptr ? method->export_note() : "", out_dir);
  // The adapter applies to the base it was trained on: model.path (a config-defined base has no
  // directory of its own; out_dir holds the model, merged or unchanged).
  if (method != nullptr) method->export_adapter(out_dir + "/adapter", {hf, model, ops, base_dir});
}

}  // namespace tailor::trainer
