// Subcommands of the `tailor` executable. Each returns the process exit code and lets typed
// errors propagate to main(), which turns them into one line and the contract's exit code.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "config/config.h"
#include "trainer/evaluation.h"
#include "trainer/preflight.h"

namespace tailor::cli {

// tailor validate CONFIG [key=value ...]: the config's errors, then every check train makes before
// any computation (trainer/preflight.h), all reported at once; nothing written.
int run_validate(const std::string& config_path, const std::vector<std::string>& overrides,
                 const trainer::PreflightOptions& options);

// tailor init [PRESET] [-o FILE]: a commented starter config (cli/starter_configs.h) on stdout, or
// written to FILE, which must not exist (UserError, exit 2: nothing is overwritten). An unknown
// preset is a UserError listing the presets.
int run_init(const std::string& preset, const std::string& out_path);

// tailor configs: the bundled configs (configs/*.yaml under the working directory, else beside
// the build directory of the executable) with their one-line descriptions.
int run_configs();

// tailor prepare CONFIG [key=value ...]: tokenizes the training data into data.cache_dir (or
// finds it there) and prints the cache directory on stdout. Meant for one process (`tailor train`
// under MPI has rank 0 prepare while the others wait).
int run_prepare(const std::string& config_path, const std::vector<std::string>& overrides);

// tailor train CONFIG [key=value ...] [--overwrite] on the ranks of `world`.
int run_train(const std::string& config_path, const std::vector<std::string>& overrides,
              std::unique_ptr<comm::Communicator> world, bool overwrite = false);

// tailor score --model DIR --data FILE.jsonl: prints per-record progress to stderr and, as the
// last line on stdout, {"records": R, "tokens": N, "nll": ..., "ppl": ...}.
int run_score(const std::string& model_dir, const std::string& adapter_dir,
              const std::string& data_path, int threads, config::RuntimeDevice device);

// tailor export (--model DIR | --checkpoint PATH) [--format hf|peft] --out DIR [--dtype f32|bf16]:
// a model directory re-exported, or a training checkpoint (step_<N>, or a checkpoints/ or run
// directory's latest) exported as the trainer exports at the end of a run
// (trainer::export_checkpoint; any TP layout, optimizer files never read).
int run_export(const std::string& model_dir, const std::string& checkpoint, const std::string& format,
               const std::string& out_dir, const std::string& dtype, int threads);

// tailor inspect PATH (step_<N>, or a checkpoints/ or run directory: its latest): prints the
// checkpoint's step, layout, dtype, optimizer, PEFT base, determinism record, every file with its
// size and whether its SHA-256 verifies, and every tensor with its global shape, dtype and the
// files and hyperslabs holding it (checkpoint/inspect.h), then a summary line. Exit 0 when
// everything verifies; otherwise the report is still printed and the first problem is thrown
// (UserError `path: reason`, exit 2).
int run_inspect(const std::string& path);

// tailor plot RUN_DIR [--out FILE.svg]: draws RUN_DIR/metrics.jsonl (loss, eval metrics, learning
// rate, grad norm against step) as an SVG, RUN_DIR/plot.svg by default; prints the path written.
int run_plot(const std::string& run_dir, const std::string& out_path);

// tailor metrics --hyp FILE --ref FILE [--ref FILE ...]: corpus BLEU, chrF, chrF++ (sacreBLEU),
// ROUGE-L (rouge-score) and exact match of the hypothesis lines against one or more reference
// files, line by line (eval/metrics.h). Prints a short table and, as the last line on stdout,
// {"bleu":..,"chrf":..,"chrf_pp":..,"rouge_l":..,"exact_match":..,"sentences":N,
// "bleu_signature":"..","chrf_signature":"..", ...}. An unreadable file or a line-count mismatch
// is a user error `path: reason`.
int run_metrics(const std::string& hyp_path, const std::vector<std::string>& ref_paths);

// tailor generate --model DIR [--adapter DIR] (--prompt TEXT | --prompts FILE.jsonl) ...: greedy
// or sampled generation with a KV cache (eval/generate.h), prompts rendered with a training
// template (eval/generation_prompt.h). A single --prompt streams its completion to stdout as it
// is generated; --prompts writes one JSON line per record, in order: {"prompt": ...,
// "completion": ..., "tokens": N} (+ "reference" when the record carries an answer).
struct GenerateArgs {
  std::string model_dir, adapter_dir;
  std::string checkpoint;            // a Tailor checkpoint instead of --model (+ --adapter)
  std::string prompt, prompts_path;  // exactly one of them
  std::int64_t max_new_tokens = 128;
  double temperature = 0.0;          // 0: greedy
  std::int64_t top_k = 0;
  double top_p = 1.0;
  std::uint64_t seed = 0;
  std::vector<std::string> stop;     // stop strings
  std::string template_name = "plain";
  std::string system;
  std::int64_t batch_size = 8;       // --prompts records per batch
  int threads = 0;
  config::RuntimeDevice device = config::RuntimeDevice::kAuto;
};
int run_generate(const GenerateArgs& args);

struct EvalArgs {
  trainer::EvalOptions options;
  bool no_generate = false;
  std::string write_best;  // prompt-search: the config with the best candidate
};

// tailor eval CONFIG [key=value ...] [--checkpoint P] ...: a table on stderr and, as the last line
// on stdout, eval_report_json.
int run_eval(const std::string& config_path, const std::vector<std::string>& overrides,
             const EvalArgs& args);

// tailor prompt-search CONFIG ...: a ranked table on stdout (best first) and, with --write-best,
// the config with the best candidate as data.template.
int run_prompt_search(const std::string& config_path, const std::vector<std::string>& overrides,
                      const EvalArgs& args);

}  // namespace tailor::cli
