// IA3 (Liu et al., 2022, "(IA)^3"): a frozen linear y = x W^T + b gains a learned vector l that
// rescales it, as the peft library does:
//   on its output (attention k, v, ...):  y = (x W^T + b) * l,   l [out]   (bias included)
//   on its input (feed-forward modules):  y = (x * l) W^T + b,   l [in]
// l starts at 1, so training starts exactly at the base model. Targets and feed-forward modules
// default to peft's per family (model::Family::peft_ia3_targets: LLaMA and Mistral k_proj, v_proj
// and down_proj, Qwen2 q_proj instead of k_proj; down_proj feed-forward), parameter names are
// `<linear>.ia3_l`. Both forms are the linear's hooks of model/adapter.h (output / input), computed
// with Ops::scale_columns and its backward.
//
// Tensor parallelism: an output l follows the output it scales — split like a column-parallel
// W's rows (summed over the replicas of a shared KV head), whole on every rank of a row-parallel
// W, whose output hook sees the all-reduced output (its gradient is then complete everywhere). An
// input l follows the input: whole for a column-parallel W, whose gradient sum_n dx' * x is a
// partial sum over the ranks' output rows (all-reduced after backward), split like a
// row-parallel W's columns.
//
// Merge (export --format hf): W's rows (output) or columns (input) times l, and an output l also
// scales the bias, as peft's merge. Files: adapter_config.json (peft_type IA3, target_modules,
// feedforward_modules) + adapter_model.safetensors with `base_model.model.<linear>.ia3_l` of
// shape [out, 1] (output) or [1, in] (input), as peft saves them (LLaMA-style families).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "peft/method.h"

namespace tailor::config {
struct PeftConfig;
}

namespace tailor::peft {

struct Ia3Spec {
  std::vector<std::string> targets;      // module names, or {"all-linear"}
  std::vector<std::string> feedforward;  // targets scaled on their input

  [[nodiscard]] bool targets_module(std::string_view module) const;
  [[nodiscard]] bool feedforward_module(std::string_view module) const;
};

// Reads adapter_config.json: peft_type IA3, target_modules, feedforward_modules (null: the
// family's default); fan_in_fan_out and modules_to_save are refused. UserError naming the file.
[[nodiscard]] Ia3Spec read_peft_ia3_config(const std::string& dir, const model::ModelSpec& spec);

class Ia3 final : public Method {
 public:
  static constexpr std::string_view kName = "ia3";
  static constexpr std::string_view kDisplayName = "IA3";
  static constexpr std::string_view kPeftType = "IA3";

  explicit Ia3(Ia3Spec spec) : spec_(std::move(spec)) {}
  // peft.target_modules and peft.feedforward_modules (empty: the family's), or peft.adapter's
  // adapter_config.json.
  [[nodiscard]] static std::shared_ptr<const Method> from_config(const config::PeftConfig& peft,
                                                                 const model::ModelSpec& spec);
  [[nodiscard]] static std::shared_ptr<const Method> from_adapter(const std::string& dir,
                                                                  const model::ModelSpec& spec);
  [[nodiscard]] const Ia3Spec& spec() const noexcept { return spec_; }

  [[nodiscard]] std::string_view name() const override { return kName; }
  [[nodiscard]] std::unique_ptr<model::LinearAdapter> attach_linear(
      model::ParameterSet& params, const model::LinearSite& site) const override;

  [[nodiscard]] std::string_view display_name() const override { return kDisplayName; }
  void load_adapter(const std::string& dir, model::Transformer& model,
                    backend::Ops& ops) const override;
  [[nodiscard]] std::string summary(const model::Transformer& model,
                                    comm::Communicator& tp) const override;
  [[nodiscard]] std::string_view export_note() const override { return ", IA3 merged"; }
  void export_adapter(const std::string& dir, const ExportContext& ctx) const override;
  void save_peft(const std::string& dir, const ExportContext& ctx) const override;

 private:
  Ia3Spec spec_;
};

}  // namespace tailor::peft
