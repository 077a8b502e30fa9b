// LoRA (Hu et al., 2021): a frozen linear layer W [out, in] gains a trainable low-rank update,
//   y = x W^T + s * (x A^T) B^T,   A [r, in] (Kaiming-uniform), B [out, r] (zero), s = alpha / r
// (alpha / sqrt(r) with rsLoRA), so training starts exactly at the base model. Adapters attach by
// module name (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all-linear), as
// PEFT does; parameter names are `<linear>.lora_A.weight` / `<linear>.lora_B.weight`.
//
// Tensor parallelism (ARCHITECTURE.md): for a column-parallel W, A is replicated and B split on
// the output dimension; for a row-parallel W, A is split on the input dimension and B replicated,
// and the LoRA partial sum joins the base output before its all-reduce (the layer adds every
// linear adapter before it). The replicated factor's gradient is a partial sum on each rank and
// is all-reduced over the TP group after backward (GradSum::kTensorParallel); B of a KV head
// shared by several ranks is summed over them (GradSum::kKvReplicas).
//
// Dropout (training batches only, as PEFT): y = x W^T + s (dropout(x) A^T) B^T, a separate mask
// per adapted linear. The mask is drawn from Philox keyed by (train.seed, step, linear name) at
// the element's global index (token index within the step's global batch x the input's global
// width + column), so it is the same on every TP rank for a replicated input, a TP shard draws
// its slice of the TP=1 mask, and neither the thread count nor the micro-batch split changes it.
// Backward recomputes the mask instead of storing the dropped input.
//
// DoRA (Liu et al., 2024; peft.use_dora, peft's LoraConfig(use_dora=True)): the LoRA term plus
// the linear's output hook (model/adapter.h), y = c (z - b) + b with z = x W^T + b + s (x A^T) B^T
// and c = m / ||W + s B A|| per output row (the norm over the input dimension, a constant in
// backward as peft's: A and B get gradients through c s (x A^T) B^T only, the magnitude m
// `<linear>.lora_magnitude_vector` [out] its own). m starts as ||W|| (B = 0). Under TP the norm of
// a row-parallel W's rows sums the squares of every rank's columns; m follows the output (split
// with a column-parallel W's rows, whole beside a row-parallel one). No dropout with DoRA. The
// merge is c (W + s B A), the bias unchanged.
//
// Files: adapter_config.json (peft_type LORA) + adapter_model.safetensors with
// `base_model.model.<linear>.lora_A.weight` [r, in] / `lora_B.weight` [out, r] (DoRA: and
// `lora_magnitude_vector` [out], use_dora true), as peft saves
// them (LLaMA-style families; GPT-2's fused c_attn has no PEFT layout Tailor writes).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "peft/method.h"

namespace tailor::config {
struct PeftConfig;
}

namespace tailor::peft {

struct LoraSpec {
  std::int64_t rank = 8;
  double alpha = 16.0;
  bool rslora = false;
  bool use_dora = false;  // DoRA: a magnitude per output row times the normalized W + s B A
  double dropout = 0.0;  // probability of zeroing an element of the adapter's input (training)
  std::vector<std::string> targets = {"q_proj", "v_proj"};  // or {"all-linear"}

  [[nodiscard]] double scale() const;
  [[nodiscard]] bool targets_module(std::string_view module) const;
};

// Reads adapter_config.json: peft_type LORA, r, lora_alpha, target_modules, use_rslora,
// lora_dropout (used when training continues; not with use_dora, whose dropout Tailor does not
// compute: a warning, and none), use_dora. Other settings that change the computation (bias
// != none, fan_in_fan_out, rank/alpha patterns, modules_to_save) are refused. UserError
// naming the file.
[[nodiscard]] LoraSpec read_peft_lora_config(const std::string& dir);

class Lora final : public Method {
 public:
  static constexpr std::string_view kName = "lora";
  static constexpr std::string_view kDisplayName = "LoRA";
  static constexpr std::string_view kPeftType = "LORA";

  explicit Lora(LoraSpec spec) : spec_(std::move(spec)) {}
  // peft.rank, alpha, use_rslora, dropout, target_modules; or peft.adapter's adapter_config.json.
  [[nodiscard]] static std::shared_ptr<const Method> from_config(const config::PeftConfig& peft,
                                                                 const model::ModelSpec& spec);
  [[nodiscard]] static std::shared_ptr<const Method> from_adapter(const std::string& dir,
                                                                  const model::ModelSpec& spec);
  [[nodiscard]] const LoraSpec& spec() const noexcept { return spec_; }

  [[nodiscard]] std::string_view name() const override { return kName; }
  [[nodiscard]] std::unique_ptr<model::LinearAdapter> attach_linear(
      model::ParameterSet& params, const model::LinearSite& site) const override;

  [[nodiscard]] std::string_view display_name() const override { return kDisplayName; }
  // DoRA: each magnitude starts as the norms of its weight's rows, ||W + s B A|| (B = 0: ||W||),
  // as peft's; nothing for plain LoRA.
  void initialize(model::Transformer& model, const InitContext& ctx) const override;
  // Copies the adapter's tensors into the LoRA factors (each TP rank its shard).
  void load_adapter(const std::string& dir, model::Transformer& model,
                    backend::Ops& ops) const override;
  [[nodiscard]] std::string summary(const model::Transformer& model,
                                    comm::Communicator& tp) const override;
  [[nodiscard]] std::string_view export_note() const override { return ", LoRA merged"; }
  // The PEFT adapter, when the family has a PEFT layout (the merged model is exported anyway).
  void export_adapter(const std::string& dir, const ExportContext& ctx) const override;
  // adapter_config.json + adapter_model.safetensors (dir replaced atomically); a UserError when
  // the family has no PEFT layout Tailor writes. TP = 1.
  void save_peft(const std::string& dir, const ExportContext& ctx) const override;

 private:
  LoraSpec spec_;
};

}  // namespace tailor::peft
