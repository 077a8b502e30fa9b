// The step-time model on paper (step_model.h): per op of a training step, FLOPs, bytes and the
// time at the card's ceilings, for full fine-tuning and LoRA, beside a reference figure given on
// the command line. Runs anywhere (no GPU needed); the same table opens tailor_bench_train_step's
// output on a GPU, where TAILOR_PROFILE=1 adds the measured time per op.
//
//   tailor_bench_step_model --preset llama-3.2-1b --batch 8 --seq 1024
//       --reference-full 63718 --reference-lora 54691     (HF + torch.compile, H100)
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "step_model.h"

int main(int argc, char** argv) {
  using namespace tailor;
  std::string preset = "llama-3.2-1b";
  bench::StepShape shape;
  bench::Ceilings c;
  std::int64_t lora_rank = 16;
  double reference_full = 0, reference_lora = 0;
  CLI::App app{"Model one training step's time at the GPU's ceilings"};
  app.add_option("--preset", preset, "llama-3.2-1b | llama-3.1-8b | gemma3-head | small | tiny");
  app.add_option("--batch", shape.batch, "sequences per step (B)");
  app.add_option("--seq", shape.seq, "tokens per sequence (T)");
  app.add_option("--lora-rank", lora_rank, "LoRA rank of the LoRA row (all linear layers)");
  app.add_flag("--bf16-moments", shape.bf16_moments, "optimizer.moments: bf16");
  app.add_option("--gemm-tflops", c.gemm_tflops, "bf16 GEMM ceiling (800: H100, measured)");
  app.add_option("--attention-tflops", c.attention_tflops, "fused attention (assumed 400)");
  app.add_option("--memory-tbs", c.memory_tbs, "memory ceiling, read + written (3.0: H100)");
  app.add_option("--launch-us", c.launch_us, "per kernel launch (0: CUDA graph)");
  app.add_option("--reference-full", reference_full, "reference tokens/s, full fine-tuning");
  app.add_option("--reference-lora", reference_lora, "reference tokens/s, LoRA");
  CLI11_PARSE(app, argc, argv);
  try {
    const model::ModelSpec spec = bench::preset_spec(preset);
    nlohmann::ordered_json j;
    j["preset"] = preset;
    j["batch"] = shape.batch;
    j["seq"] = shape.seq;
    for (const int variant : {0, 1, 2}) {  // full, LoRA beside the GEMMs, LoRA merged
      const bool lora = variant > 0;
      bench::StepShape s = shape;
      s.lora_rank = lora ? lora_rank : 0;
      s.lora_merged = variant == 2;
      const char* method = variant == 0 ? "full" : variant == 1 ? "lora" : "lora_merged";
      const std::string what =
          lora ? "LoRA r=" + std::to_string(lora_rank) + " on all linear layers" +
                     (s.lora_merged ? ", merged weights" : ", beside the base GEMMs")
               : "full fine-tuning";
      std::printf("\n== %s, %s, B=%lld T=%lld%s ==\n", preset.c_str(), what.c_str(),
                  static_cast<long long>(s.batch), static_cast<long long>(s.seq),
                  s.bf16_moments ? ", bf16 moments" : "");
      const std::vector<bench::ModeledOp> ops = bench::model_step(spec, s);
      const std::string table = bench::print_step_model(stdout, ops, s, c);
      const bench::StepEstimate e = bench::estimate(ops, s, c);
      const double ref = lora ? reference_lora : reference_full;
      if (ref > 0)
        std::printf("vs reference %.0f tokens/s: %.2fx\n", ref, e.tokens_per_s / ref);
      j[method] = nlohmann::json::parse(table);
      if (ref > 0) j[method]["vs_reference"] = e.tokens_per_s / ref;
    }
    std::printf("%s\n", j.dump().c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
