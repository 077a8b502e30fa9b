#include "trainer/training_run.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <thread>

#include "backend/cpu/cpu_ops.h"
#include "core/logging.h"
#include "core/sha256.h"
#include "eval/metrics.h"
#include "trainer/evaluation.h"
#include "trainer/export.h"
#include "trainer/from_config.h"
#include "trainer/preflight.h"
#include "trainer/prepare.h"
#include "trainer/progress.h"
#include "trainer/run_dir.h"
#include "trainer/stop_signals.h"

namespace tailor::trainer {

TrainingRun::TrainingRun(const config::ExperimentConfig& config,
                         std::unique_ptr<comm::Communicator> world, const TrainOptions& options)
    : cfg_(config), options_(options), t_start_(Clock::now()), world_(std::move(world)) {
  if (!world_) world_ = std::make_unique<comm::SelfCommunicator>();
  writer_ = world_->rank() == 0;
}

TrainingRun::~TrainingRun() = default;

TrainSummary TrainingRun::run() {
  // Every check that needs no computation first, all problems at once (world rank 0; a problem
  // ends the whole job): the same checks as `tailor validate`.
  if (world_->rank() == 0) preflight(cfg_, {world_->size(), options_.overwrite});
  // The model's definition: its shape decides the layout.
  setup_ = model_setup(cfg_);
  resolve_layout(cfg_, setup_.hf.spec, world_->size());
  build_data();
  resolve_length();
  build_model();
  resume();
  open_run_dir();
  log_setup();
  {
    const StopSignals signals;  // until the end of the run, export included
    loop();
    if (!summary_.stopped) {
      // The final evaluation, when the loop did not end with one (a resumed run that had
      // finished already).
      if (valid_packed_ && last_eval_step_ != run_state_.step && !summary_.stopped_early)
        summary_.eval_loss = evaluate(run_state_.step);
      export_final();
      collect_parameters();
      log::info("done: {} steps in {}; run directory {}", run_state_.step - start_step_,
                format_duration(seconds_since(t_start_)), cfg_.output.dir);
      if (run_state_.best_step > 0)
        log::info("best {}: {:.4f} at step {} (checkpoints/best; export it with `tailor export "
                  "--checkpoint {}/checkpoints/best --out DIR`)",
                  cfg_.checkpoint.keep_best, run_state_.best_value, run_state_.best_step,
                  cfg_.output.dir);
    }
    summary_.best_step = run_state_.best_step;
    summary_.best_value = run_state_.best_value;
  }
  watchdog_.reset();
  return std::move(summary_);
}

void TrainingRun::build_data() {
  tokenizer_ = tokenizer_from_config(cfg_);  // (preflight checked that it fits the vocabulary)
  if (!setup_.from_hf) {  // an exported config-defined model names its tokenizer's special ids
    setup_.hf.bos_token_id = tokenizer_->bos_token_id().value_or(-1);
    setup_.hf.eos_token_id = tokenizer_->eos_token_id().value_or(-1);
  }
  // World rank 0 builds the tokenized cache (tmp + rename) while the others wait, then they find
  // it (on a shared file system; elsewhere they build their own copy).
  comm::Communicator& world = *world_;
  const auto prepare_once = [&](const config::ExperimentConfig& c) {
    std::optional<data::CachedCorpus> out;
    if (world.rank() == 0) out = prepare_data(c, *tokenizer_, threads_per_rank(c, world.size()));
    world.barrier();
    if (world.rank() != 0) out = prepare_data(c, *tokenizer_, threads_per_rank(c, world.size()));
    return std::move(*out);
  };
  cached_ = prepare_once(cfg_);
  // Validation data: a file of its own (prepared like the training data), or held-out documents.
  if (cfg_.data.valid_fraction > 0.0) {
    TAILOR_CHECK_USER(cached_->corpus.num_documents() >= 2, cfg_.data.train,
                      "data.valid_fraction needs at least 2 documents to split, got {}",
                      cached_->corpus.num_documents());
    data::TrainValidSplit split =
        data::split_validation(cached_->corpus, cfg_.data.valid_fraction, cfg_.train.seed);
    train_part_ = std::move(split.train);
    valid_corpus_ = std::move(split.valid);
  } else if (!cfg_.data.valid.empty()) {
    config::ExperimentConfig vcfg = cfg_;
    vcfg.data.train = cfg_.data.valid;
    vcfg.data.sources = {{cfg_.data.valid, 1.0}};
    valid_cached_ = prepare_once(vcfg);
  }
  corpus_ = valid_corpus_ ? data::CorpusView(train_part_) : cached_->corpus;
  // Prompt tuning: the virtual tokens open every document of a row (packing.h).
  const std::int64_t n_virtual = setup_.virtual_tokens();
  // data.packing: pad puts each document in sequences of its own, padded (packing.h).
  const data::PackingMode packing = packing_mode_from_config(cfg_);
  const std::int32_t pad_id = data::pad_token_id(tokenizer_->eos_token_id().value_or(-1));
  packed_.emplace(corpus_, cfg_.data.seq_len, cfg_.data.train, n_virtual, packing, pad_id);
  if (valid_corpus_)
    valid_packed_.emplace(*valid_corpus_, cfg_.data.seq_len, "data.valid_fraction", n_virtual,
                          packing, pad_id);
  else if (valid_cached_)
    valid_packed_.emplace(valid_cached_->corpus, cfg_.data.seq_len, cfg_.data.valid, n_virtual,
                          packing, pad_id);
  order_.emplace(packed_->size(), cfg_.train.seed);
}

void TrainingRun::resolve_length() {
  config::TrainConfig& t = cfg_.train;
  const std::int64_t n = packed_->size();
  if (t.epochs > 0) {
    t.steps = steps_for_epochs(t.epochs, n, t.global_batch);
    TAILOR_CHECK_USER(cfg_.schedule.warmup_steps < t.steps, cfg_.source,
                      "schedule.warmup_steps ({}) must be < train.steps ({}: train.epochs {} of "
                      "{} sequences, {} per step); use schedule.warmup_ratio",
                      cfg_.schedule.warmup_steps, t.steps, t.epochs, n, t.global_batch);
  }
  if (n < t.global_batch)
    log::warn("data: {} packed sequences, fewer than one global batch (train.global_batch {}): "
              "every step repeats sequences (an epoch is {:.2f} steps)",
              n, t.global_batch, static_cast<double>(n) / static_cast<double>(t.global_batch));
}

void TrainingRun::build_model() {
  grid_ = std::make_unique<comm::ProcessGrid>(std::move(world_), static_cast<int>(cfg_.parallel.tensor),
                                              static_cast<int>(cfg_.parallel.data));
  comm::ProcessGrid& grid = *grid_;
  ops_ = make_ops(cfg_.runtime, threads_per_rank(cfg_, grid.world().size()), cfg_.source);
  backend::Ops& ops = *ops_;
  dtype_ = compute_dtype(cfg_.runtime, ops.device());
  TAILOR_CHECK_USER(cfg_.optimizer.moments != config::MomentsDType::kBF16 ||
                        ops.device() != backend::Device::kCpu,
                    cfg_.source, "optimizer.moments bf16 needs a GPU (runtime.device {} ran on the "
                    "CPU, which keeps f32 moments)", cfg_.runtime.device);
  // Device tensors travel over NCCL when every rank has its own GPU (host scalars stay on MPI).
  device_comms_ = device_communicators(ops, grid);
  comm::Communicator& tp_comm = device_comms_.tp ? *device_comms_.tp : grid.tp();
  comm::Communicator& dp_comm = device_comms_.dp ? *device_comms_.dp : grid.dp();
  model_ = trainer::build_model(cfg_, setup_, ops, &tp_comm, InitialWeights::kStart);
  model_->set_recompute(recompute_from_config(cfg_.train));
  {
    const model::TpLayout& tp = model_->tp_layout();
    backend::AttentionDims d;
    d.batch = cfg_.train.micro_batch;
    d.seq = d.keys = cfg_.data.seq_len;
    d.hq = tp.q_heads;
    d.hkv = tp.kv_heads;
    d.dh = setup_.hf.spec.head_dim;
    attention_line_ = select_attention(ops, cfg_.runtime, dtype_, d, cfg_.source);
  }
  model_->set_loss_chunk_tokens(cfg_.runtime.loss_chunk_tokens);
  optimizer_ = std::make_unique<optim::DataParallelOptimizer>(
      ops, model_->params(), dp_comm, tp_comm, optimizer_spec_from_config(cfg_.optimizer),
      optim::DataParallelSpec{cfg_.optimizer.zero == 1, options_.dp_bucket_elements > 0
                                                            ? options_.dp_bucket_elements
                                                            : 1 << 22});
  schedule_ = schedule_spec_from_config(cfg_);
  objective_ = objective_from_config(
      cfg_.objective,
      needs_reference_model(cfg_.objective) ? reference_source(tp_comm) : nullptr);
  // train.eval_metrics: the dev prompts answered at every evaluation, rendered once.
  if (!cfg_.train.eval_metrics.empty()) {
    dev_prompts_ = dev_generation_prompts(cfg_, cfg_.data.valid, *tokenizer_, *model_,
                                          cfg_.train.eval_max_records);
    TAILOR_CHECK_USER(!dev_prompts_.empty(), cfg_.data.valid,
                      "no record carries a reference answer for train.eval_metrics to score "
                      "(translation tgt, completion, or a final assistant turn)");
  }
}

namespace {

// What decides a precomputed reference value besides the rows themselves: the starting model
// (its definition and weights: the files' identity, sizes and modification times), the numbers'
// format and path (dtype, backend, attention, tensor-parallel degree, micro-batch). Any change
// is another file; the old one is left for `tailor prepare --clean`-style removal by the user.
std::string reference_key(const config::ExperimentConfig& cfg, const model::ModelSpec& spec,
                          std::string_view backend, std::string_view attention, DType dtype,
                          int tp, const std::string& data_dir) {
  std::string weights = base_model_identity(cfg);
  if (!cfg.model.path.empty()) {
    std::vector<std::string> stamps;
    for (const auto& e : std::filesystem::directory_iterator(cfg.model.path)) {
      std::error_code ec;
      const auto t = std::filesystem::last_write_time(e.path(), ec);
      stamps.push_back(fmt::format("{}@{}", e.path().filename().string(),
                                   ec ? 0 : t.time_since_epoch().count()));
    }
    std::sort(stamps.begin(), stamps.end());
    for (const std::string& st : stamps) weights += ";" + st;
  }
  return sha256_hex(fmt::format(
      "tailor reference v1\ndata {}\nmodel {}\nweights {}\ninit seed {}\ndtype {}\n"
      "backend {}\n{}\ntp {}\nmicro_batch {}\n",
      std::filesystem::path(data_dir).filename().string(), spec.summary(), weights,
      cfg.model.path.empty() ? cfg.train.seed : 0, dtype_name(dtype), backend, attention, tp,
      cfg.train.micro_batch)).substr(0, 16);
}

}  // namespace

std::unique_ptr<objective::ReferenceSource> TrainingRun::reference_source(
    comm::Communicator& tp_comm) {
  const bool peft = setup_.method != nullptr;
  config::ReferenceMode mode = cfg_.objective.reference;
  if (mode == config::ReferenceMode::kAuto)
    mode = peft ? config::ReferenceMode::kModel : config::ReferenceMode::kPrecomputed;
  if (mode == config::ReferenceMode::kModel) {
    if (peft) return objective::adapters_off_reference();
    // A frozen copy of the starting model (its weights as this stage built them, before a
    // resume loads the trained ones).
    reference_ = trainer::build_model(cfg_, setup_, *ops_, &tp_comm, InitialWeights::kStart);
    reference_->set_recompute(recompute_from_config(cfg_.train));
    return objective::model_reference(*reference_);
  }
  // Precomputed: the policy holds the starting weights now (a resume loads the trained ones
  // later); under PEFT its adapters are off for the pass.
  comm::Communicator& world = grid_->world();
  const std::int32_t pad_id = data::pad_token_id(tokenizer_->eos_token_id().value_or(-1));
  const std::string key = reference_key(cfg_, setup_.hf.spec, ops_->describe(),
                                        attention_line_.substr(0, attention_line_.find(" (")),
                                        dtype_, grid_->tp_size(), cached_->dir);
  struct Part {
    const data::CachedCorpus* cache;
    std::string name;
  };
  std::vector<Part> parts{{&*cached_, cfg_.data.train}};
  if (valid_cached_) parts.push_back({&*valid_cached_, cfg_.data.valid});
  auto table = std::make_unique<objective::ReferenceTable>();
  std::unique_ptr<objective::ReferenceSource> off = objective::adapters_off_reference();
  for (const Part& part : parts) {
    const std::string path = part.cache->dir + "/reference-" + key + ".bin";
    std::optional<objective::ReferenceTable> found = objective::ReferenceTable::load(path);
    // Every rank reads or every rank computes (the pass is collective).
    if (world.all_reduce_sum(static_cast<std::int64_t>(found.has_value())) == world.size()) {
      log::info("reference: {} log-probabilities of the starting model read from {}",
                found->size(), path);
      table->merge(*found);
      continue;
    }
    const data::PackedSequences pairs(part.cache->corpus, cfg_.data.seq_len, part.name, 0,
                                      data::PackingMode::kPairs, pad_id);
    log::info("reference: computing the starting model's log-probabilities of {} pairs of {} "
              "(once; cached in {})", pairs.size(), part.name, path);
    const auto t0 = Clock::now();
    auto last = t0;
    const auto progress = [&](std::int64_t done, std::int64_t total) {
      if (seconds_since(last) < 10.0 || done >= total) return;
      last = Clock::now();
      const double el = seconds_since(t0);
      log::info("reference: {}/{} pairs ({:.0f}%), {:.0f} s left", done, total,
                100.0 * static_cast<double>(done) / static_cast<double>(total),
                el * static_cast<double>(total - done) / static_cast<double>(std::max<std::int64_t>(done, 1)));
    };
    const std::int64_t per_batch = std::max<std::int64_t>(cfg_.train.micro_batch / 2, 1);
    objective::ReferenceTable computed = objective::precompute_reference(
        *off, *model_, pairs, grid_->dp(), per_batch, progress);
    log::info("reference: {} rows in {:.1f} s", computed.size(), seconds_since(t0));
    if (world.rank() == 0) computed.save(path);
    table->merge(computed);
  }
  return table;
}

void TrainingRun::resume() {
  comm::ProcessGrid& grid = *grid_;
  ckpt_.cfg = &cfg_;
  ckpt_.model = model_.get();
  ckpt_.optimizer = optimizer_.get();
  ckpt_.grid = &grid;
  ckpt_.ops = ops_.get();
  // The attention path is part of the numbers: a resume under the other one warns.
  ckpt_.determinism_backend =
      ops_->device() == backend::Device::kCpu
          ? ops_->describe()
          : fmt::format("{}; {}", ops_->describe(),
                        attention_line_.substr(0, attention_line_.find(" (")));
  ckpt_.base_identity = setup_.method != nullptr ? base_model_identity(cfg_) : "";
  ckpt_.data_fingerprint = std::filesystem::path(cached_->dir).filename().string();
  run_state_.seed = cfg_.train.seed;
  const std::optional<std::string> resume_dir = resume_point(cfg_, grid.world());
  if (resume_dir) {
    const auto t_load = Clock::now();
    const checkpoint::Manifest manifest = checkpoint::read_manifest(*resume_dir);
    run_state_ = load_training_checkpoint(ckpt_, *resume_dir, manifest);
    std::error_code ec;
    continuing_run_dir_ = std::filesystem::equivalent(
        std::filesystem::path(*resume_dir).parent_path(), cfg_.output.dir + "/checkpoints", ec);
    log::info("resumed from {} in {:.2f} s: step {}, {} optimizer updates, {} skipped steps",
              *resume_dir, seconds_since(t_load), run_state_.step, manifest.optimizer_steps,
              run_state_.skipped_steps);
  } else if (writer_) {  // (train.resume: auto found no checkpoint that verifies)
    check_fresh_start(cfg_.output.dir, options_.overwrite);
  }
  start_step_ = run_state_.step;
}

void TrainingRun::open_run_dir() {
  summary_.run_dir = cfg_.output.dir;
  summary_.start_step = start_step_;
  summary_.unigram_entropy = unigram_entropy(corpus_.tokens, tokenizer_->vocab_size());
  if (!writer_) return;
  create_run_dir(cfg_.output.dir);
  write_file_atomic(cfg_.output.dir + "/config.resolved.yaml", config::to_yaml(cfg_));
  const std::string metrics_path = cfg_.output.dir + "/metrics.jsonl";
  if (continuing_run_dir_) {  // logs continue from the checkpoint's step
    truncate_metrics(metrics_path, start_step_);
    truncate_event_files(cfg_.output.dir + "/tb", start_step_);
  } else {
    remove_event_files(cfg_.output.dir + "/tb");  // a fresh run: tb/ restarts as metrics.jsonl does
  }
  metrics_ = std::make_unique<MetricsLog>(metrics_path, continuing_run_dir_);
  tb_ = std::make_unique<TensorBoardWriter>(cfg_.output.dir + "/tb");
}

void TrainingRun::log_setup() const {
  const model::ModelSpec& spec = setup_.hf.spec;
  const comm::ProcessGrid& grid = *grid_;
  const model::Transformer& model = *model_;
  log::info("model: {}", spec.summary());
  log::info("data: {} ({} documents, {} tokens, {} sequences of {}; unigram entropy {:.4f} nats)",
            cfg_.data.train, corpus_.num_documents(), corpus_.tokens.size(), packed_->size(),
            cfg_.data.seq_len, summary_.unigram_entropy);
  log::info("backend: {}, {}{}", ops_->describe(), dtype_name(dtype_),
            dtype_ == DType::kBF16 ? " (f32 master weights, gradients and optimizer state)" : "");
  if (ops_->device() != backend::Device::kCpu) log::info("{}", attention_line_);
  if (grid.world().size() > 1 && ops_->device() != backend::Device::kCpu)
    log::info("collectives of device tensors: {}", device_comms_.describe);
  // The method's line (collective over the TP group: LoRA counts its shards on every rank).
  if (setup_.method != nullptr) log::info("{}", setup_.method->summary(model, grid.tp()));
  const double bytes = static_cast<double>(dtype_size(dtype_));
  log::info("layout: {} ranks = tensor {} x data {}{}; per rank {:.2f}M parameters ({:.1f} MB), "
            "{:.2f}M optimizer state ({:.1f} MB)",
            grid.world().size(), grid.tp_size(), grid.dp_size(),
            optimizer_->sharded() ? " (ZeRO-1)" : "",
            static_cast<double>(model.params().numel()) / 1e6,
            static_cast<double>(model.params().numel()) * bytes / 1e6,
            static_cast<double>(optimizer_->state_numel()) / 1e6,
            static_cast<double>(optimizer_->state_numel()) * bytes / 1e6);
  const config::TrainConfig& t = cfg_.train;
  const double steps_per_epoch =
      static_cast<double>(packed_->size()) / static_cast<double>(t.global_batch);
  log::info("training: {} steps x {} sequences ({} per micro-batch) = {} of {} sequences "
            "({:.2f} steps per epoch), run directory {}",
            t.steps, t.global_batch, t.micro_batch,
            t.epochs > 0 ? fmt::format("{} epochs", t.epochs)
                         : fmt::format("{:.2f} epochs", static_cast<double>(t.steps) /
                                                            steps_per_epoch),
            packed_->size(), steps_per_epoch, cfg_.output.dir);
}

void TrainingRun::loop() {
  const std::int64_t micro = cfg_.train.micro_batch;
  const std::int64_t n_micro = cfg_.train.global_batch / micro;
  const std::int64_t d_rank = grid_->dp_rank(), d_size = grid_->dp_size();
  // This DP rank's micro-batches of every global batch: u = d, d + D, ...
  for (std::int64_t u = d_rank; u < n_micro; u += d_size) mine_.push_back(u);
  mbs_.reserve(mine_.size());
  // (a preference pair is an item of two rows: micro-batches hold micro items)
  for (std::size_t i = 0; i < mine_.size(); ++i)
    mbs_.emplace_back(micro * packed_->rows_per_item(), cfg_.data.seq_len);
  for (const MicroBatch& mb : mbs_) step_batches_.push_back(&mb.batch);
  t_loop_ = Clock::now();
  watchdog_ = std::make_unique<Watchdog>(cfg_.runtime.watchdog_s, grid_->world().rank());
  faults_ = FaultHooks::from_env();
  overlap_ = optimizer_->overlap_hook();
  const std::int64_t patience = cfg_.train.early_stopping_patience;
  if (patience > 0 && run_state_.evals_since_best >= patience && start_step_ < cfg_.train.steps &&
      run_state_.best_metric == config::name_of(cfg_.checkpoint.keep_best)) {
    log::info("this run stopped early at step {} ({} evaluations without a better {}): nothing "
              "to train (raise train.early_stopping_patience to go on)",
              start_step_, run_state_.evals_since_best, cfg_.checkpoint.keep_best);
    summary_.stopped_early = true;
  }
  for (std::int64_t s = start_step_; s < cfg_.train.steps && !summary_.stopped_early; ++s) {
    const bool stop = step(s);
    // Every train.eval_every steps and at the last step (before its checkpoint, which may be
    // the best).
    const bool last = s + 1 == cfg_.train.steps;
    if (valid_packed_ &&
        ((cfg_.train.eval_every > 0 && (s + 1) % cfg_.train.eval_every == 0) || last))
      summary_.eval_loss = evaluate(s + 1);
    checkpoint(s, stop);
    if (faults_.kill_after == s + 1 && faults_.kill_rank == grid_->world().rank()) {
      log::warn("TAILOR_FAULT_KILL_AFTER_STEP: killing rank {} after step {}", faults_.kill_rank,
                s + 1);
      std::raise(SIGKILL);
    }
    if (stop) {
      log::warn("stopped on request (signal) after step {}; the checkpoint is saved: run the same "
                "command to resume (exit code 3)",
                s + 1);
      summary_.stopped = true;
      break;
    }
    if (summary_.stopped_early)
      log::info("early stopping after step {}: {} evaluations without a better {} than {:.4f} "
                "(step {}; train.early_stopping_patience {})",
                s + 1, run_state_.evals_since_best, cfg_.checkpoint.keep_best,
                run_state_.best_value, run_state_.best_step, patience);
  }
  summary_.steps = run_state_.step;
  summary_.skipped_steps = run_state_.skipped_steps;
}

bool TrainingRun::step(std::int64_t step) {
  comm::ProcessGrid& grid = *grid_;
  backend::Ops& ops = *ops_;
  model::Transformer& model = *model_;
  objective::Objective& obj = *objective_;
  const std::int64_t g_batch = cfg_.train.global_batch;
  const std::int64_t micro = cfg_.train.micro_batch;
  const auto t_step = Clock::now();
  watchdog_->arm(fmt::format("step {}: forward and backward", step + 1));
  if (faults_.hang_at == step + 1 && faults_.hang_rank == grid.world().rank())
    std::this_thread::sleep_for(std::chrono::hours(1));
  const double lr = optim::learning_rate(schedule_, step);
  // Global batch `step` is sequences [step*G, (step+1)*G); micro-batch u is its u-th slice.
  for (std::size_t i = 0; i < mine_.size(); ++i) {
    mbs_[i].fill(*packed_, *order_, step * g_batch + mine_[i] * micro);
    mbs_[i].batch.step_key = {cfg_.train.seed, step, mine_[i] * micro};  // keys dropout masks
  }
  obj.begin_step(step_batches_, grid.dp());
  model.params().zero_grad(ops);
  // Testing hook: a NaN accumulated into this rank's gradient (before backward, so that it
  // reaches the data-parallel reduction however early that starts).
  const bool poison_rank = grid.world().rank() == grid.world().size() - 1;
  if (poison_rank && faults_.nan_at(step + 1) && model.params().trainable_numel() > 0)
    ops.fill(model.params().flat_grads().flat_slice(0, 1), std::nan(""));
  double loss_sum = 0.0;
  // The last micro-batch reduces gradient buckets as its backward finishes them.
  for (std::size_t i = 0; i < mbs_.size(); ++i)
    loss_sum += obj.micro_batch(model, mbs_[i].batch, i + 1 == mbs_.size() ? overlap_ : nullptr);
  if (step == start_step_)
    log::info("activations: {:.1f} MB per micro-batch of {} x {} (train.recompute: {})",
              static_cast<double>(model.activation_bytes()) / 1e6, micro, cfg_.data.seq_len,
              cfg_.train.recompute);
  model.finish_gradients();
  watchdog_->arm(fmt::format("step {}: gradient reduction and optimizer update", step + 1));
  const double loss = obj.step_loss(loss_sum, grid.dp());
  // A non-finite loss or gradient on any rank skips the update on every rank: the loss is
  // agreed on here, the gradient norm is global (the optimizer skips a non-finite one itself).
  // One collective for both per-step agreements: skip this update, stop after this step.
  const auto [bad_loss, stop] =
      agree_step(grid.world(), !std::isfinite(loss), StopSignals::requested());
  const double grad_norm =
      bad_loss ? std::nan("") : optimizer_->step(lr, cfg_.optimizer.grad_clip);
  if (bad_loss || !std::isfinite(grad_norm)) {
    ++run_state_.skipped_steps;
    ++run_state_.consecutive_skips;
    log::warn("step {}: loss {} / gradient norm {} is not finite: update skipped on every rank "
              "({} in a row, {} in total; the run stops after train.max_skipped_steps = {})",
              step + 1, loss, grad_norm, run_state_.consecutive_skips, run_state_.skipped_steps,
              cfg_.train.max_skipped_steps);
    if (run_state_.consecutive_skips >= cfg_.train.max_skipped_steps)
      throw_runtime_error("step {}: {} consecutive steps had a non-finite loss or gradient; "
                          "stopping (lower optimizer.lr, check the data, or resume from the "
                          "last checkpoint)",
                          step + 1, run_state_.consecutive_skips);
  } else {
    run_state_.consecutive_skips = 0;
  }
  watchdog_->disarm();

  const double dt = seconds_since(t_step);
  StepRecord rec;
  rec.step = step + 1;
  rec.loss = loss;
  rec.lr = lr;
  rec.grad_norm = grad_norm;
  rec.tokens = g_batch * packed_->rows_per_item() * cfg_.data.seq_len;
  rec.loss_tokens = obj.step_count();
  rec.objective = obj.step_metrics();
  rec.step_time_s = dt;
  rec.tokens_per_s = static_cast<double>(rec.tokens) / dt;
  summary_.losses.push_back(loss);
  const bool last = step + 1 == cfg_.train.steps;
  if ((step + 1) % cfg_.train.log_every == 0 || last) {
    if (metrics_) metrics_->write(rec);
    if (tb_) {
      std::vector<std::pair<std::string, double>> tags = {{"train/loss", loss},
                                                          {"train/lr", lr},
                                                          {"train/grad_norm", grad_norm},
                                                          {"train/tokens_per_s", rec.tokens_per_s}};
      for (const auto& [name, value] : rec.objective) tags.emplace_back("train/" + name, value);
      tb_->scalars(rec.step, tags);
    }
    const double elapsed = seconds_since(t_loop_);
    const double eta = elapsed / static_cast<double>(step + 1 - start_step_) *
                       static_cast<double>(cfg_.train.steps - step - 1);
    log::info("{}{}", progress_line(rec.step, cfg_.train.steps, loss, lr, grad_norm,
                                    rec.tokens_per_s, elapsed, eta),
              objective_progress(rec.objective));
  }
  return stop;
}

double TrainingRun::evaluate(std::int64_t at_step) {
  // Data-parallel rank d scores validation sequences d, d + D, ...
  const objective::EvalLoss dev = objective_->evaluate(*model_, *valid_packed_, grid_->dp());
  last_eval_step_ = at_step;
  std::vector<std::pair<std::string, double>> scores = generation_scores();
  std::string generated;
  for (const auto& [name, value] : scores) generated += fmt::format(", {} {:.4f}", name, value);
  if (!scores.empty()) generated += fmt::format(" ({} dev answers)", dev_prompts_.size());
  const std::vector<std::pair<std::string, double>> own = objective_->eval_metrics();
  if (own.empty()) {
    log::info("eval at step {}: loss {:.4f}, perplexity {:.3f} over {} tokens of {} validation "
              "sequences{}",
              at_step, dev.loss, std::exp(dev.loss), dev.count, valid_packed_->size(), generated);
  } else {  // a preference objective: its loss over pairs (a perplexity means nothing here)
    log::info("eval at step {}: loss {:.4f} over {} validation pairs{}{}", at_step, dev.loss,
              dev.count, objective_progress(own), generated);
  }
  scores.insert(scores.end(), own.begin(), own.end());
  if (metrics_) metrics_->write_eval(at_step, dev.loss, dev.count, scores);
  if (tb_) {
    std::vector<std::pair<std::string, double>> tags = {{"eval/loss", dev.loss},
                                                        {"eval/ppl", std::exp(dev.loss)}};
    for (const auto& [name, value] : scores) tags.emplace_back("eval/" + name, value);
    tb_->scalars(at_step, tags);
  }
  track_best(at_step, dev.loss, scores);
  return dev.loss;
}

std::vector<std::pair<std::string, double>> TrainingRun::generation_scores() {
  const std::vector<config::EvalMetric>& wanted = cfg_.train.eval_metrics;
  if (wanted.empty()) return {};
  // Every rank answers every prompt (the TP group together); world rank 0's scores are the ones
  // every rank acts on (the best checkpoint, early stopping).
  const DevAnswers answers = generate_dev_answers(*model_, *tokenizer_, cfg_, dev_prompts_,
                                                  cfg_.train.eval_max_new_tokens);
  const std::vector<std::vector<std::string>> refs{answers.references};
  const eval::CorpusMetrics m = eval::compute_metrics(answers.hypotheses, refs);
  backend::Buffer values(DType::kF64, Shape{static_cast<std::int64_t>(wanted.size())});
  for (std::size_t i = 0; i < wanted.size(); ++i)
    values.ptr<double>()[i] = metric_value(m, wanted[i]);
  grid_->world().broadcast(values.tensor(), 0);
  std::vector<std::pair<std::string, double>> out;
  for (std::size_t i = 0; i < wanted.size(); ++i)
    out.emplace_back(std::string(config::name_of(wanted[i])), values.ptr<double>()[i]);
  return out;
}

void TrainingRun::track_best(std::int64_t at_step, double loss,
                             const std::vector<std::pair<std::string, double>>& scores) {
  best_now_ = false;
  const config::BestMetric metric = cfg_.checkpoint.keep_best;
  if (metric == config::BestMetric::kNone) return;
  const bool lower_better = metric == config::BestMetric::kLoss;
  double value = loss;
  for (const auto& [key, v] : scores)
    if (key == config::name_of(metric)) value = v;
  checkpoint::RankState& st = run_state_;
  const std::string name(config::name_of(metric));
  if (st.best_step > 0 && st.best_metric != name) {  // keep_best changed on resume
    log::info("checkpoint.keep_best is {} now ({} before): comparing anew from this evaluation",
              name, st.best_metric);
    st.best_step = 0;
  }
  if (st.best_step == 0 || (lower_better ? value < st.best_value : value > st.best_value)) {
    st.best_step = at_step;
    st.best_metric = name;
    st.best_value = value;
    st.evals_since_best = 0;
    best_now_ = true;
    log::info("best {} so far: {:.4f} at step {} (checkpoints/best)", metric, value, at_step);
    return;
  }
  ++st.evals_since_best;
  const std::int64_t patience = cfg_.train.early_stopping_patience;
  log::info("{} {:.4f}: not better than {:.4f} (step {}); {} evaluation{} without improvement{}",
            metric, value, st.best_value, st.best_step, st.evals_since_best,
            st.evals_since_best == 1 ? "" : "s",
            patience > 0 ? fmt::format(" (train.early_stopping_patience {})", patience) : "");
  if (patience > 0 && st.evals_since_best >= patience) summary_.stopped_early = true;
}

void TrainingRun::checkpoint(std::int64_t step, bool stop) {
  // Every checkpoint.every_steps, at the end, and when asked to stop.
  run_state_.step = step + 1;
  run_state_.data_cursor = (step + 1) * cfg_.train.global_batch;
  const std::int64_t every = cfg_.checkpoint.every_steps;
  // (early stopping makes this step the last)
  const bool last = step + 1 == cfg_.train.steps || summary_.stopped_early;
  // checkpoint.keep_best: the step of a new best evaluation is saved whatever the cadence.
  const bool best = best_now_;
  best_now_ = false;
  if (!(stop || best || (every > 0 && ((step + 1) % every == 0 || last)))) return;
  finish_save();  // the previous checkpoint's commit
  const auto t_save = Clock::now();
  pending_save_ = save_training_checkpoint(ckpt_, run_state_, best);
  log::info("checkpoint: wrote step {}{} in {:.2f} s (fsync, checksums and commit continue in "
            "the background)",
            step + 1, best ? " (the best so far)" : "", seconds_since(t_save));
  if (stop || last) finish_save();
}

void TrainingRun::finish_save() {
  if (!pending_save_.active()) return;
  const auto t_wait = Clock::now();
  const std::string dir = pending_save_.finish(grid_->world());
  log::info("checkpoint: committed {} (waited {:.2f} s)", dir, seconds_since(t_wait));
}

void TrainingRun::export_final() {
  const std::string out = cfg_.output.dir + "/export";
  if (setup_.hf.model_type.empty()) {
    if (writer_)
      log::warn("no export: this architecture (norm/position/MLP mix) matches no Hugging Face "
                "family");
    return;
  }
  const std::string base_dir = setup_.from_hf ? cfg_.model.path : "";
  if (grid_->tp_size() == 1) {
    if (writer_) export_hf(out, setup_, *model_, *ops_, base_dir, /*bf16=*/false, "the final model");
    return;
  }
  // Tensor parallel: the first data-parallel replica's TP group gathers every shard into a
  // one-rank model on world rank 0's CPU, which exports it like any other.
  if (grid_->dp_rank() != 0) return;
  std::unique_ptr<backend::CpuOps> cpu;
  std::unique_ptr<model::Transformer> whole;
  if (writer_) {
    cpu = std::make_unique<backend::CpuOps>(threads_per_rank(cfg_, grid_->world().size()));
    // Built without weights: the gather fills every parameter (frozen base included), so
    // reading model.path's weights here would be work thrown away.
    whole = std::make_unique<model::Transformer>(setup_.hf.spec, *cpu,
                                                 compute_dtype(cfg_.runtime, cpu->device()),
                                                 nullptr, setup_.attachments());
  }
  gather_parameters(model_->params(), *ops_, grid_->tp(), whole ? &whole->params() : nullptr,
                    cpu.get());
  if (writer_) export_hf(out, setup_, *whole, *cpu, base_dir, /*bf16=*/false, "the final model");
}

void TrainingRun::collect_parameters() {
  summary_.parameter_numel = model_->params().numel();
  summary_.optimizer_state_numel = optimizer_->state_numel();
  if (!options_.keep_parameters) return;
  for (const model::Parameter& p : model_->params().all()) {
    ParameterValues v{p.name, p.shape, p.global_shape, p.shard_dim, p.shard_offset, {}, {}};
    backend::Buffer host(DType::kF64, p.shape);
    ops_->copy(host.tensor(), p.value);
    v.values.assign(host.ptr<double>(), host.ptr<double>() + p.shape.numel());
    if (p.trainable) {  // zeroed at the start of a step, so it still holds the last one's
      ops_->copy(host.tensor(), p.grad);
      v.gradient.assign(host.ptr<double>(), host.ptr<double>() + p.shape.numel());
    }
    summary_.parameters.push_back(std::move(v));
  }
}

}  // namespace tailor::trainer
