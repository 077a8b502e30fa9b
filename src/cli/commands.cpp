#include "cli/commands.h"

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <thread>

#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "config/config.h"
#include "data/tokenizer.h"
#include "eval/score.h"
#include "peft/peft_import.h"
#include "core/logging.h"
#include "trainer/plot.h"
#include "trainer/prepare.h"
#include "trainer/trainer.h"

namespace tailor::cli {

int run_validate(const std::string& config_path, const std::vector<std::string>& overrides) {
  const config::ExperimentConfig cfg = config::load_config(config_path, overrides);
  log::info("{}: valid", config_path);
  return 0;
}

int run_prepare(const std::string& config_path, const std::vector<std::string>& overrides) {
  const config::ExperimentConfig cfg = config::load_config(config_path, overrides);
  const auto tokenizer = trainer::tokenizer_from_config(cfg);
  const int threads = cfg.runtime.threads > 0
                          ? static_cast<int>(cfg.runtime.threads)
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const data::CachedCorpus c = trainer::prepare_data(cfg, *tokenizer, threads);
  std::printf("%s\n", c.dir.c_str());
  return 0;
}

int run_train(const std::string& config_path, const std::vector<std::string>& overrides,
              std::unique_ptr<comm::Communicator> world) {
  const config::ExperimentConfig cfg = config::load_config(config_path, overrides);
  log::Level level = log::Level::kInfo;
  if (log::parse_level(cfg.runtime.log_level, level)) {
    log::LogConfig lc = log::logging_config();
    lc.level = level;
    log::configure_logging(lc);
  }
  const bool writer = world == nullptr || world->rank() == 0;
  const trainer::TrainSummary summary = trainer::train(cfg, std::move(world));
  const int code = summary.stopped ? static_cast<int>(ExitCode::kStopRequested) : 0;
  if (!writer) return code;
  std::error_code ec;
  const auto abs = std::filesystem::absolute(summary.run_dir, ec);
  std::printf("run directory: %s\n", ec ? summary.run_dir.c_str() : abs.c_str());
  return code;
}

int run_score(const std::string& model_dir, const std::string& adapter_dir,
              const std::string& data_path, int threads) {
  const checkpoint::HfModelConfig hf = checkpoint::read_hf_config(model_dir);
  const auto tokenizer = data::load_tokenizer(model_dir);
  backend::CpuOps ops(threads);
  std::optional<model::LoraSpec> lora;
  if (!adapter_dir.empty()) lora = peft::read_peft_lora_config(adapter_dir);
  model::Transformer model(hf.spec, ops, DType::kF32, nullptr, lora ? &*lora : nullptr);
  checkpoint::load_hf_weights(model_dir, hf, model, ops);
  if (lora) peft::load_peft_lora_weights(adapter_dir, model, ops);
  log::info("scoring {} with {} ({})", data_path, model_dir, hf.spec.summary());
  const eval::ScoreResult r = eval::score_jsonl(model, *tokenizer, data_path);
  std::printf("%s\n", fmt::format(R"({{"records": {}, "tokens": {}, "nll": {}, "ppl": {}}})",
                                   r.records, r.tokens, r.nll, r.ppl)
                           .c_str());
  return 0;
}

int run_export(const std::string& model_dir, const std::string& checkpoint,
               const std::string& format, const std::string& out_dir, const std::string& dtype,
               int threads) {
  if (!checkpoint.empty())
    throw_user_error("--checkpoint", "exporting from a Tailor checkpoint needs HDF5 checkpoints, "
                                     "which this build does not have yet; use --model DIR");
  if (format != "hf")
    throw_user_error("--format", "{} adapters are written by LoRA runs (output.dir/export/adapter); "
                                 "a model directory exports with --format hf", format);
  const checkpoint::HfModelConfig hf = checkpoint::read_hf_config(model_dir);
  backend::CpuOps ops(threads);
  model::Transformer model(hf.spec, ops, DType::kF32);
  checkpoint::load_hf_weights(model_dir, hf, model, ops);
  checkpoint::save_hf_model(out_dir, hf, model, ops, model_dir, dtype == "bf16");
  log::info("exported {} ({}) to {}", model_dir, hf.model_type, out_dir);
  return 0;
}

int run_plot(const std::string& run_dir, const std::string& out_path) {
  if (!out_path.empty() && !out_path.ends_with(".svg"))
    throw_user_error("--out", "{}: only SVG is written (name it FILE.svg; `rsvg-convert -o x.png "
                              "FILE.svg` makes a PNG)", out_path);
  std::printf("%s\n", trainer::plot_run(run_dir, out_path).c_str());
  return 0;
}

}  // namespace tailor::cli
