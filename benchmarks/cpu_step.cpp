// One training step of a LLaMA-style model on the CPU, timed: forward, cross-entropy, backward,
// global grad norm and AdamW, exactly what `tailor train` runs per micro-batch. Random weights and
// random tokens (the speed does not depend on them). Prints one JSON line; the driver
// benchmarks/cpu_step.py runs it interleaved with the PyTorch reference and compares medians.
//
//   tailor_bench_cpu_step --vocab 32000 --hidden 768 --layers 12 --heads 12 --kv-heads 4
//                         --intermediate 2048 --batch 4 --seq 256 --threads 2 --warmup 1 --steps 3
#include <chrono>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_ops.h"
#include "core/rng.h"
#include "model/transformer.h"
#include "optim/data_parallel.h"

int main(int argc, char** argv) {
  using namespace tailor;
  std::int64_t vocab = 32000, hidden = 768, layers = 12, heads = 12, kv_heads = 4,
               intermediate = 2048, batch = 4, seq = 256;
  int threads = 2, warmup = 1, steps = 3;
  std::uint64_t seed = 0;
  CLI::App app{"Time training steps of a LLaMA-style model on the CPU"};
  app.add_option("--vocab", vocab);
  app.add_option("--hidden", hidden);
  app.add_option("--layers", layers);
  app.add_option("--heads", heads);
  app.add_option("--kv-heads", kv_heads);
  app.add_option("--intermediate", intermediate);
  app.add_option("--batch", batch);
  app.add_option("--seq", seq);
  app.add_option("--threads", threads);
  app.add_option("--warmup", warmup);
  app.add_option("--steps", steps);
  app.add_option("--seed", seed);
  CLI11_PARSE(app, argc, argv);

  model::ModelSpec spec;
  spec.vocab_size = vocab;
  spec.hidden_size = hidden;
  spec.num_layers = layers;
  spec.num_heads = heads;
  spec.num_kv_heads = kv_heads;
  spec.head_dim = hidden / heads;
  spec.intermediate_size = intermediate;
  spec.max_position_embeddings = seq;

  backend::CpuOps ops(threads);
  model::Transformer model(spec, ops, DType::kF32);
  model.init_parameters(seed);
  optim::OptimizerSpec ospec;
  ospec.weight_decay = 0.1;
  comm::SelfCommunicator self_dp, self_tp;
  optim::DataParallelOptimizer optimizer(ops, model.params(), self_dp, self_tp, ospec, {});

  const std::int64_t n = batch * seq;
  backend::Buffer ids(DType::kI32, Shape{n}), targets(DType::kI32, Shape{n}),
      positions(DType::kI32, Shape{n});
  const CounterRng rng(seed, 99);
  for (std::int64_t i = 0; i < n; ++i) {
    ids.ptr<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(vocab)));
    positions.ptr<std::int32_t>()[i] = static_cast<std::int32_t>(i % seq);
  }
  for (std::int64_t i = 0; i < n; ++i)
    targets.ptr<std::int32_t>()[i] = (i + 1) % seq == 0 ? ids.ptr<std::int32_t>()[i] : ids.ptr<std::int32_t>()[i + 1];
  model::Batch b{batch, seq, ids.tensor(), targets.tensor(), positions.tensor(), backend::Tensor{}};

  std::vector<double> times;
  double loss = 0;
  for (int s = 0; s < warmup + steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    model.params().zero_grad(ops);
    loss = model.forward_backward(b, 1.0 / static_cast<double>(n)) / static_cast<double>(n);
    (void)optimizer.step(1e-4, 1.0);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= warmup) times.push_back(dt);
    std::fprintf(stderr, "tailor step %d: %.3f s, loss %.4f\n", s, dt, loss);
  }
  nlohmann::ordered_json j;
  j["system"] = "tailor";
  j["blas"] = backend::blas_description();
  j["threads"] = threads;
  j["params"] = spec.num_parameters();
  j["step_times_s"] = times;
  j["tokens_per_step"] = n;
  j["final_loss"] = loss;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
