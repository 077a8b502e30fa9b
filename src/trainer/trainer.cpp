#include "trainer/trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>

#include <thread>

#include "backend/cpu/cpu_ops.h"
#include "trainer/device.h"
#include "checkpoint/hf_model.h"
#include "checkpoint/training_checkpoint.h"
#include "comm/process_grid.h"
#include "core/logging.h"
#include "data/data_order.h"
#include "data/packing.h"
#include "model/transformer.h"
#include "objective/causal_lm.h"
#include "optim/data_parallel.h"
#include "trainer/checkpointing.h"
#include "trainer/export.h"
#include "trainer/from_config.h"
#include "trainer/model_builder.h"
#include "trainer/metrics_log.h"
#include "trainer/tensorboard.h"
#include "trainer/prepare.h"
#include "trainer/progress.h"
#include "trainer/run_dir.h"
#include "trainer/stop_signals.h"
#include "trainer/watchdog.h"

namespace tailor::trainer {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Entropy (nats) of the token frequency distribution: the loss of the best model that ignores
// context. A model that learned anything beyond letter frequencies goes below it.
double unigram_entropy(std::span<const std::int32_t> tokens, std::int64_t vocab) {
  std::vector<double> counts(static_cast<std::size_t>(vocab), 0.0);
  for (std::int32_t t : tokens) counts[static_cast<std::size_t>(t)] += 1.0;
  const auto n = static_cast<double>(tokens.size());
  double h = 0.0;
  for (double c : counts)
    if (c > 0) h -= (c / n) * std::log(c / n);
  return h;
}

// Host buffers of one micro-batch and the Batch view over them.
struct MicroBatch {
  backend::Buffer ids, targets, positions, doc_ids;
  model::Batch batch;

  MicroBatch(std::int64_t rows, std::int64_t seq) {
    const Shape s{rows * seq};
    ids = backend::Buffer(DType::kI32, s);
    targets = backend::Buffer(DType::kI32, s);
    positions = backend::Buffer(DType::kI32, s);
    doc_ids = backend::Buffer(DType::kI32, s);
    batch = {rows, seq, ids.tensor(), targets.tensor(), positions.tensor(), doc_ids.tensor()};
  }

  void fill(const data::PackedSequences& packed, data::DataOrder& order, std::int64_t first_g) {
    const auto t = static_cast<std::size_t>(batch.seq);
    for (std::int64_t r = 0; r < batch.batch; ++r) {
      const std::int64_t s = order.sequence_at(first_g + r);
      const auto off = static_cast<std::size_t>(r) * t;
      packed.fill(s, {ids.ptr<std::int32_t>() + off, t}, {targets.ptr<std::int32_t>() + off, t},
                  {positions.ptr<std::int32_t>() + off, t}, {doc_ids.ptr<std::int32_t>() + off, t});
    }
  }
};

}  // namespace

namespace {

// CPU threads per rank: the config's, or the cores shared among the ranks of this node.
int threads_per_rank(const config::ExperimentConfig& cfg, int world_size) {
  if (cfg.runtime.threads > 0) return static_cast<int>(cfg.runtime.threads);
  int local = world_size;
  if (const char* v = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) local = std::max(1, std::atoi(v));
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, cores / local);
}

// Resolves parallel.data (0 = auto) and train.micro_batch (0 = auto) against the world size and
// checks the layout; a misfit is a user error naming the config.
void resolve_layout(config::ExperimentConfig& cfg, const model::ModelSpec& spec, int world_size) {
  auto& par = cfg.parallel;
  const std::string where = cfg.source;
  if (par.data == 0) {
    TAILOR_CHECK_USER(world_size % par.tensor == 0, where,
                      "parallel.tensor: {} does not divide the job's {} ranks", par.tensor,
                      world_size);
    par.data = world_size / par.tensor;
  }
  TAILOR_CHECK_USER(par.tensor * par.data == world_size, where,
                    "parallel: tensor ({}) x data ({}) = {} ranks, but the job has {}",
                    par.tensor, par.data, par.tensor * par.data, world_size);
  const std::string problem =
      model::tp_layout_problem(spec, static_cast<int>(par.tensor));
  TAILOR_CHECK_USER(problem.empty(), where, "parallel.tensor: {}", problem);
  auto& t = cfg.train;
  if (t.micro_batch == 0) {
    TAILOR_CHECK_USER(t.global_batch % par.data == 0, where,
                      "train.global_batch ({}) must be a multiple of parallel.data ({})",
                      t.global_batch, par.data);
    t.micro_batch = t.global_batch / par.data;
  }
  TAILOR_CHECK_USER(t.global_batch % (par.data * t.micro_batch) == 0, where,
                    "train.global_batch ({}) must be a multiple of parallel.data ({}) x "
                    "train.micro_batch ({})",
                    t.global_batch, par.data, t.micro_batch);
}


// Where training starts: the checkpoint directory to resume from (train.resume), or none. World
// rank 0 decides (it verifies checksums) and the others follow.
std::optional<std::string> resume_point(const config::ExperimentConfig& cfg,
                                        comm::Communicator& world) {
  const std::string ckdir = cfg.output.dir + "/checkpoints";
  const std::string& mode = cfg.train.resume;
  double step = -1.0;
  if (world.rank() == 0) {
    if (mode == "never") {
      const auto existing = checkpoint::list_checkpoints(ckdir);
      TAILOR_CHECK_USER(existing.empty(), ckdir,
                        "holds checkpoints of an earlier run (newest: step {}); set "
                        "train.resume=auto to continue it, or choose another output.dir",
                        existing.empty() ? 0 : existing.back().step);
    } else if (mode == "auto") {
      std::vector<std::string> rejected;
      const auto found = checkpoint::find_resumable(ckdir, &rejected);
      for (const std::string& r : rejected) log::warn("skipping a checkpoint that does not verify: {}", r);
      if (found) step = static_cast<double>(found->step);
    } else {
      const checkpoint::Manifest m = checkpoint::read_manifest(mode);
      checkpoint::verify_checkpoint(mode, m);
      step = static_cast<double>(m.step);
    }
  }
  step = world.all_reduce_max(step);
  if (step < 0) return std::nullopt;
  if (mode != "auto") return mode;
  return ckdir + "/step_" + std::to_string(static_cast<std::int64_t>(step));
}

// Flags OR-reduced over all ranks in one collective: {a non-finite loss, a stop request}.
struct StepAgreement {
  bool bad_loss = false, stop = false;
};
StepAgreement agree_step(comm::Communicator& world, bool bad_loss, bool stop) {
  double flags[2] = {bad_loss ? 1.0 : 0.0, stop ? 1.0 : 0.0};
  world.all_reduce(backend::Tensor{flags, DType::kF64, Shape{2}}, comm::ReduceOp::kMax);
  return {flags[0] > 0.0, flags[1] > 0.0};
}

// Testing hooks (docs/checkpoints.md): TAILOR_FAULT_KILL_AFTER_STEP=K[:rank] kills that rank
// (SIGKILL) right after step K (and its checkpoint, if one is due); TAILOR_FAULT_NAN_STEPS=a,b,...
// poisons the last rank's gradients with NaN at those steps; TAILOR_FAULT_HANG_AT_STEP=K[:rank]
// makes that rank stop responding inside step K (the watchdog's test).
struct FaultHooks {
  std::int64_t kill_after = -1;
  int kill_rank = 0;
  std::int64_t hang_at = -1;
  int hang_rank = 0;
  std::vector<std::int64_t> nan_steps;

  static FaultHooks from_env() {
    FaultHooks h;
    if (const char* v = std::getenv("TAILOR_FAULT_KILL_AFTER_STEP")) {
      h.kill_after = std::atoll(v);
      if (const char* c = std::strchr(v, ':')) h.kill_rank = std::atoi(c + 1);
    }
    if (const char* v = std::getenv("TAILOR_FAULT_HANG_AT_STEP")) {
      h.hang_at = std::atoll(v);
      if (const char* c = std::strchr(v, ':')) h.hang_rank = std::atoi(c + 1);
    }
    if (const char* v = std::getenv("TAILOR_FAULT_NAN_STEPS"))
      for (const char* p = v; *p != 0;) {
        h.nan_steps.push_back(std::atoll(p));
        const char* c = std::strchr(p, ',');
        if (c == nullptr) break;
        p = c + 1;
      }
    return h;
  }
  [[nodiscard]] bool nan_at(std::int64_t step) const {
    return std::find(nan_steps.begin(), nan_steps.end(), step) != nan_steps.end();
  }
};

}  // namespace

TrainSummary train(const config::ExperimentConfig& config_in,
                   std::unique_ptr<comm::Communicator> world, const TrainOptions& options) {
  const auto t_start = Clock::now();
  if (!world) world = std::make_unique<comm::SelfCommunicator>();
  config::ExperimentConfig cfg = config_in;
  const bool writer = world->rank() == 0;

  // ---- model definition: a Hugging Face directory, or the config's own architecture ----
  ModelSetup setup = model_setup(cfg);
  checkpoint::HfModelConfig& hf = setup.hf;
  const bool from_hf = setup.from_hf;
  const model::ModelSpec& spec = hf.spec;
  resolve_layout(cfg, spec, world->size());
  TAILOR_CHECK_USER(spec.position != model::PositionType::kLearned ||
                        cfg.data.seq_len <= spec.max_position_embeddings,
                    cfg.source, "data.seq_len ({}) exceeds the model's {} learned positions",
                    cfg.data.seq_len, spec.max_position_embeddings);
  TAILOR_CHECK_USER(hf.spec.sliding_window == 0 || cfg.data.seq_len <= hf.spec.sliding_window,
                    cfg.source,
                    "data.seq_len ({}) exceeds the model's sliding attention window ({}), which "
                    "Tailor does not implement yet",
                    cfg.data.seq_len, hf.spec.sliding_window);

  // ---- data (user errors surface here, before anything is written) ----
  const std::unique_ptr<data::Tokenizer> tokenizer = tokenizer_from_config(cfg);
  TAILOR_CHECK_USER(tokenizer->vocab_size() <= spec.vocab_size, cfg.source,
                    "data.tokenizer: the tokenizer has {} ids but the model's vocabulary has {}",
                    tokenizer->vocab_size(), spec.vocab_size);
  if (!from_hf) {  // an exported config-defined model names its tokenizer's special ids
    hf.bos_token_id = tokenizer->bos_token_id().value_or(-1);
    hf.eos_token_id = tokenizer->eos_token_id().value_or(-1);
  }
  // World rank 0 builds the tokenized cache (tmp + rename) while the others wait, then they find
  // it (on a shared file system; elsewhere they build their own copy).
  const auto prepare_once = [&](const config::ExperimentConfig& c) {
    std::optional<data::CachedCorpus> out;
    if (world->rank() == 0) out = prepare_data(c, *tokenizer, threads_per_rank(c, world->size()));
    world->barrier();
    if (world->rank() != 0) out = prepare_data(c, *tokenizer, threads_per_rank(c, world->size()));
    return std::move(*out);
  };
  const data::CachedCorpus cached = prepare_once(cfg);
  // Validation data: a file of its own (prepared like the training data), or held-out documents.
  data::TokenizedCorpus train_part;
  std::optional<data::CachedCorpus> valid_cached;
  std::optional<data::TokenizedCorpus> valid_corpus;
  if (cfg.data.valid_fraction > 0.0) {
    TAILOR_CHECK_USER(cached.corpus.num_documents() >= 2, cfg.data.train,
                      "data.valid_fraction needs at least 2 documents to split, got {}",
                      cached.corpus.num_documents());
    data::TrainValidSplit split =
        data::split_validation(cached.corpus, cfg.data.valid_fraction, cfg.train.seed);
    train_part = std::move(split.train);
    valid_corpus = std::move(split.valid);
  } else if (!cfg.data.valid.empty()) {
    config::ExperimentConfig vcfg = cfg;
    vcfg.data.train = cfg.data.valid;
    vcfg.data.sources = {{cfg.data.valid, 1.0}};
    valid_cached = prepare_once(vcfg);
  }
  const data::CorpusView corpus = valid_corpus ? data::CorpusView(train_part) : cached.corpus;
  // Prompt tuning: the virtual tokens open every document of a row (packing.h).
  const std::int64_t n_virtual = setup.virtual_tokens();
  // data.packing: pad puts each document in sequences of its own, padded (packing.h).
  const data::PackingMode packing = packing_mode_from_config(cfg.data);
  const std::int32_t pad_id = data::pad_token_id(tokenizer->eos_token_id().value_or(-1));
  const data::PackedSequences packed(corpus, cfg.data.seq_len, cfg.data.train, n_virtual, packing,
                                     pad_id);
  std::optional<data::PackedSequences> valid_packed;
  if (valid_corpus)
    valid_packed.emplace(*valid_corpus, cfg.data.seq_len, "data.valid_fraction", n_virtual,
                         packing, pad_id);
  else if (valid_cached)
    valid_packed.emplace(valid_cached->corpus, cfg.data.seq_len, cfg.data.valid, n_virtual,
                         packing, pad_id);
  data::DataOrder order(packed.size(), cfg.train.seed);

  // ---- parallel layout, backend and model ----
    comm::ProcessGrid grid(std::move(world), static_cast<int>(cfg.parallel.tensor),
                         static_cast<int>(cfg.parallel.data));
  const std::unique_ptr<backend::Ops> ops_owner =
      make_ops(cfg.runtime, threads_per_rank(cfg, grid.world().size()), cfg.source);
  backend::Ops& ops = *ops_owner;
  const DType dtype = compute_dtype(cfg.runtime, ops.device());
  TAILOR_CHECK_USER(cfg.optimizer.moments != "bf16" || ops.device() != backend::Device::kCpu,
                    cfg.source, "optimizer.moments bf16 needs a GPU (runtime.device {} ran on the "
                    "CPU, which keeps f32 moments)", cfg.runtime.device);
  // Device tensors travel over NCCL when every rank has its own GPU (host scalars stay on MPI).
  const DeviceComms device_comms = device_communicators(ops, grid);
  comm::Communicator& tp_comm = device_comms.tp ? *device_comms.tp : grid.tp();
  comm::Communicator& dp_comm = device_comms.dp ? *device_comms.dp : grid.dp();
  const std::unique_ptr<model::Transformer> model_owner =
      build_model(cfg, setup, ops, &tp_comm, InitialWeights::kStart);
  model::Transformer& model = *model_owner;
  model.set_recompute(cfg.train.recompute == "full"        ? model::Recompute::kFull
                      : cfg.train.recompute == "selective" ? model::Recompute::kSelective
                                                           : model::Recompute::kNone);
  optim::DataParallelOptimizer optimizer(ops, model.params(), dp_comm, tp_comm,
                                         optimizer_spec_from_config(cfg.optimizer),
                                         {cfg.optimizer.zero == 1, options.dp_bucket_elements > 0
                                                                       ? options.dp_bucket_elements
                                                                       : 1 << 22});
  const optim::ScheduleSpec schedule = schedule_spec_from_config(cfg);

  // ---- resume from a checkpoint (verified and checked against this config before anything is
  // written) ----
  CheckpointContext ckpt;
  ckpt.cfg = &cfg;
  ckpt.model = &model;
  ckpt.optimizer = &optimizer;
  ckpt.grid = &grid;
  ckpt.ops = &ops;
  ckpt.determinism_backend = ops.describe();
  ckpt.base_identity = setup.method != nullptr ? base_model_identity(cfg) : "";
  ckpt.data_fingerprint = std::filesystem::path(cached.dir).filename().string();
  checkpoint::RankState run_state;
  run_state.seed = cfg.train.seed;
  const std::optional<std::string> resume_dir = resume_point(cfg, grid.world());
  bool continuing_run_dir = false;
  if (resume_dir) {
    const auto t_load = Clock::now();
    const checkpoint::Manifest manifest = checkpoint::read_manifest(*resume_dir);
    run_state = load_training_checkpoint(ckpt, *resume_dir, manifest);
    std::error_code ec;
    continuing_run_dir = std::filesystem::equivalent(
        std::filesystem::path(*resume_dir).parent_path(), cfg.output.dir + "/checkpoints", ec);
    log::info("resumed from {} in {:.2f} s: step {}, {} optimizer updates, {} skipped steps",
              *resume_dir, seconds_since(t_load), run_state.step, manifest.optimizer_steps,
              run_state.skipped_steps);
  }
  const std::int64_t start_step = run_state.step;

  // ---- run directory (world rank 0 only) ----
  TrainSummary summary;
  summary.run_dir = cfg.output.dir;
  summary.start_step = start_step;
  summary.unigram_entropy = unigram_entropy(corpus.tokens, tokenizer->vocab_size());
  std::unique_ptr<MetricsLog> metrics;
  std::unique_ptr<TensorBoardWriter> tb;
  if (writer) {
    create_run_dir(cfg.output.dir);
    write_file_atomic(cfg.output.dir + "/config.resolved.yaml", config::to_yaml(cfg));
    const std::string metrics_path = cfg.output.dir + "/metrics.jsonl";
    if (continuing_run_dir) {  // logs continue from the checkpoint's step
      truncate_metrics(metrics_path, start_step);
      truncate_event_files(cfg.output.dir + "/tb", start_step);
    } else {
      remove_event_files(cfg.output.dir + "/tb");  // a fresh run: tb/ restarts as metrics.jsonl does
    }
    metrics = std::make_unique<MetricsLog>(metrics_path, continuing_run_dir);
    tb = std::make_unique<TensorBoardWriter>(cfg.output.dir + "/tb");
  }

  log::info("model: {}", spec.summary());
  log::info("data: {} ({} documents, {} tokens, {} sequences of {}; unigram entropy {:.4f} nats)",
            cfg.data.train, corpus.num_documents(), corpus.tokens.size(), packed.size(),
            cfg.data.seq_len, summary.unigram_entropy);
  log::info("backend: {}, {}{}", ops.describe(), dtype_name(dtype),
            dtype == DType::kBF16 ? " (f32 master weights, gradients and optimizer state)" : "");
  if (grid.world().size() > 1 && ops.device() != backend::Device::kCpu)
    log::info("collectives of device tensors: {}", device_comms.describe);
  // The method's line (collective over the TP group: LoRA counts its shards on every rank).
  if (setup.method != nullptr) log::info("{}", setup.method->summary(model, grid.tp()));
  {
    const double bytes = static_cast<double>(dtype_size(dtype));
    log::info("layout: {} ranks = tensor {} x data {}{}; per rank {:.2f}M parameters ({:.1f} MB), "
              "{:.2f}M optimizer state ({:.1f} MB)",
              grid.world().size(), grid.tp_size(), grid.dp_size(),
              optimizer.sharded() ? " (ZeRO-1)" : "",
              static_cast<double>(model.params().numel()) / 1e6,
              static_cast<double>(model.params().numel()) * bytes / 1e6,
              static_cast<double>(optimizer.state_numel()) / 1e6,
              static_cast<double>(optimizer.state_numel()) * bytes / 1e6);
  }
  log::info("training: {} steps x {} sequences ({} per micro-batch), run directory {}",
            cfg.train.steps, cfg.train.global_batch, cfg.train.micro_batch, cfg.output.dir);

  // ---- loop ----
  const std::int64_t g_batch = cfg.train.global_batch;
  const std::int64_t micro = cfg.train.micro_batch;
  const std::int64_t n_micro = g_batch / micro;
  const std::int64_t d_rank = grid.dp_rank(), d_size = grid.dp_size();
  // This DP rank's micro-batches of every global batch: u = d, d + D, ...
  std::vector<std::int64_t> mine;
  for (std::int64_t u = d_rank; u < n_micro; u += d_size) mine.push_back(u);
  std::vector<MicroBatch> mbs;
  mbs.reserve(mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i) mbs.emplace_back(micro, cfg.data.seq_len);
  std::vector<const model::Batch*> step_batches;
  for (const MicroBatch& mb : mbs) step_batches.push_back(&mb.batch);
  objective::CausalLm obj;  // the training objective: loss, normalization, dev scoring
  // ---- evaluation on the validation sequences (in order; DP rank d takes d, d+D, ...) ----
  const auto evaluate = [&](std::int64_t at_step) {
    const objective::EvalLoss dev = obj.evaluate(model, *valid_packed, grid.dp());
    const double loss = dev.loss;
    const std::int64_t count = dev.count;
    log::info("eval at step {}: loss {:.4f}, perplexity {:.3f} over {} tokens of {} validation "
              "sequences",
              at_step, loss, std::exp(loss), count, valid_packed->size());
    if (metrics) metrics->write_eval(at_step, loss, count);
    if (tb) tb->scalars(at_step, {{"eval/loss", loss}, {"eval/ppl", std::exp(loss)}});
    return loss;
  };
  const auto t_loop = Clock::now();
  const StopSignals signals;
  Watchdog watchdog(cfg.runtime.watchdog_s, grid.world().rank());
  const FaultHooks faults = FaultHooks::from_env();
  const bool poison_rank = grid.world().rank() == grid.world().size() - 1;
  bool stopped = false;
  // A checkpoint being committed in the background; finished before the next save and at the end.
  checkpoint::PendingSave pending_save;
  const auto finish_save = [&] {
    if (!pending_save.active()) return;
    const auto t_wait = Clock::now();
    const std::string dir = pending_save.finish(grid.world());
    log::info("checkpoint: committed {} (waited {:.2f} s)", dir, seconds_since(t_wait));
  };
  const std::function<void(std::int64_t)> overlap = optimizer.overlap_hook();
  for (std::int64_t step = start_step; step < cfg.train.steps; ++step) {
    const auto t_step = Clock::now();
    watchdog.arm(fmt::format("step {}: forward and backward", step + 1));
    if (faults.hang_at == step + 1 && faults.hang_rank == grid.world().rank())
      std::this_thread::sleep_for(std::chrono::hours(1));
    const double lr = optim::learning_rate(schedule, step);
    // Global batch `step` is sequences [step*G, (step+1)*G); micro-batch u is its u-th slice.
    for (std::size_t i = 0; i < mine.size(); ++i) {
      mbs[i].fill(packed, order, step * g_batch + mine[i] * micro);
      mbs[i].batch.step_key = {cfg.train.seed, step, mine[i] * micro};  // keys dropout masks
    }
    obj.begin_step(step_batches, grid.dp());
    model.params().zero_grad(ops);
    // Testing hook: a NaN accumulated into this rank's gradient (before backward, so that it
    // reaches the data-parallel reduction however early that starts).
    if (poison_rank && faults.nan_at(step + 1) && model.params().trainable_numel() > 0)
      ops.fill(model.params().flat_grads().flat_slice(0, 1), std::nan(""));
    double loss_sum = 0.0;
    // The last micro-batch reduces gradient buckets as its backward finishes them.
    for (std::size_t i = 0; i < mbs.size(); ++i)
      loss_sum += obj.micro_batch(model, mbs[i].batch, i + 1 == mbs.size() ? overlap : nullptr);
    if (step == start_step)
      log::info("activations: {:.1f} MB per micro-batch of {} x {} (train.recompute: {})",
                static_cast<double>(model.activation_bytes()) / 1e6, micro, cfg.data.seq_len,
                cfg.train.recompute);
    model.finish_gradients();
    watchdog.arm(fmt::format("step {}: gradient reduction and optimizer update", step + 1));
    const double loss = obj.step_loss(loss_sum, grid.dp());
    // A non-finite loss or gradient on any rank skips the update on every rank: the loss is
    // agreed on here, the gradient norm is global (the optimizer skips a non-finite one itself).
    // One collective for both per-step agreements: skip this update, stop after this step.
    const auto [bad_loss, stop] =
        agree_step(grid.world(), !std::isfinite(loss), StopSignals::requested());
    const double grad_norm = bad_loss ? std::nan("") : optimizer.step(lr, cfg.optimizer.grad_clip);
    if (bad_loss || !std::isfinite(grad_norm)) {
      ++run_state.skipped_steps;
      ++run_state.consecutive_skips;
      log::warn("step {}: loss {} / gradient norm {} is not finite: update skipped on every rank "
                "({} in a row, {} in total; the run stops after train.max_skipped_steps = {})",
                step + 1, loss, grad_norm, run_state.consecutive_skips, run_state.skipped_steps,
                cfg.train.max_skipped_steps);
      if (run_state.consecutive_skips >= cfg.train.max_skipped_steps)
        throw_runtime_error("step {}: {} consecutive steps had a non-finite loss or gradient; "
                            "stopping (lower optimizer.lr, check the data, or resume from the "
                            "last checkpoint)",
                            step + 1, run_state.consecutive_skips);
    } else {
      run_state.consecutive_skips = 0;
    }
    watchdog.disarm();

    const double dt = seconds_since(t_step);
    StepRecord rec;
    rec.step = step + 1;
    rec.loss = loss;
    rec.lr = lr;
    rec.grad_norm = grad_norm;
    rec.tokens = g_batch * cfg.data.seq_len;
    rec.loss_tokens = obj.step_count();
    rec.step_time_s = dt;
    rec.tokens_per_s = static_cast<double>(rec.tokens) / dt;
    summary.losses.push_back(loss);
    const bool last = step + 1 == cfg.train.steps;
    if ((step + 1) % cfg.train.log_every == 0 || last) {
      if (metrics) metrics->write(rec);
      if (tb)
        tb->scalars(rec.step, {{"train/loss", loss},
                               {"train/lr", lr},
                               {"train/grad_norm", grad_norm},
                               {"train/tokens_per_s", rec.tokens_per_s}});
      const double elapsed = seconds_since(t_loop);
      const double eta = elapsed / static_cast<double>(step + 1 - start_step) *
                         static_cast<double>(cfg.train.steps - step - 1);
      log::info("{}", progress_line(rec.step, cfg.train.steps, loss, lr, grad_norm,
                                    rec.tokens_per_s, elapsed, eta));
    }
    if (valid_packed && cfg.train.eval_every > 0 && (step + 1) % cfg.train.eval_every == 0)
      summary.eval_loss = evaluate(step + 1);
    // ---- checkpoint: every checkpoint.every_steps, at the end, and when asked to stop ----
    run_state.step = step + 1;
    run_state.data_cursor = (step + 1) * g_batch;
    const std::int64_t every = cfg.checkpoint.every_steps;
    if (stop || (every > 0 && ((step + 1) % every == 0 || last))) {
      finish_save();  // the previous checkpoint's commit
      const auto t_save = Clock::now();
      pending_save = save_training_checkpoint(ckpt, run_state);
      log::info("checkpoint: wrote step {} in {:.2f} s (fsync, checksums and commit continue in "
                "the background)",
                step + 1, seconds_since(t_save));
      if (stop || last) finish_save();
    }
    if (faults.kill_after == step + 1 && faults.kill_rank == grid.world().rank()) {
      log::warn("TAILOR_FAULT_KILL_AFTER_STEP: killing rank {} after step {}", faults.kill_rank,
                step + 1);
      std::raise(SIGKILL);
    }
    if (stop) {
      log::warn("stopped on request (signal) after step {}; the checkpoint is saved: run the same "
                "command to resume (exit code 3)",
                step + 1);
      stopped = true;
      break;
    }
  }
  summary.steps = run_state.step;
  summary.skipped_steps = run_state.skipped_steps;
  if (stopped) {
    summary.stopped = true;
    return summary;
  }
  // ---- final evaluation (unless the last step already evaluated) ----
  if (valid_packed && !(cfg.train.eval_every > 0 && cfg.train.steps % cfg.train.eval_every == 0 &&
                        start_step < cfg.train.steps))
    summary.eval_loss = evaluate(cfg.train.steps);
  // ---- export: the final model as a Hugging Face directory ----
  if (writer) {
    const std::string out = cfg.output.dir + "/export";
    if (hf.model_type.empty()) {
      log::warn("no export: this architecture (norm/position/MLP mix) matches no Hugging Face family");
    } else if (grid.tp_size() > 1) {
      log::warn("no export: exporting a tensor-parallel model needs the gathered weights (coming "
                "with checkpoint resharding); load its checkpoint with parallel.tensor=1");
    } else {
      export_hf(out, setup, model, ops, from_hf ? cfg.model.path : "", /*bf16=*/false,
                "the final model");
    }
  }
  summary.parameter_numel = model.params().numel();
  summary.optimizer_state_numel = optimizer.state_numel();
  if (options.keep_parameters) {
    for (const model::Parameter& p : model.params().all()) {
      ParameterValues v{p.name, p.shape, p.global_shape, p.shard_dim, p.shard_offset, {}};
      backend::Buffer host(DType::kF64, p.shape);
      ops.copy(host.tensor(), p.value);
      v.values.assign(host.ptr<double>(), host.ptr<double>() + p.shape.numel());
      summary.parameters.push_back(std::move(v));
    }
  }
  log::info("done: {} steps in {}; run directory {}", cfg.train.steps - start_step,
            format_duration(seconds_since(t_start)), cfg.output.dir);
  return summary;
}

}  // namespace tailor::trainer
