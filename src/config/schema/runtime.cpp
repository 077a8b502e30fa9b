// The runtime section: the device, precision, threads and logging of a run.
#include "config/schema.h"
#include "core/limits.h"

namespace tailor::config {
namespace {

bool attention_chosen(const RuntimeConfig& r) { return r.attention != RuntimeAttention::kAuto; }

}  // namespace

const Section<RuntimeConfig>& runtime_section() {
  using S = RuntimeConfig;
  using F = Field<S>;
  static const Section<S> section{
      "runtime",
      &ExperimentConfig::runtime,
      {
          {"device", choice(&S::device), Resume::kMayChange,
           "where to compute (auto: CUDA when built and a GPU is visible)"},
          {"threads", integer(&S::threads, IntRange{0, limits::kThreads}), Resume::kMayChange,
           "CPU threads per rank (0: all cores / ranks on the node)"},
          // The dtype changes the numbers: a run continues in the one it started with.
          {"dtype", choice(&S::dtype), Resume::kFixed,
           "compute dtype (auto: bf16 on CUDA with f32 master weights, f32 on the CPU)"},
          // Either path computes the same attention; a resumed run may switch (it warns: the
          // determinism record names the path).
          F{"attention", choice(&S::attention), Resume::kMayChange,
            "GPU attention (auto: cuDNN's fused attention where supported, else Tailor's kernels)"}
              .written_if(attention_chosen),
          {"log_level", choice(&S::log_level), Resume::kMayChange,
           "least severe log message printed"},
          {"watchdog_s", real(&S::watchdog_s, kNonNegative), Resume::kMayChange,
           "a step collective stuck this long ends the job (0: off)"},
          // Changes only the summation order of the LM head's gradient: may change on resume.
          Field<S>{"loss_chunk_tokens", integer(&S::loss_chunk_tokens, IntRange{0, limits::kPositions}),
           Resume::kMayChange,
           "tokens whose logits are computed at a time (0: auto, about 256M logits per chunk)"}
              .written_if([](const S& r) { return r.loss_chunk_tokens != 0; }),
      }};
  return section;
}

}  // namespace tailor::config
