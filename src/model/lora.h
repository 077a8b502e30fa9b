// LoRA (Hu et al., 2021): a frozen linear layer W [out, in] gains a trainable low-rank update,
//   y = x W^T + s * (x A^T) B^T,   A [r, in] (Kaiming-uniform), B [out, r] (zero), s = alpha / r
// (alpha / sqrt(r) with rsLoRA), so training starts exactly at the base model. Adapters attach by
// module name (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all-linear), as
// PEFT does; parameter names are `<linear>.lora_A.weight` / `<linear>.lora_B.weight`.
//
// Tensor parallelism (ARCHITECTURE.md): for a column-parallel W, A is replicated and B split on
// the output dimension; for a row-parallel W, A is split on the input dimension and B replicated,
// and the LoRA partial sum joins the base output before its all-reduce. The replicated factor's
// gradient is a partial sum on each rank and is all-reduced over the TP group after backward.
//
// Dropout (training batches only, as PEFT): y = x W^T + s (dropout(x) A^T) B^T, a separate mask
// per adapted linear. The mask is drawn from Philox keyed by (train.seed, step, linear name) at
// the element's global index (token index within the step's global batch x the input's global
// width + column), so it is the same on every TP rank for a replicated input, a TP shard draws
// its slice of the TP=1 mask, and neither the thread count nor the micro-batch split changes it.
// Backward recomputes the mask instead of storing the dropped input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tailor::model {

struct LoraSpec {
  std::int64_t rank = 8;
  double alpha = 16.0;
  bool rslora = false;
  double dropout = 0.0;  // probability of zeroing an element of the adapter's input (training)
  std::vector<std::string> targets = {"q_proj", "v_proj"};  // or {"all-linear"}

  [[nodiscard]] double scale() const;
  [[nodiscard]] bool targets_module(std::string_view module) const;
};

}  // namespace tailor::model
