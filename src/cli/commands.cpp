#include "cli/commands.h"
#include "core/limits.h"

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <thread>

#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "checkpoint/inspect.h"
#include "cli/starter_configs.h"
#include "config/config.h"
#include "trainer/run_dir.h"
#include "data/tokenizer.h"
#include "eval/metrics.h"
#include "eval/generate.h"
#include "eval/generation_prompt.h"
#include "eval/score.h"
#include "peft/registry.h"
#include "core/logging.h"
#include "trainer/checkpointing.h"
#include "trainer/device.h"
#include "trainer/from_config.h"
#include "trainer/plot.h"
#include "trainer/prepare.h"
#include "trainer/progress.h"
#include "trainer/run_support.h"
#include "trainer/trainer.h"

namespace tailor::cli {

int run_validate(const std::string& config_path, const std::vector<std::string>& overrides,
                 const trainer::PreflightOptions& options) {
  const config::ExperimentConfig cfg = config::load_config(config_path, overrides);
  trainer::preflight(cfg, options);
  log::info("{}: valid ({} rank{})", config_path, options.world_size,
            options.world_size == 1 ? "" : "s");
  return 0;
}

int run_init(const std::string& preset, const std::string& out_path) {
  std::string names;
  for (std::string_view p : starter_presets())
    names += fmt::format("{}{}", names.empty() ? "" : ", ", p);
  if (preset == "qlora")
    throw_user_error("tailor init", "qlora: QLoRA is not built yet (NF4 base weights are on the "
                     "roadmap, docs/peft.md); the presets are {}", names);
  const std::optional<std::string> text = starter_config(preset);
  if (!text)
    throw_user_error("tailor init", "unknown preset \"{}\" (the presets are {})", preset, names);
  if (out_path.empty()) {
    std::fputs(text->c_str(), stdout);
    return 0;
  }
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(out_path, ec)))
    throw_user_error(out_path, "exists; not overwritten (give another -o, or remove it first)");
  trainer::write_file_atomic(out_path, *text);
  log::info("wrote the {} starter to {}: check it with `tailor validate {}`, train with `tailor "
            "train {}`",
            preset, out_path, out_path, out_path);
  return 0;
}

int run_configs() {
  // Paths in configs are relative to the working directory (the repository root), so look there
  // first; then beside the build directory the executable is in (build/tailor -> configs/).
  namespace fs = std::filesystem;
  std::vector<std::string> dirs = {"configs"};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back((exe.parent_path().parent_path() / "configs").string());
  const std::vector<BundledConfig> configs = bundled_configs(dirs);
  if (configs.empty())
    throw_user_error("configs", "no bundled configs found (run tailor from the repository root); "
                                "`tailor init` writes a starter config");
  std::size_t width = 0;
  for (const BundledConfig& c : configs) width = std::max(width, c.path.size());
  for (const BundledConfig& c : configs)
    std::printf("%-*s  %s\n", static_cast<int>(width), c.path.c_str(), c.description.c_str());
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
              std::unique_ptr<comm::Communicator> world, bool overwrite) {
  const config::ExperimentConfig cfg = config::load_config(config_path, overrides);
  log::LogConfig lc = log::logging_config();
  lc.level = cfg.runtime.log_level;
  log::configure_logging(lc);
  const bool writer = world == nullptr || world->rank() == 0;
  trainer::TrainOptions options;
  options.overwrite = overwrite;
  const trainer::TrainSummary summary = trainer::train(cfg, std::move(world), options);
  const int code = summary.stopped ? static_cast<int>(ExitCode::kStopRequested) : 0;
  if (!writer) return code;
  std::error_code ec;
  const auto abs = std::filesystem::absolute(summary.run_dir, ec);
  std::printf("run directory: %s\n", ec ? summary.run_dir.c_str() : abs.c_str());
  return code;
}

namespace {

// A Hugging Face model directory (+ a PEFT adapter directory: LoRA or prompt tuning), with its
// tokenizer, on the device --device picks (bf16 on a GPU, f32 on the CPU): what `score` and
// `generate` run.
struct CpuModel {
  checkpoint::HfModelConfig hf;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::unique_ptr<backend::Ops> ops;
  std::shared_ptr<const peft::Method> method;  // the adapter's (nullptr: none)
  std::unique_ptr<model::Transformer> model;
};

// The backend of --device (auto: a GPU when one is visible).
std::unique_ptr<backend::Ops> device_ops(config::RuntimeDevice device, int threads,
                                         config::RuntimeConfig* runtime = nullptr) {
  config::RuntimeConfig r;
  r.device = device;
  r.threads = threads;
  if (runtime != nullptr) *runtime = r;
  return trainer::make_ops(r, threads, "--device");
}

CpuModel load_cpu_model(const std::string& model_dir, const std::string& adapter_dir,
                        int threads, config::RuntimeDevice device) {
  CpuModel m;
  m.hf = checkpoint::read_hf_config(model_dir);
  m.tokenizer = data::load_tokenizer(model_dir);
  config::RuntimeConfig runtime;
  m.ops = device_ops(device, threads, &runtime);
  if (!adapter_dir.empty()) m.method = peft::method_from_adapter(adapter_dir, m.hf.spec);
  std::vector<const model::Attachment*> attachments;
  if (m.method != nullptr) attachments.push_back(m.method.get());
  m.model = std::make_unique<model::Transformer>(
      m.hf.spec, *m.ops, trainer::compute_dtype(runtime, m.ops->device()), nullptr, attachments);
  checkpoint::load_hf_weights(model_dir, m.hf, *m.model, *m.ops);
  if (m.method != nullptr) m.method->load_adapter(adapter_dir, *m.model, *m.ops);
  return m;
}

// The model of a Tailor checkpoint (any layout, merged onto one rank) with its run's tokenizer.
CpuModel load_checkpoint_cpu_model(const std::string& path, int threads,
                                   config::RuntimeDevice device) {
  CpuModel m;
  m.ops = device_ops(device, threads);
  trainer::CheckpointModel cm =
      trainer::load_checkpoint_model(checkpoint::resolve_checkpoint_dir(path), *m.ops);
  m.hf = cm.setup.hf;
  m.method = cm.setup.method;
  m.tokenizer = std::move(cm.tokenizer);
  m.model = std::move(cm.model);
  return m;
}

}  // namespace

int run_score(const std::string& model_dir, const std::string& adapter_dir,
              const std::string& data_path, int threads, config::RuntimeDevice device) {
  const CpuModel m = load_cpu_model(model_dir, adapter_dir, threads, device);
  log::info("scoring {} with {} ({})", data_path, model_dir, m.hf.spec.summary());
  const eval::ScoreResult r = eval::score_jsonl(*m.model, *m.tokenizer, data_path);
  std::printf("%s\n", fmt::format(R"({{"records": {}, "tokens": {}, "nll": {}, "ppl": {}}})",
                                   r.records, r.tokens, r.nll, r.ppl)
                           .c_str());
  return 0;
}

namespace {

// The options of `generate` that need no model, checked (UserError naming the flag).
eval::GenerateOptions generate_options(const GenerateArgs& a) {
  eval::GenerateOptions o;
  TAILOR_CHECK_USER(a.max_new_tokens >= 1, "--max-new-tokens", "{} must be at least 1",
                    a.max_new_tokens);
  TAILOR_CHECK_USER(a.max_new_tokens <= limits::kPositions, "--max-new-tokens",
                    "{} is above Tailor's limit of {} (no model has that many positions)",
                    a.max_new_tokens, limits::kPositions);
  TAILOR_CHECK_USER(a.batch_size >= 1, "--batch-size", "{} must be at least 1", a.batch_size);
  o.max_new_tokens = a.max_new_tokens;
  o.sampling = {a.temperature, a.top_k, a.top_p, a.seed};
  if (const std::string problem = eval::sampling_problem(o.sampling); !problem.empty())
    throw UserError("", problem);
  for (const std::string& s : a.stop) TAILOR_CHECK_USER(!s.empty(), "--stop", "empty stop string");
  o.stop_strings = a.stop;
  return o;
}

// Stops and length limits from the model: its EOS ids and the template's end of turn; the
// positions it has bound every row (a sliding window does not: the attention ops mask it).
void add_model_limits(eval::GenerateOptions& o, const CpuModel& m, const data::ChatFormat& format) {
  o.stop_ids = eval::response_end_ids(format, *m.tokenizer);
  if (m.hf.eos_token_id >= 0 &&
      std::find(o.stop_ids.begin(), o.stop_ids.end(), m.hf.eos_token_id) == o.stop_ids.end())
    o.stop_ids.push_back(m.hf.eos_token_id);
  o.max_length = m.hf.spec.max_position_embeddings;
}

// The records' prompts as token ids, checked against the model (UserError at `where`).
std::vector<eval::GenerationPrompt> generation_prompts(const std::vector<data::Record>& records,
                                                       const std::string& source,
                                                       const data::TemplateSpec& tmpl,
                                                       const CpuModel& m, std::int64_t max_len) {
  std::vector<eval::GenerationPrompt> out;
  for (const data::Record& r : records) {
    const std::string where = r.line > 0 ? fmt::format("{}:{}", source, r.line) : source;
    eval::GenerationPrompt p = eval::generation_prompt(r, tmpl, *m.tokenizer);
    TAILOR_CHECK_USER(!p.ids.empty(), where, "the prompt is empty");
    TAILOR_CHECK_USER(static_cast<std::int64_t>(p.ids.size()) < max_len, where,
                      "the prompt has {} tokens; the model reads at most {}", p.ids.size(),
                      max_len);
    for (std::int32_t id : p.ids)
      TAILOR_CHECK_USER(id < m.hf.spec.vocab_size, where,
                        "token id {} is outside the model's vocabulary ({})", id,
                        m.hf.spec.vocab_size);
    out.push_back(std::move(p));
  }
  return out;
}

// One --prompts record's output line.
std::string completion_json(const eval::GenerationPrompt& p, const eval::Completion& c) {
  nlohmann::ordered_json j;
  j["prompt"] = p.prompt;
  j["completion"] = c.text;
  j["tokens"] = c.tokens.size();
  if (p.reference) j["reference"] = *p.reference;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One prompt: its text goes to stdout as it is generated.
void stream_completion(CpuModel& m, const eval::GenerationPrompt& prompt,
                       const eval::GenerateOptions& o) {
  const auto print = [](std::size_t, std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  const std::vector<std::vector<std::int32_t>> one = {prompt.ids};
  const auto c = eval::generate(*m.model, m.tokenizer.get(), one, o, print);
  std::printf("\n");
  log::info("{} tokens ({})", c[0].tokens.size(), eval::finish_reason_name(c[0].finish));
}

// Records: batches of `batch` prompts, one JSON line per record in order, flushed per batch. A
// progress line goes to stderr each time another tenth of the records is done, and a summary at
// the end.
void write_completions(CpuModel& m, const std::vector<eval::GenerationPrompt>& prompts,
                       const eval::GenerateOptions& o, std::int64_t batch) {
  const auto step = static_cast<std::size_t>(batch);
  const auto t0 = trainer::Clock::now();
  const auto total = static_cast<std::int64_t>(prompts.size());
  trainer::GenerateProgressPolicy policy;
  std::int64_t tokens = 0;
  for (std::size_t first = 0; first < prompts.size(); first += step) {
    const std::size_t end = std::min(prompts.size(), first + step);
    std::vector<std::vector<std::int32_t>> ids;
    for (std::size_t i = first; i < end; ++i) ids.push_back(prompts[i].ids);
    // Each record draws from its own stream: the tokens do not depend on the batch size.
    const auto c = eval::generate(*m.model, m.tokenizer.get(), ids, o, {}, first);
    for (std::size_t i = first; i < end; ++i) {
      std::printf("%s\n", completion_json(prompts[i], c[i - first]).c_str());
      tokens += static_cast<std::int64_t>(c[i - first].tokens.size());
    }
    std::fflush(stdout);
    const auto done = static_cast<std::int64_t>(end);
    if (policy.should_print(done, total))
      log::info("{}", trainer::generate_progress_line(done, total, tokens,
                                                      trainer::seconds_since(t0)));
  }
  const double elapsed = trainer::seconds_since(t0);
  log::info("generated {} completions, {} tokens in {} ({:.1f} tok/s)", total, tokens,
            trainer::format_duration(elapsed),
            elapsed > 0 ? static_cast<double>(tokens) / elapsed : 0.0);
}

}  // namespace

int run_generate(const GenerateArgs& a) {
  // --template: a built-in preset, or a template file (configs/templates/*.yaml, or the one a run
  // was trained with).
  data::TemplateSpec tmpl;
  if (const std::optional<data::ChatPreset> preset = data::parse_chat_preset(a.template_name)) {
    tmpl.preset = *preset;
  } else {
    TAILOR_CHECK_USER(std::filesystem::is_regular_file(a.template_name), "--template",
                      "unknown template \"{}\" (plain, llama3, chatml, mistral, qwen3, phi3, "
                      "gemma, or a template file such as configs/templates/chatml.yaml)",
                      a.template_name);
    tmpl.format = trainer::chat_format_from_config(config::load_chat_template(a.template_name));
  }
  tmpl.system = a.system;
  eval::GenerateOptions o = generate_options(a);
  std::vector<data::Record> records;
  if (a.prompts_path.empty()) {
    data::Record r;
    r.kind = data::RecordKind::kPromptCompletion;
    r.prompt = a.prompt;
    records.push_back(std::move(r));
  } else {
    records = eval::read_generation_records(a.prompts_path);
  }
  TAILOR_CHECK_USER(a.checkpoint.empty() || a.adapter_dir.empty(), "--adapter",
                    "goes with --model; a checkpoint of a PEFT run already holds its adapter");
  CpuModel m = a.checkpoint.empty()
                   ? load_cpu_model(a.model_dir, a.adapter_dir, a.threads, a.device)
                   : load_checkpoint_cpu_model(a.checkpoint, a.threads, a.device);
  add_model_limits(o, m, tmpl.chat_format());
  for (const std::string& special : tmpl.chat_format().special_tokens)
    if (!m.tokenizer->token_to_id(special))
      log::warn("--template {}: the tokenizer has no token {}; it is encoded as plain text",
                a.template_name, special);
  // A prompt-tuning adapter's virtual tokens take the first positions of every row.
  const std::vector<eval::GenerationPrompt> prompts =
      generation_prompts(records, a.prompts_path.empty() ? "--prompt" : a.prompts_path, tmpl, m,
                         o.max_length - m.model->virtual_tokens());
  log::info("generating with {} ({})", a.checkpoint.empty() ? a.model_dir : a.checkpoint,
            m.hf.spec.summary());

  if (a.prompts_path.empty()) {
    stream_completion(m, prompts.front(), o);
  } else {
    write_completions(m, prompts, o, a.batch_size);
  }
  return 0;
}

int run_export(const std::string& model_dir, const std::string& checkpoint,
               const std::string& format, const std::string& out_dir, const std::string& dtype,
               int threads) {
  if (!checkpoint.empty()) {
    trainer::CheckpointExport options;
    options.format = format;
    options.bf16 = dtype == "bf16";
    options.threads = threads;
    trainer::export_checkpoint(checkpoint::resolve_checkpoint_dir(checkpoint), out_dir, options);
    return 0;
  }
  if (format != "hf")
    throw_user_error("--format", "{} adapters are written by {} runs "
                                 "(output.dir/export/adapter); a model directory exports with "
                                 "--format hf", format, peft::peft_format_methods());
  const checkpoint::HfModelConfig hf = checkpoint::read_hf_config(model_dir);
  backend::CpuOps ops(threads);
  model::Transformer model(hf.spec, ops, DType::kF32);
  checkpoint::load_hf_weights(model_dir, hf, model, ops);
  checkpoint::save_hf_model(out_dir, hf, model, ops, model_dir, dtype == "bf16");
  log::info("exported {} ({}) to {}", model_dir, hf.model_type, out_dir);
  return 0;
}

int run_inspect(const std::string& path) {
  const checkpoint::Inspection ins = checkpoint::inspect_checkpoint(checkpoint::resolve_checkpoint_dir(path));
  std::fputs(checkpoint::format_inspection(ins).c_str(), stdout);
  std::fflush(stdout);
  if (!ins.problems.empty()) throw UserError(ins.problems.front().where, ins.problems.front().reason);
  return 0;
}

int run_plot(const std::string& run_dir, const std::string& out_path) {
  if (!out_path.empty() && !out_path.ends_with(".svg"))
    throw_user_error("--out", "{}: only SVG is written (name it FILE.svg; `rsvg-convert -o x.png "
                              "FILE.svg` makes a PNG)", out_path);
  std::printf("%s\n", trainer::plot_run(run_dir, out_path).c_str());
  return 0;
}

namespace {

// The human part of `tailor metrics`: one row per metric, then the sacreBLEU signatures.
void print_metrics_table(const eval::CorpusMetrics& m) {
  const eval::BleuResult& b = m.bleu;
  fmt::print("{:<12} {:>8}  {}\n", "metric", "score", "detail");
  fmt::print("{:<12} {:>8.2f}  {:.1f}/{:.1f}/{:.1f}/{:.1f} (BP = {:.3f} ratio = {:.3f} hyp_len = {} "
             "ref_len = {})\n",
             "BLEU", b.score, b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3],
             b.bp, b.ratio, b.sys_len, b.ref_len);
  fmt::print("{:<12} {:>8.2f}\n", "chrF2", m.chrf.score);
  fmt::print("{:<12} {:>8.2f}\n", "chrF2++", m.chrf_pp.score);
  fmt::print("{:<12} {:>8.4f}  F-measure, mean over {} sentences\n", "ROUGE-L", m.rouge_l,
             m.sentences);
  fmt::print("{:<12} {:>8.4f}  SQuAD-normalized: {:.4f}\n", "exact match", m.exact_match,
             m.exact_match_squad);
  fmt::print("BLEU|{}\nchrF2|{}\nchrF2++|{}\n", b.signature, m.chrf.signature, m.chrf_pp.signature);
}

}  // namespace

int run_metrics(const std::string& hyp_path, const std::vector<std::string>& ref_paths) {
  const std::vector<std::string> hyps = eval::read_sentences(hyp_path);
  TAILOR_CHECK_USER(!hyps.empty(), hyp_path, "no lines to score");
  std::vector<std::vector<std::string>> refs;
  for (const std::string& path : ref_paths) {
    refs.push_back(eval::read_sentences(path));
    TAILOR_CHECK_USER(refs.back().size() == hyps.size(), path, "{} lines, but {} has {}",
                      refs.back().size(), hyp_path, hyps.size());
  }
  const eval::CorpusMetrics m = eval::compute_metrics(hyps, refs);
  print_metrics_table(m);
  fmt::print("{}\n", eval::metrics_json(m));
  return 0;
}

int run_eval(const std::string& config_path, const std::vector<std::string>& overrides,
             const EvalArgs& args) {
  const config::ExperimentConfig cfg = config::load_config(config_path, overrides);
  trainer::EvalOptions o = args.options;
  o.generate = !args.no_generate;
  const trainer::EvalReport r = trainer::evaluate(cfg, o);
  std::printf("%-12s %s\n", "model", args.options.checkpoint.empty()
                                         ? "the config's starting model"
                                         : fmt::format("checkpoint step {}", r.step).c_str());
  if (r.objective.empty()) {
    std::printf("%-12s %.4f (perplexity %.3f, %lld tokens)\n", "dev loss", r.loss, r.ppl,
                static_cast<long long>(r.tokens));
  } else {  // a preference objective: its loss over pairs, and its statistics
    std::printf("%-12s %.4f (%lld pairs)\n", "dev loss", r.loss, static_cast<long long>(r.tokens));
    for (const auto& [name, value] : r.objective) std::printf("%-16s %.4f\n", name.c_str(), value);
  }
  if (r.metrics) {
    std::printf("%-12s %.2f  (%s)\n", "BLEU", r.metrics->bleu.score, r.metrics->bleu.signature.c_str());
    std::printf("%-12s %.2f\n", "chrF2", r.metrics->chrf.score);
    std::printf("%-12s %.2f\n", "chrF2++", r.metrics->chrf_pp.score);
    std::printf("%-12s %.4f\n", "ROUGE-L", r.metrics->rouge_l);
    std::printf("%-12s %.4f  (%lld records)\n", "exact match", r.metrics->exact_match,
                static_cast<long long>(r.records));
  }
  std::printf("%s\n", trainer::eval_report_json(r).c_str());
  return 0;
}

int run_prompt_search(const std::string& config_path, const std::vector<std::string>& overrides,
                      const EvalArgs& args) {
  const config::ExperimentConfig cfg = config::load_config(config_path, overrides);
  const std::vector<trainer::PromptScore> ranked = trainer::prompt_search(cfg, args.options);
  const bool by_loss = cfg.prompt_search.metric == config::PromptMetric::kLoss;
  const std::string metric(config::name_of(cfg.prompt_search.metric));
  // With a held-out split, the ranking columns are the search split's and the held-out
  // split's follow (decision 49).
  const bool split = cfg.prompt_search.search_records > 0;
  std::printf("%-4s %-24s %10s %10s", "rank", "prompt", split ? "search loss" : "dev loss",
              by_loss ? "" : metric.c_str());
  if (split)
    std::printf(" %12s %12s", "held-out loss", by_loss ? "" : ("held-out " + metric).c_str());
  std::printf("\n");
  for (std::size_t i = 0; i < ranked.size(); ++i) {
    const trainer::PromptScore& r = ranked[i];
    std::printf("%-4zu %-24s %10.4f %10s", i + 1, r.name.c_str(), r.loss,
                by_loss ? "" : fmt::format("{:.4f}", r.score).c_str());
    if (split)
      std::printf(" %12.4f %12s", r.heldout_loss.value_or(0.0),
                  by_loss ? "" : fmt::format("{:.4f}", r.heldout_score.value_or(0.0)).c_str());
    std::printf("\n");
  }
  // The ranking as one JSON line, as `tailor eval` ends with its report: for scripts.
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t i = 0; i < ranked.size(); ++i) {
    const trainer::PromptScore& r = ranked[i];
    nlohmann::json row{{"rank", i + 1}, {"prompt", r.name}, {"loss", r.loss}};
    if (!by_loss) row[metric] = r.score;
    if (r.heldout_loss) row["heldout_loss"] = *r.heldout_loss;
    if (r.heldout_score && !by_loss) row["heldout_" + metric] = *r.heldout_score;
    rows.push_back(std::move(row));
  }
  std::printf("%s\n", nlohmann::json{{"metric", metric}, {"ranking", rows}}.dump().c_str());
  if (!args.write_best.empty()) {
    const config::ExperimentConfig best = ranked.front().variant != nullptr
                                              ? *ranked.front().variant
                                              : trainer::with_candidate(cfg, ranked.front().name);
    trainer::write_file_atomic(args.write_best, config::to_yaml(best));
    std::printf("best: %s (written to %s)\n", ranked.front().name.c_str(), args.write_best.c_str());
  }
  return 0;
}

}  // namespace tailor::cli
