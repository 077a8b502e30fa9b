// Method: one parameter-efficient fine-tuning method (LoRA, bottleneck adapters, prompt tuning),
// as one object per run. Built from the config's peft.* keys or from an adapter directory by the
// registry (registry.h), it is attached to the Transformer it trains — as a model::Attachment it
// adds its parameters at the sites the model enumerates, with its own roles (init follows the
// role) and tensor-parallel rule, and returns the adapters that compute its forward and backward
// contributions and merge into the base — and it answers everything else that is
// method-specific: starting values beyond the init by role, loading and writing its adapter files
// (adapter_config.json + adapter_model.safetensors, as the `peft` library does, or Tailor's layout
// where peft has none) and its line in the run log. Callers never branch on which method it is.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/ops.h"
#include "checkpoint/hf_model.h"
#include "comm/communicator.h"
#include "model/attachment.h"
#include "model/transformer.h"

namespace tailor::peft {

// What an export writes from: a single-rank model (TP = 1) built with the method.
struct ExportContext {
  const checkpoint::HfModelConfig& hf;  // the base's family and config.json
  const model::Transformer& model;
  backend::Ops& ops;
  std::string base_dir;                 // recorded as the adapter's base model ("" for a
                                        // config-defined base, which has no directory)
};

// What initialize() may use beyond the init by role.
struct InitContext {
  // The run's tokenizer (built on first use).
  std::function<std::vector<std::int32_t>(const std::string&)> tokenize;
  std::string source;  // the config file, which user errors name
  backend::Ops* ops = nullptr;         // the model's
  comm::Communicator* tp = nullptr;    // its tensor-parallel group (nullptr: one rank)
};

class Method : public model::Attachment {
 public:
  // How log lines name it ("loading the LoRA adapter DIR").
  [[nodiscard]] virtual std::string_view display_name() const = 0;
  // Virtual-token slots that open every document (prompt tuning), 0 otherwise: the data packing
  // reserves them before any model exists.
  [[nodiscard]] virtual std::int64_t virtual_tokens() const { return 0; }
  // Starting values beyond the init by role, once the base weights are in place (prompt tuning's
  // text init).
  virtual void initialize(model::Transformer& model, const InitContext& ctx) const {
    (void)model, (void)ctx;
  }
  // Loads an adapter directory (peft.adapter, --adapter) into this method's parameters of
  // `model`, which was built with it (any TP layout: each rank reads its shard). A missing,
  // misshaped or extra tensor is a UserError naming the file.
  virtual void load_adapter(const std::string& dir, model::Transformer& model,
                            backend::Ops& ops) const;
  // The run log's line ("peft: LoRA r=8 alpha=16 on ..."). Collective over `tp` (the host TP
  // group): every rank calls it.
  [[nodiscard]] virtual std::string summary(const model::Transformer& model,
                                            comm::Communicator& tp) const = 0;
  // What the Hugging Face export's log line adds after the family: ", LoRA merged" when the
  // adapters merge into the exported weights (through model::LinearAdapter::merge_into).
  [[nodiscard]] virtual std::string_view export_note() const { return ""; }
  // Writes the adapter beside a Hugging Face export (dir is its adapter/ folder) and logs it; a
  // method may write nothing (LoRA on a family without a PEFT layout).
  virtual void export_adapter(const std::string& dir, const ExportContext& ctx) const = 0;
  // `export --format peft`: the adapter alone, in the peft library's format, logged. Only for the
  // methods whose registry row says they have that format.
  virtual void save_peft(const std::string& dir, const ExportContext& ctx) const;
};

}  // namespace tailor::peft
