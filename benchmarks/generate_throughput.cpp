// Greedy generation on the CPU, timed: a Hugging Face model directory (written by the driver
// benchmarks/generate_throughput.py, which times PyTorch on the same directory), a batch of
// prompts given as token ids, exactly --new-tokens tokens per prompt (no stop ids), f32.
//
// Each run is eval::generate() end to end (prefill, then one token per row and step through the
// KV cache); a separate timed extend() of the prompts on an empty cache gives the prefill share.
// Prints one JSON line: run and prefill times, tokens/s, and the tokens of the last run (so the
// driver can check both systems generated the same).
//
//   tailor_bench_generate --model-dir DIR --prompt-ids ids.json --new-tokens 64 --threads 2
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "eval/generate.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Seconds of one extend() of the (right-padded) prompts on an empty cache.
double time_prefill(tailor::model::Transformer& m,
                    const std::vector<std::vector<std::int32_t>>& prompts) {
  std::int64_t t = 0;
  std::vector<std::int64_t> counts;
  for (const auto& p : prompts) {
    t = std::max<std::int64_t>(t, static_cast<std::int64_t>(p.size()));
    counts.push_back(static_cast<std::int64_t>(p.size()));
  }
  const auto b = static_cast<std::int64_t>(prompts.size());
  std::vector<std::int32_t> ids(static_cast<std::size_t>(b * t), 0);
  for (std::int64_t r = 0; r < b; ++r)
    std::copy(prompts[static_cast<std::size_t>(r)].begin(),
              prompts[static_cast<std::size_t>(r)].end(), ids.begin() + r * t);
  tailor::model::KvCache cache = m.make_kv_cache(b, t);
  const auto t0 = Clock::now();
  (void)m.extend(cache,
                 tailor::backend::Tensor{ids.data(), tailor::DType::kI32, tailor::Shape{b * t}},
                 counts);
  return seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tailor;
  std::string model_dir, ids_path;
  std::int64_t new_tokens = 64;
  int threads = 2, warmup = 1, repeats = 3;
  CLI::App app{"Time greedy generation of a Hugging Face model directory on the CPU"};
  app.add_option("--model-dir", model_dir)->required();
  app.add_option("--prompt-ids", ids_path, "JSON list of prompts, each a list of token ids")
      ->required();
  app.add_option("--new-tokens", new_tokens);
  app.add_option("--threads", threads);
  app.add_option("--warmup", warmup);
  app.add_option("--repeats", repeats);
  CLI11_PARSE(app, argc, argv);

  std::ifstream f(ids_path);
  const auto prompts = nlohmann::json::parse(f).get<std::vector<std::vector<std::int32_t>>>();
  const checkpoint::HfModelConfig hf = checkpoint::read_hf_config(model_dir);
  backend::CpuOps ops(threads);
  model::Transformer model(hf.spec, ops, DType::kF32);
  checkpoint::load_hf_weights(model_dir, hf, model, ops);
  eval::GenerateOptions o;
  o.max_new_tokens = new_tokens;  // greedy, no stop ids: every row generates new_tokens

  std::vector<double> run_times, prefill_times;
  std::vector<eval::Completion> last;
  for (int r = 0; r < warmup + repeats; ++r) {
    const double prefill = time_prefill(model, prompts);
    const auto t0 = Clock::now();
    last = eval::generate(model, nullptr, prompts, o);
    const double dt = seconds_since(t0);
    std::fprintf(stderr, "tailor run %d: %.3f s (prefill %.3f s)\n", r, dt, prefill);
    if (r >= warmup) {
      run_times.push_back(dt);
      prefill_times.push_back(prefill);
    }
  }
  nlohmann::ordered_json j;
  j["system"] = "tailor";
  j["blas"] = backend::blas_description();
  j["threads"] = threads;
  j["params"] = hf.spec.num_parameters();
  j["batch"] = prompts.size();
  j["new_tokens"] = new_tokens;
  j["run_times_s"] = run_times;
  j["prefill_times_s"] = prefill_times;
  std::vector<std::vector<std::int32_t>> tokens;
  for (const eval::Completion& c : last) tokens.push_back(c.tokens);
  j["tokens"] = tokens;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
