// The `tailor` executable: parses argv, dispatches to a subcommand, and maps errors to the exit
// codes of ARCHITECTURE.md: 0 success (and --help), 1 runtime failure, 2 bad input (config, data,
// checkpoint, CLI usage). Every error is printed as one line per problem on stderr; command-line
// parse errors are caught here and never use the parser's own exit codes.
//
// Under an MPI launcher (mpirun, srun) MPI is initialised and every rank runs the same command.
// A config error is found identically by every rank: rank 0 prints it and all ranks exit 2. Any
// other failure on any rank is printed by that rank (naming it) and ends the whole job at once
// through MPI_Abort with the rank's exit code, so a bad input still exits 2 and nothing hangs.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "comm/mpi_communicator.h"
#include "config/config.h"
#include "config/scalars.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/logging.h"

namespace {

constexpr const char* kVersion = "0.1.0";

int report(const tailor::Error& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return static_cast<int>(e.exit_code());
}

// --device auto|cpu|cuda, the choices of runtime.device, into `out`.
void add_device_option(CLI::App* app, tailor::config::RuntimeDevice& out) {
  using tailor::config::RuntimeDevice;
  std::vector<std::string> names;
  for (std::string_view name : tailor::config::names_of<RuntimeDevice>()) names.emplace_back(name);
  app->add_option_function<std::string>(
         "--device",
         [&out](const std::string& name) {
           out = tailor::config::from_name<RuntimeDevice>(name).value();
         },
         "auto (a GPU when visible) | cpu | cuda")
      ->check(CLI::IsMember(names));
}

// The subcommands' names, in the order they were added.
std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  const std::function<bool(const CLI::App*)> all = [](const CLI::App*) { return true; };
  for (const CLI::App* sub : app.get_subcommands(all)) names.push_back(sub->get_name());
  return names;
}

bool is_command(const CLI::App& app, const std::string& name) {
  const std::vector<std::string> names = command_names(app);
  return std::find(names.begin(), names.end(), name) != names.end();
}

// `tailor: unknown command "trian" (did you mean train?)`, or the list of commands.
std::string unknown_command_message(const CLI::App& app, const std::string& given) {
  const std::vector<std::string> names = command_names(app);
  const std::optional<std::string> nearest = tailor::config::closest_key(given, names);
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return nearest ? fmt::format("tailor: unknown command \"{}\" (did you mean {}?)", given, *nearest)
                 : fmt::format("tailor: unknown command \"{}\" (commands: {}; see tailor --help)",
                               given, list);
}

}  // namespace

int main(int argc, char** argv) {
  tailor::log::configure_logging({});
  std::unique_ptr<tailor::comm::MpiRuntime> mpi;
  std::unique_ptr<tailor::comm::Communicator> world;
  if (tailor::comm::launched_by_mpi()) {
    try {
      mpi = std::make_unique<tailor::comm::MpiRuntime>(&argc, &argv);
      world = mpi->world();
    } catch (const tailor::Error& e) {
      return report(e);
    }
    tailor::log::LogConfig lc;
    lc.rank = world->rank();
    lc.world = world->size();
    tailor::log::configure_logging(lc);
  }
  const int rank = world ? world->rank() : 0;
  const bool multi = world && world->size() > 1;
  CLI::App app{"Tailor: fine-tune large language models (full, LoRA, prompt tuning, adapters)",
               "tailor"};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  app.failure_message(CLI::FailureMessage::simple);

  std::string config_path;
  std::vector<std::string> overrides;

  std::string init_preset = "full", init_out;
  CLI::App* init = app.add_subcommand(
      "init", "write a commented starter config (presets: full, lora, translation, chat) to stdout "
              "or -o FILE");
  init->add_option("preset", init_preset, "full (default) | lora | translation | chat");
  init->add_option("-o,--out", init_out, "write it to this file (never overwritten)");

  CLI::App* configs = app.add_subcommand("configs", "list the bundled configs (configs/*.yaml and the task recipes, configs/recipes/*.yaml)");

  CLI::App* validate = app.add_subcommand(
      "validate", "check a config and everything it names (files, model, data, layout) as train "
                  "would; nothing is run or written");
  validate->add_option("config", config_path, "experiment YAML")->required();
  validate->add_option("overrides", overrides, "key.path=value overrides");
  int validate_ranks = 0;
  validate->add_option("--ranks", validate_ranks,
                       "check the layout for this many ranks (default: the job's; 1 alone)")
      ->check(CLI::Range(1, 1 << 20));
  bool overwrite = false;
  validate->add_flag("--overwrite", overwrite, "check as for `train --overwrite`");

  CLI::App* prepare = app.add_subcommand(
      "prepare", "tokenize the config's training data into the cache (data.cache_dir)");
  prepare->add_option("config", config_path, "experiment YAML")->required();
  prepare->add_option("overrides", overrides, "key.path=value overrides");

  CLI::App* train = app.add_subcommand("train", "train as the config says");
  train->add_option("config", config_path, "experiment YAML")->required();
  train->add_option("overrides", overrides, "key.path=value overrides");
  train->add_flag("--overwrite", overwrite,
                  "start afresh even where output.dir holds an earlier run with no checkpoint to "
                  "resume (its logs and export are replaced)");

  std::string model_dir, adapter_dir, data_path, checkpoint_path, format = "hf", out_dir,
      dtype = "f32";
  int threads = 0;
  CLI::App* score = app.add_subcommand(
      "score", "mean NLL and perplexity of a Hugging Face model directory on JSONL records");
  score->add_option("--model", model_dir, "model directory (config.json, *.safetensors, tokenizer)")
      ->required();
  score->add_option("--data", data_path, "JSONL with {\"text\"} or {\"prompt\", \"completion\"}")
      ->required();
  score->add_option("--adapter", adapter_dir, "PEFT adapter directory to apply (LoRA or prompt tuning)");
  score->add_option("--threads", threads, "CPU threads (0: all cores)")
      ->check(CLI::Range(0, tailor::limits::kThreads));
  tailor::config::RuntimeDevice score_device = tailor::config::RuntimeDevice::kAuto;
  add_device_option(score, score_device);

  CLI::App* exp = app.add_subcommand("export", "write a model as a Hugging Face directory");
  auto* src = exp->add_option_group("source");
  src->add_option("--model", model_dir, "Hugging Face model directory to re-export");
  src->add_option("--checkpoint", checkpoint_path,
                  "Tailor checkpoint to export: step_<N>, or a checkpoints/ or run directory (its "
                  "latest)");
  src->require_option(1);
  exp->add_option("--format", format,
                  "hf (default; a PEFT run's checkpoint: the merged model + adapter/) or peft (a "
                  "LoRA or prompt-tuning run's checkpoint: the adapter alone)")
      ->check(CLI::IsMember({"hf", "peft"}));
  exp->add_option("--out", out_dir, "output directory")->required();
  exp->add_option("--dtype", dtype, "f32 or bf16 weights")->check(CLI::IsMember({"f32", "bf16"}));
  exp->add_option("--threads", threads, "CPU threads (0: all cores)")
      ->check(CLI::Range(0, tailor::limits::kThreads));

  tailor::cli::GenerateArgs gen;
  CLI::App* generate = app.add_subcommand(
      "generate", "generate text from a Hugging Face model directory (KV cache; greedy or sampled)");
  auto* gen_source = generate->add_option_group("model");
  gen_source->add_option("--model", gen.model_dir,
                         "model directory (config.json, *.safetensors, tokenizer)");
  gen_source->add_option("--checkpoint", gen.checkpoint,
                         "Tailor checkpoint: step_<N>, or a checkpoints/ or run directory (latest)");
  gen_source->require_option(1);
  generate->add_option("--adapter", gen.adapter_dir,
                       "PEFT adapter directory to apply with --model (LoRA or prompt tuning)");
  auto* prompts = generate->add_option_group("prompts");
  prompts->add_option("--prompt", gen.prompt, "one prompt; its completion streams to stdout");
  prompts->add_option("--prompts", gen.prompts_path,
                      "JSONL records ({\"prompt\"}, {\"messages\"}, {\"src\", ...}, {\"text\"}); "
                      "one JSON line out per record");
  prompts->require_option(1);
  generate->add_option("--max-new-tokens", gen.max_new_tokens, "tokens to generate at most (128)");
  generate->add_option("--temperature", gen.temperature, "0: greedy (default); > 0: sample");
  generate->add_option("--top-k", gen.top_k, "sample from the k most likely tokens (0: all)");
  generate->add_option("--top-p", gen.top_p, "sample from the smallest set reaching p (1: all)");
  generate->add_option("--seed", gen.seed, "seed of the sampling (the same seed, the same text)");
  generate->add_option("--stop", gen.stop, "stop when the text contains one of these (cut there)");
  generate->add_option("--template", gen.template_name,
                       "prompt template of training: plain (default), llama3, chatml, "
                       "mistral, qwen3, phi3, gemma, or a template file "
                       "(configs/templates/*.yaml)");
  generate->add_option("--system", gen.system, "system prompt for the template");
  generate->add_option("--batch-size", gen.batch_size, "--prompts records generated together (8)");
  generate->add_option("--threads", gen.threads, "CPU threads (0: all cores)")
      ->check(CLI::Range(0, tailor::limits::kThreads));
  add_device_option(generate, gen.device);

  std::string inspect_path;
  CLI::App* inspect = app.add_subcommand(
      "inspect", "describe a training checkpoint (layout, files and their SHA-256, tensors and "
                 "where they are stored); exit 2 when a file does not verify");
  inspect->add_option("path", inspect_path,
                      "checkpoint directory (step_<N>), or a checkpoints/ or run directory "
                      "(its latest)")
      ->required();

  tailor::cli::EvalArgs ev;
  CLI::App* evalc = app.add_subcommand(
      "eval", "validation loss/perplexity and generation metrics (BLEU, chrF, ROUGE-L) on the dev "
              "set, of a checkpoint or of the config's model");
  evalc->add_option("config", config_path, "experiment YAML (data, template, model)")->required();
  evalc->add_option("overrides", overrides, "key.path=value overrides");
  evalc->add_option("--checkpoint", ev.options.checkpoint,
                    "checkpoint to evaluate: step_<N>, or a checkpoints/ or run directory (latest)");
  evalc->add_option("--data", ev.options.data, "dev JSONL (default: data.valid)");
  evalc->add_option("--max-records", ev.options.max_records,
                    "records generated for the metrics (0: all)");
  evalc->add_option("--max-new-tokens", ev.options.max_new_tokens, "tokens per answer (128)");
  evalc->add_flag("--no-generate", ev.no_generate, "loss and perplexity only");
  evalc->add_option("--hypotheses", ev.options.hypotheses_out,
                    "write {prompt, reference, hypothesis} JSONL here");
  evalc->add_option("--threads", ev.options.threads, "CPU threads (0: all cores)")
      ->check(CLI::Range(0, tailor::limits::kThreads));
  add_device_option(evalc, ev.options.device);

  CLI::App* search = app.add_subcommand(
      "prompt-search", "rank the config's prompt_search candidates (system prompts, few-shot "
                       "sets, templates) on the dev set, without training");
  search->add_option("config", config_path, "experiment YAML with a prompt_search section")
      ->required();
  search->add_option("overrides", overrides, "key.path=value overrides");
  search->add_option("--checkpoint", ev.options.checkpoint, "score with this checkpoint's model");
  search->add_option("--data", ev.options.data, "dev JSONL (default: data.valid)");
  search->add_option("--write-best", ev.write_best, "write the config with the best prompt here");
  search->add_option("--threads", ev.options.threads, "CPU threads (0: all cores)")
      ->check(CLI::Range(0, tailor::limits::kThreads));
  add_device_option(search, ev.options.device);

  std::string run_dir, plot_out;
  CLI::App* plot = app.add_subcommand(
      "plot", "draw a run's metrics.jsonl (loss, eval metrics, learning rate) as an SVG image");
  plot->add_option("run_dir", run_dir, "run directory (output.dir of the config)")->required();
  plot->add_option("--out", plot_out, "SVG file to write (default RUN_DIR/plot.svg)");

  std::string hyp_path;
  std::vector<std::string> ref_paths;
  CLI::App* metrics = app.add_subcommand(
      "metrics", "corpus BLEU, chrF, chrF++ (as sacreBLEU), ROUGE-L (as rouge-score) and exact "
                 "match of hypothesis lines against reference lines");
  metrics->add_option("--hyp", hyp_path, "hypotheses, one sentence per line")->required();
  metrics->add_option("--ref", ref_paths, "references, line by line with --hyp (repeat for more)")
      ->required()
      ->take_all();

  // An unknown command is named, with the nearest one when it looks like a typo.
  if (argc > 1 && argv[1][0] != '-' && !is_command(app, argv[1])) {
    if (rank == 0) std::fprintf(stderr, "%s\n", unknown_command_message(app, argv[1]).c_str());
    return static_cast<int>(tailor::ExitCode::kUserError);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    if (rank == 0) std::fprintf(stderr, "tailor: %s (see tailor --help)\n", msg.c_str());
    return static_cast<int>(tailor::ExitCode::kUserError);
  }

  // A failure on one rank of several: name the rank, then end every rank with its code.
  auto fail = [&](const std::string& message, int code) {
    if (!multi) {
      std::fprintf(stderr, "%s\n", message.c_str());
      return code;
    }
    std::fprintf(stderr, "[rank %d] %s\n", rank, message.c_str());
    std::fflush(stderr);
    tailor::comm::abort_job(code);
  };
  try {
    if (init->parsed()) return tailor::cli::run_init(init_preset, init_out);
    if (configs->parsed()) return tailor::cli::run_configs();
    if (validate->parsed()) {
      if (rank != 0) return 0;  // rank 0 checks for the job (a problem ends every rank)
      return tailor::cli::run_validate(
          config_path, overrides,
          {validate_ranks > 0 ? validate_ranks : (world ? world->size() : 1), overwrite});
    }
    if (prepare->parsed()) return tailor::cli::run_prepare(config_path, overrides);
    if (train->parsed()) return tailor::cli::run_train(config_path, overrides, std::move(world),
                                                         overwrite);
    if (score->parsed()) return tailor::cli::run_score(model_dir, adapter_dir, data_path, threads,
                                                         score_device);
    if (generate->parsed()) return tailor::cli::run_generate(gen);
    if (plot->parsed()) return tailor::cli::run_plot(run_dir, plot_out);
    if (inspect->parsed()) return tailor::cli::run_inspect(inspect_path);
    if (evalc->parsed()) return tailor::cli::run_eval(config_path, overrides, ev);
    if (search->parsed()) return tailor::cli::run_prompt_search(config_path, overrides, ev);
    if (metrics->parsed()) return tailor::cli::run_metrics(hyp_path, ref_paths);
    if (exp->parsed())
      return tailor::cli::run_export(model_dir, checkpoint_path, format, out_dir, dtype, threads);
  } catch (const tailor::config::ConfigError& e) {
    // Every rank reads the same config and finds the same problems: one report, no abort.
    if (rank == 0) std::fprintf(stderr, "%s\n", e.what());
    return static_cast<int>(e.exit_code());
  } catch (const tailor::Error& e) {
    return fail(e.what(), static_cast<int>(e.exit_code()));
  } catch (const std::bad_alloc&) {
    return fail("out of memory", static_cast<int>(tailor::ExitCode::kRuntime));
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what(), static_cast<int>(tailor::ExitCode::kRuntime));
  }
  return static_cast<int>(tailor::ExitCode::kUserError);
}
