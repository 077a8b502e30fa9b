#include "model/parallel_layers.h"

#include "model/tp_mappings.h"

namespace tailor::model {
namespace {

// "model.layers.3.self_attn.q_proj" -> "q_proj": the module name PEFT's target_modules use.
std::string module_name(const std::string& linear) {
  return linear.substr(linear.rfind('.') + 1);
}

}  // namespace

ParallelLinear column_parallel_linear(ParameterSet& params, const TpLayout& tp, int layer,
                                      const std::string& name, std::int64_t out,
                                      std::int64_t out_begin, std::int64_t out_global,
                                      std::int64_t in, bool bias, int replicas) {
  // `replicas` ranks hold the same rows (a KV head shared by several ranks); each computes a
  // partial gradient from its own query heads, summed over those ranks after backward.
  const bool split = out != out_global;
  const GradSum sum = replicas > 1 ? GradSum::kKvReplicas : GradSum::kNone;
  ParallelLinear l;
  l.site = {name, module_name(name), layer, Parallel::kColumn, out, out_begin, out_global,
            in, 0, in, replicas, tp.size};
  l.weight = &params.add(name + ".weight", Shape{out, in}, ParamRole::kWeight,
                         {Shape{out_global, in}, split ? 0 : -1, out_begin, replicas, sum});
  if (bias)
    l.bias = &params.add(name + ".bias", Shape{out}, ParamRole::kBias,
                         {Shape{out_global}, split ? 0 : -1, out_begin, replicas, sum});
  return l;
}

ParallelLinear row_parallel_linear(ParameterSet& params, const TpLayout& tp, int layer,
                                   const std::string& name, std::int64_t out, std::int64_t in,
                                   std::int64_t in_begin, std::int64_t in_global, bool bias) {
  const bool split = in != in_global;
  ParallelLinear l;
  l.site = {name, module_name(name), layer, Parallel::kRow, out, 0, out,
            in, in_begin, in_global, 1, tp.size};
  l.weight = &params.add(name + ".weight", Shape{out, in}, ParamRole::kWeight,
                         {Shape{out, in_global}, split ? 1 : -1, in_begin, split ? 1 : tp.size});
  // The bias is added once, after the all-reduce: replicated.
  if (bias)
    l.bias = &params.add(name + ".bias", Shape{out}, ParamRole::kBias, {Shape{out}, -1, 0, tp.size});
  return l;
}

void vocab_parallel_embedding(backend::Ops& ops, comm::Communicator* tp, const Parameter& table,
                              const backend::Tensor& ids, std::int64_t vocab_begin,
                              const backend::Tensor& out) {
  ops.embedding_forward(table.value, ids, vocab_begin, out);
  tp::reduce_from_region_forward(tp, out);
}

}  // namespace tailor::model
