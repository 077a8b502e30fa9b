#include "trainer/run_support.h"
#include "core/environment.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "checkpoint/training_checkpoint.h"
#include "core/logging.h"

namespace tailor::trainer {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double unigram_entropy(std::span<const std::int32_t> tokens, std::int64_t vocab) {
  std::vector<double> counts(static_cast<std::size_t>(vocab), 0.0);
  for (std::int32_t t : tokens) counts[static_cast<std::size_t>(t)] += 1.0;
  const auto n = static_cast<double>(tokens.size());
  double h = 0.0;
  for (double c : counts)
    if (c > 0) h -= (c / n) * std::log(c / n);
  return h;
}

MicroBatch::MicroBatch(std::int64_t rows, std::int64_t seq) {
  const Shape s{rows * seq};
  ids = backend::Buffer(DType::kI32, s);
  targets = backend::Buffer(DType::kI32, s);
  positions = backend::Buffer(DType::kI32, s);
  doc_ids = backend::Buffer(DType::kI32, s);
  batch = {rows, seq, ids.tensor(), targets.tensor(), positions.tensor(), doc_ids.tensor()};
}

void MicroBatch::fill(const data::PackedSequences& packed, data::DataOrder& order,
                      std::int64_t first_g) {
  // Items (sequences, or pairs of two rows) at first_g, first_g + 1, ... of the data order.
  const std::int64_t per_item = packed.rows_per_item();
  TAILOR_ASSERT(batch.batch % per_item == 0, "{} rows for items of {}", batch.batch, per_item);
  const auto t = static_cast<std::size_t>(batch.seq * per_item);
  for (std::int64_t r = 0; r < batch.batch / per_item; ++r) {
    const std::int64_t s = order.sequence_at(first_g + r);
    const auto off = static_cast<std::size_t>(r) * t;
    packed.fill(s, {ids.ptr<std::int32_t>() + off, t}, {targets.ptr<std::int32_t>() + off, t},
                {positions.ptr<std::int32_t>() + off, t}, {doc_ids.ptr<std::int32_t>() + off, t});
  }
}

std::int64_t steps_for_epochs(std::int64_t epochs, std::int64_t sequences,
                              std::int64_t global_batch) {
  TAILOR_ASSERT(epochs > 0 && sequences > 0 && global_batch > 0, "{} epochs of {} sequences, {} "
                "per step", epochs, sequences, global_batch);
  return (epochs * sequences + global_batch - 1) / global_batch;
}

int threads_per_rank(const config::ExperimentConfig& cfg, int world_size) {
  if (cfg.runtime.threads > 0) return static_cast<int>(cfg.runtime.threads);
  int local = world_size;
  if (const auto n = env::first_integer({"OMPI_COMM_WORLD_LOCAL_SIZE"}, 1)) local = *n;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, cores / local);
}

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


std::optional<std::string> resume_point(const config::ExperimentConfig& cfg,
                                        comm::Communicator& world) {
  const std::string ckdir = cfg.output.dir + "/checkpoints";
  const std::string& mode = cfg.train.resume;
  double step = -1.0;
  if (world.rank() == 0) {
    // never: nothing to resume (preflight refused a directory that holds checkpoints)
    if (mode == "auto") {
      std::vector<std::string> rejected;
      const auto found = checkpoint::find_resumable(ckdir, &rejected);
      for (const std::string& r : rejected) log::warn("skipping a checkpoint that does not verify: {}", r);
      if (found) step = static_cast<double>(found->step);
    } else if (mode != "never") {
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

void gather_parameters(const model::ParameterSet& params, backend::Ops& ops,
                       comm::Communicator& tp, model::ParameterSet* whole,
                       backend::Ops* whole_ops) {
  for (const model::Parameter& p : params.all()) {
    backend::Buffer local(DType::kF32, p.shape);
    ops.copy(local.tensor(), p.value);
    const std::int64_t n = p.shape.numel();
    // Every rank's shard (equal sizes; several ranks may hold the same one, as K/V heads
    // replicated when there are fewer than ranks) and where it starts.
    std::optional<backend::Buffer> all;
    std::vector<double> offsets(static_cast<std::size_t>(tp.size()), 0.0);
    if (p.shard_dim >= 0) {
      all.emplace(DType::kF32, Shape{tp.size() * n});
      tp.all_gather(local.tensor(), all->tensor());
      double mine = static_cast<double>(p.shard_offset);
      tp.all_gather(backend::Tensor{&mine, DType::kF64, Shape{1}},
                    backend::Tensor{offsets.data(), DType::kF64, Shape{tp.size()}});
    }
    if (whole == nullptr) continue;
    model::Parameter* w = whole->find(p.name);
    TAILOR_ASSERT(w != nullptr, "no parameter {} in the one-rank model", p.name);
    backend::Buffer out(DType::kF32, w->shape);
    float* dst = out.ptr<float>();
    const std::int64_t wcols = w->shape.rank() == 2 ? w->shape.cols() : 1;
    const std::int64_t wrows = w->shape.numel() / wcols;
    const std::int64_t gcols = p.global_shape.rank() == 2 ? p.global_shape.cols() : 1;
    TAILOR_ASSERT(p.global_shape.rank() == w->shape.rank() && gcols == wcols &&
                      p.global_shape.numel() / gcols >= wrows,
                  "parameter {}: global shape {} does not cover the one-rank shape {}", p.name,
                  p.global_shape.str(), w->shape.str());
    const int parts = p.shard_dim >= 0 ? tp.size() : 1;
    const float* src = p.shard_dim >= 0 ? all->ptr<float>() : local.ptr<float>();
    for (int r = 0; r < parts; ++r) {
      model::Parameter shard = p;  // rank r's placement
      shard.shard_offset = static_cast<std::int64_t>(offsets[static_cast<std::size_t>(r)]);
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t g = shard.global_index(i);
        if (g / gcols < wrows) dst[g] = src[r * n + i];  // rows past `whole` are TP padding
      }
    }
    whole_ops->copy(w->value, out.tensor());
  }
}

StepAgreement agree_step(comm::Communicator& world, bool bad_loss, bool stop) {
  double flags[2] = {bad_loss ? 1.0 : 0.0, stop ? 1.0 : 0.0};
  world.all_reduce(backend::Tensor{flags, DType::kF64, Shape{2}}, comm::ReduceOp::kMax);
  return {flags[0] > 0.0, flags[1] > 0.0};
}

FaultHooks FaultHooks::from_env() {
  FaultHooks h;
  // Each is "K[:rank]" (kill, hang) or "a,b,..." (NaN steps).
  const auto step_and_rank = [](const char* name, std::int64_t& step, int& rank) {
    const std::optional<std::string> v = env::get(name);
    if (!v) return;
    step = std::atoll(v->c_str());
    if (const auto colon = v->find(':'); colon != std::string::npos)
      rank = std::atoi(v->c_str() + colon + 1);
  };
  step_and_rank("TAILOR_FAULT_KILL_AFTER_STEP", h.kill_after, h.kill_rank);
  step_and_rank("TAILOR_FAULT_HANG_AT_STEP", h.hang_at, h.hang_rank);
  if (const std::optional<std::string> v = env::get("TAILOR_FAULT_NAN_STEPS"))
    for (const char* p = v->c_str(); *p != 0;) {
      h.nan_steps.push_back(std::atoll(p));
      const char* c = std::strchr(p, ',');
      if (c == nullptr) break;
      p = c + 1;
    }
  return h;
}

bool FaultHooks::nan_at(std::int64_t step) const {
  return std::find(nan_steps.begin(), nan_steps.end(), step) != nan_steps.end();
}

}  // namespace tailor::trainer
