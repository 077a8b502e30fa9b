// Training steps of a LLaMA-shaped model on any backend, timed: forward, cross-entropy, backward,
// global grad norm and the optimizer, exactly what `tailor train` runs per micro-batch (random
// init, random tokens: speed does not depend on them). Full fine-tuning or LoRA on all linear
// layers. Prints one JSON line: step times, tokens/s, model FLOPs per token, MFU against a given
// peak, and peak device memory. benchmarks/train_step_compare.py runs it beside the Hugging Face
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
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "model/transformer.h"
#include "optim/data_parallel.h"
#include "peft/lora.h"
#include "trainer/device.h"

namespace {

using namespace tailor;

model::ModelSpec preset_spec(const std::string& name) {
  model::ModelSpec s;
  if (name == "llama-3.2-1b") {
    s.vocab_size = 128256;
    s.hidden_size = 2048;
    s.num_layers = 16;
    s.num_heads = 32;
    s.num_kv_heads = 8;
    s.head_dim = 64;
    s.intermediate_size = 8192;
    s.tie_embeddings = true;
    s.rope_theta = 500000.0;
  } else if (name == "llama-3.1-8b") {
    s.vocab_size = 128256;
    s.hidden_size = 4096;
    s.num_layers = 32;
    s.num_heads = 32;
    s.num_kv_heads = 8;
    s.head_dim = 128;
    s.intermediate_size = 14336;
    s.rope_theta = 500000.0;
  } else if (name == "small") {  // a CPU-sized LLaMA: 8 layers, hidden 512, vocab 8192 (30M)
    s.vocab_size = 8192;
    s.hidden_size = 512;
    s.num_layers = 8;
    s.num_heads = 8;
    s.num_kv_heads = 4;
    s.head_dim = 64;
    s.intermediate_size = 1408;
  } else {
    TAILOR_CHECK_USER(name == "tiny", "--preset",
                      "unknown preset {} (llama-3.2-1b, llama-3.1-8b, small, tiny)", name);
    s.vocab_size = 512;
    s.hidden_size = 128;
    s.num_layers = 2;
    s.num_heads = 4;
    s.num_kv_heads = 2;
    s.head_dim = 32;
    s.intermediate_size = 256;
  }
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "tiny", device = "auto", dtype = "auto", recompute = "none";
  std::int64_t batch = 2, seq = 128, lora_rank = 0;
  int threads = 0, warmup = 2, steps = 5;
  double peak_tflops = 989.0;  // H100 SXM dense bf16
  CLI::App app{"Time training steps of a LLaMA-shaped model"};
  app.add_option("--preset", preset, "llama-3.2-1b | llama-3.1-8b | small | tiny");
  app.add_option("--batch", batch, "sequences per step (B)");
  app.add_option("--seq", seq, "tokens per sequence (T)");
  app.add_option("--lora-rank", lora_rank, "LoRA on all linear layers with this rank (0: full)");
  app.add_option("--device", device, "auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--dtype", dtype, "auto | f32 | bf16")->check(CLI::IsMember({"auto", "f32", "bf16"}));
  app.add_option("--threads", threads, "CPU threads (0: all)");
  app.add_option("--recompute", recompute, "activation recomputation: none | selective | full")
      ->check(CLI::IsMember({"none", "selective", "full"}));
  app.add_option("--warmup", warmup);
  app.add_option("--steps", steps);
  app.add_option("--peak-tflops", peak_tflops, "the MFU denominator (989: H100 dense bf16)");
  CLI11_PARSE(app, argc, argv);

  try {
    model::ModelSpec spec = preset_spec(preset);
    spec.max_position_embeddings = std::max<std::int64_t>(seq, 2048);
    config::RuntimeConfig rt;
    rt.device = config::from_name<config::RuntimeDevice>(device).value();
    rt.dtype = config::from_name<config::RuntimeDType>(dtype).value();
    const std::unique_ptr<backend::Ops> ops = trainer::make_ops(rt, threads, "--device");
    const DType compute = trainer::compute_dtype(rt, ops->device());
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
    optim::OptimizerSpec ospec;
    ospec.weight_decay = 0.1;
    comm::SelfCommunicator self_dp, self_tp;
    optim::DataParallelOptimizer optimizer(*ops, model.params(), self_dp, self_tp, ospec, {});

    const std::int64_t n = batch * seq;
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
    j["final_loss"] = loss;
    std::printf("%s\n", j.dump().c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
