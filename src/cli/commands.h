// Subcommands of the `tailor` executable. Each returns the process exit code and lets typed
// errors propagate to main(), which turns them into one line and the contract's exit code.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace tailor::cli {

// tailor validate CONFIG [key=value ...]: config errors only, no work, nothing written.
int run_validate(const std::string& config_path, const std::vector<std::string>& overrides);

// tailor prepare CONFIG [key=value ...]: tokenizes the training data into data.cache_dir (or
// finds it there) and prints the cache directory on stdout. Meant for one process (`tailor train`
// under MPI has rank 0 prepare while the others wait).
int run_prepare(const std::string& config_path, const std::vector<std::string>& overrides);

// tailor train CONFIG [key=value ...] on the ranks of `world`.
int run_train(const std::string& config_path, const std::vector<std::string>& overrides,
              std::unique_ptr<comm::Communicator> world);

// tailor score --model DIR --data FILE.jsonl: prints per-record progress to stderr and, as the
// last line on stdout, {"records": R, "tokens": N, "nll": ..., "ppl": ...}.
int run_score(const std::string& model_dir, const std::string& adapter_dir,
              const std::string& data_path, int threads);

// tailor export --model DIR --format hf --out DIR [--dtype f32|bf16]
int run_export(const std::string& model_dir, const std::string& checkpoint, const std::string& format,
               const std::string& out_dir, const std::string& dtype, int threads);

// tailor plot RUN_DIR [--out FILE.svg]: draws RUN_DIR/metrics.jsonl (loss, eval metrics, learning
// rate, grad norm against step) as an SVG, RUN_DIR/plot.svg by default; prints the path written.
int run_plot(const std::string& run_dir, const std::string& out_path);

}  // namespace tailor::cli
