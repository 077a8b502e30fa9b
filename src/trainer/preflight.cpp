#include "trainer/preflight.h"

#include <filesystem>
#include <functional>

#include <fmt/ranges.h>

#include "checkpoint/hf_model.h"
#include "checkpoint/training_checkpoint.h"
#include "core/error.h"
#include "trainer/from_config.h"
#include "trainer/model_builder.h"
#include "trainer/prepare.h"
#include "trainer/run_support.h"

namespace tailor::trainer {
namespace fs = std::filesystem;

namespace {

// Runs one check; its UserError(s) become problems. Returns whether it passed.
bool attempt(std::vector<std::string>& problems, const std::function<void()>& check) {
  try {
    check();
    return true;
  } catch (const UserErrors& e) {
    problems.insert(problems.end(), e.problems().begin(), e.problems().end());
  } catch (const UserError& e) {
    problems.emplace_back(e.what());
  }
  return false;
}

// The config checked that the data files exist; the few-shot examples are parsed here (their
// records must be prompt/completion pairs).
void check_data_files(const config::ExperimentConfig& cfg, std::vector<std::string>& problems) {
  if (!cfg.data.prompt_template.few_shot_file.empty())
    attempt(problems, [&] { (void)corpus_spec_from_config(cfg, 1); });
}

void check_output_dir(const config::ExperimentConfig& cfg, const PreflightOptions& options,
                      std::vector<std::string>& problems) {
  const std::string ckdir = cfg.output.dir + "/checkpoints";
  const std::string& mode = cfg.train.resume;
  const std::vector<checkpoint::CheckpointRef> existing = checkpoint::list_checkpoints(ckdir);
  if (mode == "never") {
    if (!existing.empty()) {
      problems.push_back(fmt::format(
          "{}: holds checkpoints of an earlier run (newest: step {}); set train.resume=auto to "
          "continue it, or choose another output.dir",
          ckdir, existing.back().step));
      return;
    }
  } else if (mode != "auto") {
    std::error_code ec;
    if (!fs::exists(fs::path(mode) / "manifest.json", ec))
      problems.push_back(fmt::format("{}: train.resume: {} is not a checkpoint (no manifest.json)",
                                     cfg.source, mode));
    return;
  }
  // A fresh start (no checkpoint to resume) over an earlier run's files would replace them.
  const bool resumes = mode == "auto" && !existing.empty();
  if (!resumes) attempt(problems, [&] { check_fresh_start(cfg.output.dir, options.overwrite); });
}

}  // namespace

void check_sequence_length(const config::ExperimentConfig& cfg, const model::ModelSpec& spec) {
  TAILOR_CHECK_USER(cfg.data.seq_len <= spec.max_position_embeddings, cfg.source,
                    "data.seq_len ({}) exceeds the model's {} {}positions (max_position_embeddings)",
                    cfg.data.seq_len, spec.max_position_embeddings,
                    spec.position == model::PositionType::kLearned ? "learned " : "");
}

std::vector<std::string> finished_run_files(const std::string& output_dir) {
  std::error_code ec;
  // A run that ended (export/ is written last) rather than one interrupted before its first
  // checkpoint, which a requeued job must be able to start again.
  if (!fs::is_directory(fs::path(output_dir) / "export", ec)) return {};
  std::vector<std::string> found;
  for (const char* name : {"metrics.jsonl", "config.resolved.yaml"})
    if (fs::is_regular_file(fs::path(output_dir) / name, ec)) found.emplace_back(name);
  for (const char* name : {"export", "tb"})
    if (fs::is_directory(fs::path(output_dir) / name, ec)) found.push_back(std::string(name) + "/");
  return found;
}

void check_fresh_start(const std::string& output_dir, bool overwrite) {
  if (overwrite) return;
  const std::vector<std::string> files = finished_run_files(output_dir);
  if (!files.empty())
    throw_user_error(output_dir,
                     "output.dir holds a finished run ({}) and no checkpoint to resume from; "
                     "`tailor train --overwrite` replaces it, or choose another output.dir",
                     fmt::join(files, ", "));
}

std::vector<std::string> preflight_problems(const config::ExperimentConfig& cfg,
                                            const PreflightOptions& options) {
  std::vector<std::string> problems;
  ModelSetup setup;
  const bool have_model = attempt(problems, [&] { setup = model_setup(cfg); });
  if (have_model) {
    const model::ModelSpec& spec = setup.hf.spec;
    attempt(problems, [&] {
      config::ExperimentConfig layout = cfg;
      resolve_layout(layout, spec, options.world_size);
    });
    attempt(problems, [&] { check_sequence_length(cfg, spec); });
    if (setup.from_hf) attempt(problems, [&] { checkpoint::check_hf_weights(cfg.model.path, setup.hf); });
    attempt(problems, [&] {
      const auto tokenizer = tokenizer_from_config(cfg);
      TAILOR_CHECK_USER(tokenizer->vocab_size() <= spec.vocab_size, cfg.source,
                        "data.tokenizer: the tokenizer has {} ids but the model's vocabulary has {}",
                        tokenizer->vocab_size(), spec.vocab_size);
    });
  }
  check_data_files(cfg, problems);
  check_output_dir(cfg, options, problems);
  return problems;
}

void preflight(const config::ExperimentConfig& cfg, const PreflightOptions& options) {
  std::vector<std::string> problems = preflight_problems(cfg, options);
  if (!problems.empty()) throw UserErrors(std::move(problems));
}

}  // namespace tailor::trainer
