// Megatron's tensor-parallel layers, built on the mappings of tp_mappings.h.
//
// Column-parallel linear, Y = X A with A = [A_1 ... A_T] split by output columns: rank i holds
// rows [out_begin, out_begin + out) of the [out_global, in] weight (PyTorch layout) and computes
// Y_i = X A_i from the replicated X; its input gradient is a partial sum (copy_to_region's
// backward). Several ranks may hold the same rows (a KV head shared by T / num_kv_heads ranks):
// their weight gradients are partial sums over those replicas.
// Row-parallel linear, Y = sum_i X_i B_i with B split by input rows: rank i holds columns
// [in_begin, in_begin + in) of the [out, in_global] weight and produces a partial sum of Y that
// reduce_from_region's forward completes; the bias is replicated and added once, after it.
// Vocab-parallel embedding: rank i holds vocabulary rows [vocab_begin, vocab_begin + V/T) and
// fills the rows of the ids it holds (zeros elsewhere); the sum over the group is the lookup.
// The vocab-parallel LM head is a column-parallel linear over the vocabulary (transformer.cpp),
// whose cross-entropy reduces per-token statistics instead of gathering the logits.
#pragma once

#include <cstdint>
#include <string>

#include "backend/ops.h"
#include "comm/communicator.h"
#include "model/adapter.h"
#include "model/model_spec.h"
#include "model/parameters.h"

namespace tailor::model {

// A linear's shard, and the site PEFT methods attach to.
struct ParallelLinear {
  Parameter* weight = nullptr;  // [out, in], this rank's shard
  Parameter* bias = nullptr;    // may be null
  LinearSite site;              // name, module, TP split
};

// `name`: the canonical name of the linear ("model.layers.3.self_attn.q_proj"); `layer`: its
// layer index.
[[nodiscard]] ParallelLinear column_parallel_linear(ParameterSet& params, const TpLayout& tp,
                                                    int layer, const std::string& name,
                                                    std::int64_t out, std::int64_t out_begin,
                                                    std::int64_t out_global, std::int64_t in,
                                                    bool bias, int replicas);
[[nodiscard]] ParallelLinear row_parallel_linear(ParameterSet& params, const TpLayout& tp,
                                                 int layer, const std::string& name,
                                                 std::int64_t out, std::int64_t in,
                                                 std::int64_t in_begin, std::int64_t in_global,
                                                 bool bias);

// out [N, D] = the rows of `ids` [N] in the vocab-parallel `table` [V/T, D] (local rows start at
// global row vocab_begin), summed over the TP group.
void vocab_parallel_embedding(backend::Ops& ops, comm::Communicator* tp, const Parameter& table,
                              const backend::Tensor& ids, std::int64_t vocab_begin,
                              const backend::Tensor& out);

}  // namespace tailor::model
