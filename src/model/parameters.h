// Named parameters with their gradients, in one flat buffer per kind.
//
// Every parameter has its canonical Hugging Face name (`model.layers.3.self_attn.q_proj.weight`),
// which is how optimizers, weight-decay groups, checkpoints, PEFT targets and exports address it:
// names over indices. Shapes are PyTorch's: a linear weight is [out, in].
//
// Under tensor parallelism a rank holds a shard: `shape` is the local shape, `global_shape` the
// full tensor's, and the shard is the slab [shard_offset, shard_offset + shape[shard_dim]) of
// dimension shard_dim (-1: the rank holds the whole tensor). `replicas` counts the TP ranks that
// hold exactly the same data (T for a replicated norm weight, T / num_kv_heads for a replicated KV
// head): the global grad norm counts such a tensor once.
//
// Values of all parameters live in one flat buffer: frozen parameters first, then the trainable
// ones (each group in the order added), so the trainable values are one contiguous range. Only
// trainable parameters have gradients, in a second flat buffer laid out like that range, so
// data-parallel reduction and ZeRO sharding work on contiguous ranges and a frozen base model
// costs no gradient memory.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <string>

#include "backend/ops.h"
#include "backend/tensor.h"

namespace tailor::model {

// What a parameter is, which decides its initialization and weight decay (never its name).
enum class ParamRole : std::uint8_t {
  // The base model's.
  kWeight,         // a projection matrix or position table: N(0, init_std), decayed
  kVocabTable,     // token embedding or LM head: N(0, init_std) on real vocabulary rows, zero on
                   // padding rows, decayed
  kNormWeight,     // RMSNorm / LayerNorm scale: 1, not decayed
  kBias,           // 0, not decayed
  // A PEFT method's (not base weights: never loaded from or exported into the base model).
  kAdapterWeight,  // a method's input-side matrix or prompt table: N(0, init_std), decayed
  kAdapterBias,    // 0, not decayed
  kAdapterOut,     // a method's output-side matrix (LoRA B, bottleneck up-projection): 0, so the
                   // method starts as the identity; decayed
  kLoraA,          // LoRA A: Kaiming-uniform U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PEFT; decayed
  kAdapterScale,   // a method's multiplicative vector (IA3's l): 1, so the method starts as the
                   // identity; not decayed (a scale, like a norm weight)
};
// Weight decay applies to matrices and embeddings, not to norms, biases and scales.
[[nodiscard]] constexpr bool decays(ParamRole r) noexcept {
  return r != ParamRole::kNormWeight && r != ParamRole::kBias && r != ParamRole::kAdapterBias &&
         r != ParamRole::kAdapterScale;
}
// Added by a PEFT method rather than part of the base model.
[[nodiscard]] constexpr bool is_method_param(ParamRole r) noexcept {
  return r >= ParamRole::kAdapterWeight;
}

// Ranks whose partial gradients of a parameter must be summed after backward.
enum class GradSum : std::uint8_t {
  kNone,            // the gradient is complete on this rank
  kTensorParallel,  // summed over the TP group (a LoRA factor replicated beside a split one)
  kKvReplicas,      // summed over the ranks sharing a KV head
};

struct ShardSpec {
  Shape global_shape;          // empty: same as the local shape
  int shard_dim = -1;          // -1: not split
  std::int64_t shard_offset = 0;
  int replicas = 1;            // TP ranks holding identical data
  GradSum grad_sum = GradSum::kNone;
};

struct Parameter {
  std::string name;
  Shape shape;                 // local shape
  Shape global_shape;
  int shard_dim = -1;
  std::int64_t shard_offset = 0;
  int replicas = 1;
  GradSum grad_sum = GradSum::kNone;
  ParamRole role = ParamRole::kWeight;
  std::string method;          // the PEFT method that added it (its peft.method: "lora"); empty
                               // for the base model's (see attachment.h)
  bool decay = true;           // decays(role)
  bool trainable = true;
  std::int64_t offset = 0;     // element offset in the flat value buffer
  backend::Tensor value;       // view into the flat value buffer
  backend::Tensor grad;        // view into the flat gradient buffer (absent when not trainable)

  // Element index in the global tensor of local element i (row-major).
  [[nodiscard]] std::int64_t global_index(std::int64_t i) const noexcept;
};

class ParameterSet {
 public:
  // Declares a parameter; storage comes with allocate(). Names must be unique.
  Parameter& add(std::string name, Shape shape, ParamRole role, ShardSpec shard = {});
  // Marks a parameter frozen (no gradient, no optimizer state). Before allocate().
  void freeze(Parameter& p);
  // Creates the flat value buffer (dtype) and gradient buffer (accum_dtype(dtype): f32 for bf16
  // weights), zero-filled, on `ops`'s device, and points every parameter at its slice. Called
  // once, after the last add() / freeze().
  void allocate(DType dtype, const backend::Ops& ops);

  [[nodiscard]] std::deque<Parameter>& all() noexcept { return params_; }
  [[nodiscard]] const std::deque<Parameter>& all() const noexcept { return params_; }
  [[nodiscard]] Parameter* find(const std::string& name) noexcept;
  [[nodiscard]] const Parameter* find(const std::string& name) const noexcept;
  [[nodiscard]] Parameter& at(const std::string& name);

  // Local elements (this rank's shards).
  [[nodiscard]] std::int64_t numel() const noexcept { return numel_; }
  [[nodiscard]] std::int64_t trainable_numel() const noexcept { return numel_ - trainable_begin_; }
  [[nodiscard]] backend::Tensor flat_values() const noexcept { return values_.tensor(); }
  // The trainable range of the values, and the gradients laid out like it; an element's offset
  // in both is p.offset - trainable_begin().
  [[nodiscard]] backend::Tensor trainable_values() const {
    return values_.tensor().flat_slice(trainable_begin_, numel_);
  }
  [[nodiscard]] std::int64_t trainable_begin() const noexcept { return trainable_begin_; }
  [[nodiscard]] backend::Tensor flat_grads() const noexcept { return grads_.tensor(); }
  void zero_grad(backend::Ops& ops);

 private:
  std::deque<Parameter> params_;  // deque: references stay valid as parameters are added
  std::unordered_map<std::string, Parameter*> by_name_;  // every lookup O(1): a model of L
                                                         // layers builds in O(L)
  std::int64_t numel_ = 0;
  std::int64_t trainable_begin_ = 0;
  backend::Buffer values_, grads_;
};

}  // namespace tailor::model
