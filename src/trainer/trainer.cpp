#include "trainer/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "backend/cpu/cpu_ops.h"
#include "core/logging.h"
#include "data/byte_tokenizer.h"
#include "data/data_order.h"
#include "data/packing.h"
#include "model/transformer.h"
#include "optim/grad_norm.h"
#include "trainer/from_config.h"
#include "trainer/metrics_log.h"
#include "trainer/progress.h"
#include "trainer/run_dir.h"

namespace tailor::trainer {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Entropy (nats) of the token frequency distribution: the loss of the best model that ignores
// context. A model that learned anything beyond letter frequencies goes below it.
double unigram_entropy(const std::vector<std::int32_t>& tokens, std::int64_t vocab) {
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

TrainSummary train(const config::ExperimentConfig& cfg) {
  const auto t_start = Clock::now();
  // ---- data (user errors surface here, before anything is written) ----
  const data::ByteTokenizer tokenizer;
  const data::TokenizedCorpus corpus =
      data::load_text_corpus(cfg.data.train, text_split_from_config(cfg.data), tokenizer);
  const data::PackedSequences packed(corpus, cfg.data.seq_len, cfg.data.train);
  data::DataOrder order(packed.size(), cfg.train.seed);

  // ---- backend and model ----
  const int threads = cfg.runtime.threads > 0 ? static_cast<int>(cfg.runtime.threads)
                                              : static_cast<int>(std::thread::hardware_concurrency());
  backend::CpuOps ops(threads);
  const DType dtype = compute_dtype_from_config(cfg.runtime);
  const model::ModelSpec spec = model_spec_from_config(cfg.model);
  model::Transformer model(spec, ops, dtype);
  model.init_parameters(cfg.train.seed);
  std::vector<model::Parameter*> params;
  for (auto& p : model.params().all()) params.push_back(&p);
  auto optimizer = optim::make_optimizer(optimizer_spec_from_config(cfg.optimizer), ops, params);
  const optim::ScheduleSpec schedule = schedule_spec_from_config(cfg);

  // ---- run directory ----
  TrainSummary summary;
  summary.run_dir = cfg.output.dir;
  summary.unigram_entropy = unigram_entropy(corpus.tokens, tokenizer.vocab_size());
  create_run_dir(cfg.output.dir);
  write_file_atomic(cfg.output.dir + "/config.resolved.yaml", config::to_yaml(cfg));
  MetricsLog metrics(cfg.output.dir + "/metrics.jsonl");

  log::info("model: {}", spec.summary());
  log::info("data: {} ({} documents, {} tokens, {} sequences of {}; unigram entropy {:.4f} nats)",
            cfg.data.train, corpus.num_documents(), corpus.tokens.size(), packed.size(),
            cfg.data.seq_len, summary.unigram_entropy);
  log::info("backend: {}, {}", ops.describe(), dtype_name(dtype));
  log::info("training: {} steps x {} sequences ({} per micro-batch), run directory {}",
            cfg.train.steps, cfg.train.global_batch, cfg.train.micro_batch, cfg.output.dir);

  // ---- loop ----
  const std::int64_t g_batch = cfg.train.global_batch;
  const std::int64_t micro = cfg.train.micro_batch;
  const std::int64_t n_micro = g_batch / micro;
  std::vector<MicroBatch> mbs;
  mbs.reserve(static_cast<std::size_t>(n_micro));
  for (std::int64_t u = 0; u < n_micro; ++u) mbs.emplace_back(micro, cfg.data.seq_len);
  const auto t_loop = Clock::now();
  for (std::int64_t step = 0; step < cfg.train.steps; ++step) {
    const auto t_step = Clock::now();
    const double lr = optim::learning_rate(schedule, step);
    // Global batch `step` is sequences [step*G, (step+1)*G); micro-batch u is its u-th slice.
    std::int64_t loss_tokens = 0;
    for (std::int64_t u = 0; u < n_micro; ++u) {
      mbs[static_cast<std::size_t>(u)].fill(packed, order, step * g_batch + u * micro);
      loss_tokens += model::count_loss_targets(mbs[static_cast<std::size_t>(u)].batch.targets);
    }
    model.params().zero_grad(ops);
    double loss_sum = 0.0;
    const double dscale = loss_tokens > 0 ? 1.0 / static_cast<double>(loss_tokens) : 0.0;
    for (auto& mb : mbs) loss_sum += model.forward_backward(mb.batch, dscale);
    const double loss = loss_sum * dscale;
    const double grad_norm = optim::clip_grad_norm(ops, params, cfg.optimizer.grad_clip);
    if (!std::isfinite(loss) || !std::isfinite(grad_norm))
      throw_runtime_error("step {}: loss or gradient is not finite (loss {}, grad norm {}); lower "
                          "optimizer.lr or check the data",
                          step + 1, loss, grad_norm);
    optimizer->step(lr);

    const double dt = seconds_since(t_step);
    StepRecord rec;
    rec.step = step + 1;
    rec.loss = loss;
    rec.lr = lr;
    rec.grad_norm = grad_norm;
    rec.tokens = g_batch * cfg.data.seq_len;
    rec.loss_tokens = loss_tokens;
    rec.step_time_s = dt;
    rec.tokens_per_s = static_cast<double>(rec.tokens) / dt;
    summary.losses.push_back(loss);
    const bool last = step + 1 == cfg.train.steps;
    if ((step + 1) % cfg.train.log_every == 0 || last) {
      metrics.write(rec);
      const double elapsed = seconds_since(t_loop);
      const double eta = elapsed / static_cast<double>(step + 1) *
                         static_cast<double>(cfg.train.steps - step - 1);
      log::info("{}", progress_line(rec.step, cfg.train.steps, loss, lr, grad_norm,
                                    rec.tokens_per_s, elapsed, eta));
    }
  }
  summary.steps = cfg.train.steps;
  log::info("done: {} steps in {}; run directory {}", cfg.train.steps,
            format_duration(seconds_since(t_start)), cfg.output.dir);
  return summary;
}

}  // namespace tailor::trainer
