#include "trainer/evaluation.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/inspect.h"
#include "core/logging.h"
#include "data/corpus_builder.h"
#include "data/packing.h"
#include "eval/generate.h"
#include "eval/generation_prompt.h"
#include "trainer/checkpointing.h"
#include "trainer/device.h"
#include "trainer/from_config.h"
#include "trainer/model_builder.h"
#include "trainer/prepare.h"
#include "trainer/run_support.h"

namespace tailor::trainer {
namespace {

// The model under evaluation, with the tokenizer it was trained with.
struct LoadedModel {
  std::unique_ptr<backend::Ops> ops;
  std::unique_ptr<model::Transformer> model;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::int64_t step = 0;
};

LoadedModel load_model(const config::ExperimentConfig& cfg, const EvalOptions& o) {
  LoadedModel m;
  config::RuntimeConfig runtime = cfg.runtime;
  runtime.device = o.device;
  // A run trained in f64 on the CPU is evaluated on a GPU in its default precision.
  const bool gpu = o.device == config::RuntimeDevice::kCuda ||
                   (o.device == config::RuntimeDevice::kAuto && visible_gpus() > 0);
  if (gpu && runtime.dtype == config::RuntimeDType::kF64) runtime.dtype = config::RuntimeDType::kAuto;
  m.ops = make_ops(runtime, o.threads > 0 ? o.threads : static_cast<int>(cfg.runtime.threads),
                   "--device");
  if (!o.checkpoint.empty()) {
    CheckpointModel cm = load_checkpoint_model(checkpoint::resolve_checkpoint_dir(o.checkpoint), *m.ops);
    m.model = std::move(cm.model);
    m.tokenizer = std::move(cm.tokenizer);
    m.step = cm.manifest.step;
    if (cm.cfg.data.tokenizer != cfg.data.tokenizer || cm.cfg.model.path != cfg.model.path)
      log::warn("the checkpoint was trained with data.tokenizer {} / model.path '{}'; evaluating "
                "with its tokenizer",
                cm.cfg.data.tokenizer, cm.cfg.model.path);
  } else {
    const ModelSetup setup = model_setup(cfg);
    m.model = build_model(cfg, setup, *m.ops, nullptr, InitialWeights::kStart);
    m.tokenizer = tokenizer_from_config(cfg);
  }
  return m;
}

std::string dev_path(const config::ExperimentConfig& cfg, const EvalOptions& o) {
  const std::string path = o.data.empty() ? cfg.data.valid : o.data;
  TAILOR_CHECK_USER(!path.empty(), cfg.source,
                    "data.valid: evaluation needs dev data (data.valid, or --data FILE.jsonl)");
  return path;
}

// Mean NLL over the loss-carrying tokens of the dev records (packed as training packs them).
struct DevLoss {
  double loss = 0.0;
  std::int64_t count = 0;
  std::vector<std::pair<std::string, double>> objective;  // the objective's own statistics
};

DevLoss dev_loss(LoadedModel& m, const config::ExperimentConfig& cfg, const std::string& path,
                 int threads) {
  data::CorpusSpec spec = corpus_spec_from_config(cfg, std::max(1, threads));
  spec.sources = {{path, 1.0}};
  spec.format = data::DataFormat::kJsonl;
  data::CorpusStats stats;
  const data::TokenizedCorpus corpus = data::build_corpus(spec, *m.tokenizer, stats);
  const data::PackedSequences packed(
      corpus, cfg.data.seq_len, path, m.model->virtual_tokens(), packing_mode_from_config(cfg),
      data::pad_token_id(m.tokenizer->eos_token_id().value_or(-1)));
  comm::SelfCommunicator one_rank;
  // DPO compares with the starting model: the base with the adapters disabled under PEFT,
  // otherwise the starting model itself, built as training built it.
  std::unique_ptr<model::Transformer> reference;
  if (needs_reference_model(cfg.objective) && cfg.peft.method == config::PeftMethod::kNone)
    reference = build_model(cfg, model_setup(cfg), *m.ops, nullptr, InitialWeights::kStart);
  const std::unique_ptr<objective::Objective> obj =
      objective_from_config(cfg.objective, reference.get());
  const objective::EvalLoss r = obj->evaluate(*m.model, packed, one_rank);
  return {r.loss, r.count, obj->eval_metrics()};
}

using Generated = DevAnswers;

// Greedy generation for the records with a reference, with the config's template.
Generated generate_dev(LoadedModel& m, const config::ExperimentConfig& cfg, const std::string& path,
                       const EvalOptions& o) {
  const std::vector<eval::GenerationPrompt> prompts =
      dev_generation_prompts(cfg, path, *m.tokenizer, *m.model, o.max_records,
                             o.keep_unanswerable);
  return generate_dev_answers(*m.model, *m.tokenizer, cfg, prompts, o.max_new_tokens,
                              /*log_progress=*/true);
}

void write_hypotheses(const std::string& path, const Generated& g) {
  std::ofstream f(path);
  for (std::size_t i = 0; i < g.hypotheses.size(); ++i)
    f << nlohmann::json{{"prompt", g.prompts[i]},
                        {"reference", g.references[i]},
                        {"hypothesis", g.hypotheses[i]}}
             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
      << "\n";
  if (!f) throw_runtime_error("{}: cannot write", path);
}

double metric_value(const eval::CorpusMetrics& m, config::PromptMetric metric) {
  const std::optional<config::EvalMetric> e = config::from_name<config::EvalMetric>(
      config::name_of(metric));
  TAILOR_ASSERT(e.has_value(), "prompt_search.metric {} is not a generation metric", metric);
  return trainer::metric_value(m, *e);
}

}  // namespace

std::vector<eval::GenerationPrompt> dev_generation_prompts(const config::ExperimentConfig& cfg,
                                                           const std::string& path,
                                                           const data::Tokenizer& tokenizer,
                                                           const model::Transformer& model,
                                                           std::int64_t max_records,
                                                           bool keep_unanswerable) {
  const data::TemplateSpec tmpl = corpus_spec_from_config(cfg, 1).tmpl;
  std::vector<eval::GenerationPrompt> prompts;
  // A prompt must leave room for at least one generated token within the model's positions (its
  // virtual tokens included); longer ones are counted and skipped.
  const std::int64_t room = model.spec().max_position_embeddings - model.virtual_tokens() - 1;
  std::int64_t too_long = 0;
  for (const data::Record& r : eval::read_generation_records(path)) {
    eval::GenerationPrompt p = eval::generation_prompt(r, tmpl, tokenizer);
    if (!p.reference || p.ids.empty()) continue;
    if (static_cast<std::int64_t>(p.ids.size()) > room) {
      ++too_long;
      if (!keep_unanswerable) continue;
      p.ids.clear();  // answered "" (wrong) by generate_dev_answers
    }
    prompts.push_back(std::move(p));
    if (max_records > 0 && static_cast<std::int64_t>(prompts.size()) >= max_records) break;
  }
  if (too_long > 0)
    log::warn("{}: {} records {} for generation: their prompts leave no room within the "
              "model's {} positions",
              path, too_long, keep_unanswerable ? "answered empty (scored wrong)" : "skipped",
              model.spec().max_position_embeddings);
  return prompts;
}

DevAnswers generate_dev_answers(model::Transformer& model, const data::Tokenizer& tokenizer,
                                const config::ExperimentConfig& cfg,
                                const std::vector<eval::GenerationPrompt>& prompts,
                                std::int64_t max_new_tokens, bool log_progress) {
  DevAnswers g;
  if (prompts.empty()) return g;
  const data::TemplateSpec tmpl = corpus_spec_from_config(cfg, 1).tmpl;
  eval::GenerateOptions go;
  go.max_new_tokens = max_new_tokens;
  go.max_length = model.spec().max_position_embeddings;
  go.stop_ids = eval::response_end_ids(tmpl.preset, tokenizer);
  constexpr std::size_t kBatch = 8;
  for (std::size_t b = 0; b < prompts.size(); b += kBatch) {
    const std::size_t e = std::min(prompts.size(), b + kBatch);
    std::vector<std::vector<std::int32_t>> ids;
    for (std::size_t i = b; i < e; ++i)
      if (!prompts[i].ids.empty()) ids.push_back(prompts[i].ids);  // (empty: unanswerable)
    std::vector<eval::Completion> out;
    if (!ids.empty()) out = eval::generate(model, &tokenizer, ids, go, {}, b);
    std::size_t k = 0;
    for (std::size_t i = b; i < e; ++i) {
      g.prompts.push_back(prompts[i].prompt);
      g.hypotheses.push_back(prompts[i].ids.empty()
                                 ? std::string()
                                 : eval::final_answer(prompts[i], out[k++].text));
      g.references.push_back(*prompts[i].reference);
    }
    if (log_progress) log::info("generated {}/{} dev answers", e, prompts.size());
  }
  return g;
}

double metric_value(const eval::CorpusMetrics& m, config::EvalMetric metric) {
  switch (metric) {
    case config::EvalMetric::kBleu: return m.bleu.score;
    case config::EvalMetric::kChrf: return m.chrf.score;
    case config::EvalMetric::kRougeL: return m.rouge_l;
    case config::EvalMetric::kExactMatch: return m.exact_match;
  }
  TAILOR_ASSERT(false, "unknown metric {}", static_cast<int>(metric));
  return 0.0;
}

std::string eval_report_json(const EvalReport& r) {
  nlohmann::ordered_json j;
  j["step"] = r.step;
  j["eval_loss"] = r.loss;
  j["eval_ppl"] = r.ppl;
  j["eval_tokens"] = r.tokens;
  j["records"] = r.records;
  for (const auto& [name, value] : r.objective) j["eval_" + name] = value;
  if (r.metrics) {
    const nlohmann::ordered_json m = nlohmann::ordered_json::parse(eval::metrics_json(*r.metrics));
    for (const auto& [k, v] : m.items()) j[k] = v;
  }
  return j.dump();
}

EvalReport evaluate(const config::ExperimentConfig& cfg, const EvalOptions& o) {
  const std::string path = dev_path(cfg, o);
  LoadedModel m = load_model(cfg, o);
  EvalReport r;
  r.step = m.step;
  DevLoss dev = dev_loss(m, cfg, path, o.threads);
  r.loss = dev.loss;
  r.tokens = dev.count;
  r.objective = std::move(dev.objective);
  r.ppl = std::exp(r.loss);
  if (r.objective.empty()) {
    log::info("eval: loss {:.4f}, perplexity {:.3f} over {} tokens of {}", r.loss, r.ppl, r.tokens,
              path);
  } else {
    std::string stats;
    for (const auto& [name, value] : r.objective) stats += fmt::format(", {} {:.4f}", name, value);
    log::info("eval: loss {:.4f} over {} pairs of {}{}", r.loss, r.tokens, path, stats);
  }
  if (o.generate) {
    const Generated g = generate_dev(m, cfg, path, o);
    r.records = static_cast<std::int64_t>(g.hypotheses.size());
    if (!g.hypotheses.empty()) {
      const std::vector<std::vector<std::string>> refs{g.references};
      r.metrics = eval::compute_metrics(g.hypotheses, refs);
      if (!o.hypotheses_out.empty()) write_hypotheses(o.hypotheses_out, g);
    } else {
      log::warn("{}: no record carries a reference answer: no generation metrics", path);
    }
  }
  return r;
}

config::ExperimentConfig with_candidate(const config::ExperimentConfig& cfg, const std::string& name) {
  config::ExperimentConfig out = cfg;
  for (const config::PromptCandidateConfig& c : cfg.prompt_search.candidates)
    if (c.name == name) out.data.prompt_template = c.tmpl;
  return out;
}

namespace {

// The dev file split for prompt_search.search_records: a seeded shuffle of its non-empty lines,
// the first `n` the search split, the rest held out, written as two JSONL files in a private
// directory removed when this goes out of scope.
struct DevSplit {
  std::filesystem::path dir;
  std::string search, heldout;
  std::int64_t search_count = 0, heldout_count = 0;
  DevSplit() = default;
  DevSplit(const DevSplit&) = delete;
  DevSplit& operator=(const DevSplit&) = delete;
  ~DevSplit() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};

void split_dev(const config::ExperimentConfig& cfg, const std::string& path, DevSplit& out) {
  const std::int64_t n = cfg.prompt_search.search_records;
  std::ifstream in(path);
  TAILOR_CHECK_USER(in.good(), path, "cannot read the dev data");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  TAILOR_CHECK_USER(static_cast<std::int64_t>(lines.size()) > n, cfg.source,
                    "prompt_search.search_records: {} leaves no held-out records ({} has {})", n,
                    path, lines.size());
  // Fisher-Yates with the engine's raw output (std::shuffle's use of it is not portable).
  std::mt19937_64 rng(cfg.train.seed ^ 0x70726f6d70747353ULL);
  for (std::size_t i = lines.size(); i > 1; --i) std::swap(lines[i - 1], lines[rng() % i]);
  out.dir = std::filesystem::temp_directory_path() /
            fmt::format("tailor-prompt-search.{}.{}", ::getpid(), rng());
  std::filesystem::create_directories(out.dir);
  out.search = (out.dir / "search.jsonl").string();
  out.heldout = (out.dir / "heldout.jsonl").string();
  std::ofstream s(out.search), h(out.heldout);
  for (std::size_t i = 0; i < lines.size(); ++i)
    (static_cast<std::int64_t>(i) < n ? s : h) << lines[i] << '\n';
  s.close();
  h.close();
  if (!s.good() || !h.good()) throw_runtime_error("cannot write the dev split under {}", out.dir.string());
  out.search_count = n;
  out.heldout_count = static_cast<std::int64_t>(lines.size()) - n;
}

// One candidate's dev loss and, for a generation metric, its metrics and score on `path`.
struct SplitScore {
  double loss = 0.0;
  std::optional<eval::CorpusMetrics> metrics;
  double score = 0.0;
};

SplitScore score_on(LoadedModel& m, const config::ExperimentConfig& variant,
                    const std::string& path, const EvalOptions& o, const EvalOptions& go) {
  const config::PromptSearchConfig& ps = variant.prompt_search;
  SplitScore s;
  s.loss = dev_loss(m, variant, path, o.threads).loss;
  if (ps.metric == config::PromptMetric::kLoss) {
    s.score = s.loss;
  } else {
    const Generated g = generate_dev(m, variant, path, go);
    TAILOR_CHECK_USER(!g.hypotheses.empty(), path,
                      "prompt_search.metric {} needs records with reference answers", ps.metric);
    const std::vector<std::vector<std::string>> refs{g.references};
    s.metrics = eval::compute_metrics(g.hypotheses, refs);
    s.score = metric_value(*s.metrics, ps.metric);
  }
  return s;
}

}  // namespace

namespace {

// cfg with exactly these demonstrations before every prompt.
config::ExperimentConfig with_shots(const config::ExperimentConfig& cfg,
                                    const std::vector<data::FewShotExample>& pool,
                                    const std::vector<std::size_t>& picks) {
  config::ExperimentConfig v = cfg;
  v.data.prompt_template.few_shot.clear();
  v.data.prompt_template.few_shot_file.clear();
  v.data.prompt_template.few_shot_count = 0;
  for (const std::size_t i : picks)
    v.data.prompt_template.few_shot.push_back({pool[i].prompt, pool[i].completion});
  return v;
}

// "shots 3,1,7": the pool lines (1-based) of the demonstrations, in their order.
std::string shots_name(const char* prefix, const std::vector<std::size_t>& picks) {
  std::vector<std::size_t> lines;
  for (const std::size_t i : picks) lines.push_back(i + 1);
  return fmt::format("{} {}", prefix, fmt::join(lines, ","));
}

}  // namespace

std::vector<PromptScore> prompt_search(const config::ExperimentConfig& cfg, const EvalOptions& o) {
  const config::PromptSearchConfig& ps = cfg.prompt_search;
  const bool few_shot = ps.strategy == config::PromptStrategy::kFewShot;
  TAILOR_CHECK_USER(few_shot || !ps.candidates.empty(), cfg.source,
                    "prompt_search.candidates: list the prompts to compare (see docs/evaluation.md)");
  std::vector<data::FewShotExample> pool;
  if (few_shot) {
    pool = read_few_shot_file(ps.pool);
    TAILOR_CHECK_USER(!pool.empty(), ps.pool, "no demonstrations");
    TAILOR_CHECK_USER(ps.shots <= static_cast<std::int64_t>(pool.size()), "prompt_search.shots",
                      "{} demonstrations asked for, the pool {} has {}", ps.shots, ps.pool,
                      pool.size());
  }
  const std::string path = dev_path(cfg, o);
  DevSplit split;
  if (ps.search_records > 0) {
    split_dev(cfg, path, split);
    log::info("prompt search: {} search records, {} held-out records (train.seed {})",
              split.search_count, split.heldout_count, cfg.train.seed);
  }
  LoadedModel m = load_model(cfg, o);
  EvalOptions go = o;
  go.max_records = ps.max_records;
  go.max_new_tokens = ps.max_new_tokens;
  go.keep_unanswerable = true;  // every candidate on the same records (a long prompt scores 0)
  // Evaluations planned, for the progress line: base, the candidates or the greedy steps and the
  // random draws.
  std::size_t planned = 1 + ps.candidates.size();
  if (few_shot) {
    planned = 1 + static_cast<std::size_t>(ps.random_seeds);
    for (std::int64_t k = 0; k < ps.shots; ++k) planned += pool.size() - static_cast<std::size_t>(k);
  }
  std::size_t done = 0;
  const auto t0 = Clock::now();
  // Scores one variant on the search split (and, when `held_out`, on the held-out split too).
  const auto score = [&](const std::string& name, const config::ExperimentConfig& variant,
                         bool held_out) {
    PromptScore s;
    s.name = name;
    const SplitScore search = score_on(m, variant, split.search.empty() ? path : split.search, o, go);
    s.loss = search.loss;
    s.metrics = search.metrics;
    s.score = search.score;
    if (held_out && !split.heldout.empty()) {
      const SplitScore held = score_on(m, variant, split.heldout, o, go);
      s.heldout_loss = held.loss;
      s.heldout_metrics = held.metrics;
      s.heldout_score = held.score;
    }
    // Progress: evaluations done, the time so far and what the rest should take at that pace.
    ++done;
    const double elapsed = seconds_since(t0);
    const double left =
        elapsed / static_cast<double>(done) * static_cast<double>(planned - std::min(done, planned));
    log::info("prompt {}/{} '{}': {}dev loss {:.4f}{}{} | {:.1f} s, ETA {:.1f} s", done, planned,
              name, split.heldout.empty() ? "" : "search ", s.loss,
              s.metrics ? fmt::format(", {} {:.4f}", ps.metric, s.score) : "",
              s.heldout_score ? fmt::format("; held-out {} {:.4f}", ps.metric, *s.heldout_score)
                              : "",
              elapsed, left);
    return s;
  };
  const bool lower_better = ps.metric == config::PromptMetric::kLoss;
  const auto better = [&](const PromptScore& a, const PromptScore& b) {
    return lower_better ? a.score < b.score : a.score > b.score;
  };
  // The budget of the search proper (decision 50): listed candidates and greedy tries.
  std::int64_t spent = 0;
  bool stopped = false;
  const auto within_budget = [&] {
    const bool ok = (ps.max_evaluations == 0 || spent < ps.max_evaluations) &&
                    (ps.max_seconds <= 0.0 || seconds_since(t0) < ps.max_seconds);
    if (!ok && !stopped) {
      stopped = true;
      log::warn("prompt search: budget reached ({} evaluations, {:.1f} s): the search stops with "
                "what it has",
                spent, seconds_since(t0));
    }
    return ok;
  };
  std::vector<PromptScore> out;
  out.push_back(score("base", cfg, true));
  if (!few_shot) {
    for (const config::PromptCandidateConfig& c : ps.candidates) {
      if (!within_budget()) break;
      ++spent;
      out.push_back(score(c.name, with_candidate(cfg, c.name), true));
    }
  } else {
    // Greedy forward selection: each step appends the demonstration whose addition scores best
    // on the search split (the first in pool order on a tie).
    std::vector<std::size_t> chosen;
    std::optional<PromptScore> best;
    for (std::int64_t k = 0; k < ps.shots; ++k) {
      std::optional<std::pair<std::size_t, PromptScore>> step;
      for (std::size_t i = 0; i < pool.size(); ++i) {
        if (std::find(chosen.begin(), chosen.end(), i) != chosen.end()) continue;
        if (!within_budget()) break;
        ++spent;
        std::vector<std::size_t> picks = chosen;
        picks.push_back(i);
        PromptScore s = score(shots_name("try", picks), with_shots(cfg, pool, picks), false);
        if (!step || better(s, step->second)) step.emplace(i, std::move(s));
      }
      if (!step) break;  // the budget ran out before this step tried anything
      chosen.push_back(step->first);
      log::info("few-shot step {}/{}: demonstration {} of {} added", k + 1, ps.shots,
                step->first + 1, ps.pool);
      if (stopped) break;
    }
    if (!chosen.empty()) {
      const config::ExperimentConfig greedy = with_shots(cfg, pool, chosen);
      ++planned;  // the winner scored again, with its held-out split
      PromptScore g = score(shots_name("greedy", chosen), greedy, true);
      g.variant = std::make_shared<const config::ExperimentConfig>(greedy);
      out.push_back(std::move(g));
    }
    // The baseline: random draws of the same number, by seed.
    for (std::int64_t seed = 1; seed <= ps.random_seeds; ++seed) {
      const std::vector<std::size_t> picks =
          data::choose_few_shot_indices(pool.size(), ps.shots, static_cast<std::uint64_t>(seed));
      const config::ExperimentConfig v = with_shots(cfg, pool, picks);
      PromptScore r = score(fmt::format("random{} {}", seed, shots_name("", picks).substr(1)), v,
                            true);
      r.variant = std::make_shared<const config::ExperimentConfig>(v);
      out.push_back(std::move(r));
    }
  }
  std::stable_sort(out.begin(), out.end(), better);
  return out;
}

}  // namespace tailor::trainer
