// Training steps of a LLaMA-shaped model on any backend, timed: forward, cross-entropy, backward,
// global grad norm and the optimizer, exactly what `tailor train` runs per micro-batch (random
// init, random tokens: speed does not depend on them). Full fine-tuning or LoRA on all linear
// layers. Prints one JSON line: step times, tokens/s, model FLOPs per token, MFU against a given
// peak, peak device memory and the process's peak resident memory (--loss-chunk -1 computes the
// whole [tokens, vocabulary] logits at once, as before chunking, for the comparison). benchmarks/train_step_compare.py runs it beside the Hugging Face
// references on the same machine.
//
//   tailor_bench_train_step --preset llama-3.2-1b --batch 8 --seq 1024 --device cuda
//   tailor_bench_train_step --preset llama-3.2-1b --lora-rank 16 ...
//   tailor_bench_train_step --preset tiny --device cpu        # a smoke run anywhere
//
// FLOPs per token (what MFU counts): 6 N for full fine-tuning and 4 N for LoRA (forward 2 N, the
// backward's input gradients 2 N; frozen weights get no weight gradient; the adapters' own FLOPs
// are not counted), N = all parameters of the base including embeddings (tied: once); plus
// attention scores and values, 4 T d per token per layer forward, halved for causality, times 3
// for forward and backward (both methods): 6 T d L per token, d = heads x head_dim.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <cstdio>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend/profiling_ops.h"
#include "core/rng.h"
#include "model/transformer.h"
#include "optim/data_parallel.h"
#include "peft/lora.h"
#include "trainer/device.h"
#include "step_model.h"

namespace {

using namespace tailor;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "tiny", device = "auto", dtype = "auto", recompute = "none";
  std::int64_t batch = 2, seq = 128, lora_rank = 0, loss_chunk = 0;
  int threads = 0, warmup = 2, steps = 5;
  double peak_tflops = 989.0;  // H100 SXM dense bf16
  CLI::App app{"Time training steps of a LLaMA-shaped model"};
  app.add_option("--preset", preset, "llama-3.2-1b | llama-3.1-8b | gemma3-head | small | tiny");
  app.add_option("--batch", batch, "sequences per step (B)");
  app.add_option("--seq", seq, "tokens per sequence (T)");
  app.add_option("--lora-rank", lora_rank, "LoRA on all linear layers with this rank (0: full)");
  app.add_option("--device", device, "auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--dtype", dtype, "auto | f32 | bf16")->check(CLI::IsMember({"auto", "f32", "bf16"}));
  app.add_option("--threads", threads, "CPU threads (0: all)");
  app.add_option("--recompute", recompute, "activation recomputation: none | selective | full")
      ->check(CLI::IsMember({"none", "selective", "full"}));
  app.add_option("--loss-chunk", loss_chunk,
                 "tokens whose logits are computed at a time (0: auto; -1: all at once)");
  app.add_option("--warmup", warmup);
  app.add_option("--steps", steps);
  app.add_option("--peak-tflops", peak_tflops, "the MFU denominator (989: H100 dense bf16)");
  CLI11_PARSE(app, argc, argv);

  try {
    model::ModelSpec spec = bench::preset_spec(preset);
    spec.max_position_embeddings = std::max<std::int64_t>(seq, 2048);
    config::RuntimeConfig rt;
    rt.device = config::from_name<config::RuntimeDevice>(device).value();
    rt.dtype = config::from_name<config::RuntimeDType>(dtype).value();
    const std::unique_ptr<backend::Ops> inner = trainer::make_ops(rt, threads, "--device");
    const DType compute = trainer::compute_dtype(rt, inner->device());
    // TAILOR_PROFILE=1: every op timed (CUDA events on the GPU), reported per op beside the
    // step-time model.
    const char* profile_env = std::getenv("TAILOR_PROFILE");
    const bool profile = profile_env != nullptr && std::string(profile_env) == "1";
    std::unique_ptr<backend::ProfilingOps> profiler;
    if (profile) profiler = std::make_unique<backend::ProfilingOps>(*inner);
    backend::Ops* ops = profiler ? static_cast<backend::Ops*>(profiler.get()) : inner.get();
    peft::LoraSpec lora;
    lora.rank = lora_rank;
    lora.alpha = 2.0 * static_cast<double>(lora_rank);
    lora.targets = {"all-linear"};
    const peft::Lora lora_method(lora);
    std::vector<const model::Attachment*> methods;
    if (lora_rank > 0) methods.push_back(&lora_method);
    model::Transformer model(spec, *ops, compute, nullptr, methods);
    model.init_parameters(0);
    model.set_recompute(recompute == "full"        ? model::Recompute::kFull
                        : recompute == "selective" ? model::Recompute::kSelective
                                                   : model::Recompute::kNone);
    const std::int64_t n = batch * seq;
    model.set_loss_chunk_tokens(loss_chunk < 0 ? n : loss_chunk);
    optim::OptimizerSpec ospec;
    ospec.weight_decay = 0.1;
    comm::SelfCommunicator self_dp, self_tp;
    optim::DataParallelOptimizer optimizer(*ops, model.params(), self_dp, self_tp, ospec, {});

    std::vector<std::int32_t> ids(static_cast<std::size_t>(n)), targets(ids.size()),
        positions(ids.size());
    const CounterRng rng(1, 99);
    for (std::int64_t i = 0; i < n; ++i) {
      ids[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(
          rng.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(spec.vocab_size)));
      positions[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % seq);
    }
    for (std::int64_t i = 0; i < n; ++i)
      targets[static_cast<std::size_t>(i)] =
          (i + 1) % seq == 0 ? -100 : ids[static_cast<std::size_t>(i + 1)];
    const auto host = [&](std::vector<std::int32_t>& v) {
      return backend::Tensor{v.data(), DType::kI32, Shape{n}};
    };
    const model::Batch b{batch, seq, host(ids), host(targets), host(positions), backend::Tensor{}};

    std::vector<double> times;
    double loss = 0.0;
    for (int s = 0; s < warmup + steps; ++s) {
      if (profiler && s == warmup) profiler->clear();  // the measured steps only
      ops->synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      model.params().zero_grad(*ops);
      loss = model.forward_backward(b, 1.0 / static_cast<double>(n)) / static_cast<double>(n);
      (void)optimizer.step(1e-5, 1.0);
      ops->synchronize();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s >= warmup) times.push_back(dt);
      std::fprintf(stderr, "tailor step %d: %.4f s, loss %.4f\n", s, dt, loss);
    }
    const double params = static_cast<double>(spec.num_parameters());
    const double attn = 6.0 * static_cast<double>(seq) *
                        static_cast<double>(spec.num_heads * spec.head_dim) *
                        static_cast<double>(spec.num_layers);
    const double flops_per_token = (lora_rank > 0 ? 4.0 : 6.0) * params + attn;
    const double step_s = median(times);
    const double tokens_per_s = step_s > 0 ? static_cast<double>(n) / step_s : 0.0;
    nlohmann::ordered_json j;
    j["system"] = "tailor";
    j["method"] = lora_rank > 0 ? "lora" : "full";
    j["preset"] = preset;
    j["backend"] = ops->describe();
    j["dtype"] = std::string(dtype_name(compute));
    j["params"] = spec.num_parameters();
    j["trainable_params"] = model.params().trainable_numel();
    j["batch"] = batch;
    j["seq"] = seq;
    j["lora_rank"] = lora_rank;
    j["recompute"] = recompute;
    j["loss_chunk_tokens"] = std::min(n, model.loss_chunk_rows());
    j["activation_gib"] = static_cast<double>(model.activation_bytes()) / (1024.0 * 1024.0 * 1024.0);
    j["step_times_s"] = times;
    j["step_s"] = step_s;
    j["tokens_per_s"] = tokens_per_s;
    j["flops_per_token"] = flops_per_token;
    j["mfu"] = tokens_per_s * flops_per_token / (peak_tflops * 1e12);
    const backend::DeviceMemory* memory = ops->device_memory();
    j["peak_memory_gib"] = memory != nullptr ? static_cast<double>(memory->peak_bytes()) /
                                                   (1024.0 * 1024.0 * 1024.0)
                                             : 0.0;
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);  // ru_maxrss in KiB on Linux
    j["max_rss_gib"] = static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
    j["final_loss"] = loss;
    // The step-time model at the GPU's ceilings (bf16; meaningful for the CUDA backend), and with
    // TAILOR_PROFILE=1 the measured time per backend op beside the model's.
    bench::StepShape shape;
    shape.batch = batch;
    shape.seq = seq;
    shape.lora_rank = lora_rank;
    const std::vector<bench::ModeledOp> modeled = bench::model_step(spec, shape);
    std::fprintf(stderr, "\nstep-time model (H100 ceilings, bf16):\n");
    j["step_model"] = nlohmann::json::parse(
        bench::print_step_model(stderr, modeled, shape, bench::Ceilings{}));
    if (profiler) {
      const auto measured = profiler->report();
      std::map<std::string, double> model_ms;
      for (const bench::ModeledOp& op : modeled)
        model_ms[op.kind] += op.count * op.seconds(bench::Ceilings{}) * 1e3;
      std::fprintf(stderr, "\nTAILOR_PROFILE: time per backend op, per step (%d steps)\n", steps);
      std::fprintf(stderr, "%-24s %8s %12s %12s\n", "op", "calls", "measured ms", "model ms");
      std::vector<std::pair<std::string, backend::OpTime>> rows(measured.begin(), measured.end());
      std::sort(rows.begin(), rows.end(),
                [](const auto& x, const auto& y) { return x.second.seconds > y.second.seconds; });
      const double per = 1.0 / std::max(steps, 1);
      for (const auto& [kind, t] : rows) {
        std::fprintf(stderr, "%-24s %8.0f %12.3f %12.3f\n", kind.c_str(),
                     static_cast<double>(t.calls) * per, t.seconds * per * 1e3, model_ms[kind]);
        j["profile"][kind] = {{"calls_per_step", static_cast<double>(t.calls) * per},
                              {"ms_per_step", t.seconds * per * 1e3},
                              {"model_ms", model_ms[kind]}};
      }
    }
    std::printf("%s\n", j.dump().c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
