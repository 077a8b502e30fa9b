// Preference objectives over pairs of rows (see preference.h).
#include "objective/preference.h"

#include "core/error.h"

namespace tailor::objective {
namespace {

// Sum of each row's token losses (minus its log-probability).
std::vector<double> row_sums(std::span<const double> token_losses, std::int64_t rows,
                             std::int64_t seq) {
  std::vector<double> out(static_cast<std::size_t>(rows), 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t t = 0; t < seq; ++t)
      out[static_cast<std::size_t>(r)] += token_losses[static_cast<std::size_t>(r * seq + t)];
  return out;
}

}  // namespace

std::vector<std::int64_t> row_target_counts(const model::Batch& batch) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(batch.batch), 0);
  const std::int32_t* targets = batch.targets.ptr<std::int32_t>();
  for (std::int64_t r = 0; r < batch.batch; ++r)
    for (std::int64_t t = 0; t < batch.seq; ++t)
      out[static_cast<std::size_t>(r)] += targets[r * batch.seq + t] != backend::kIgnoreIndex;
  return out;
}

Preference::Preference(const PreferenceParams& params, model::Transformer* reference)
    : Preference(params, reference != nullptr ? model_reference(*reference) : nullptr) {}

Preference::Preference(const PreferenceParams& params, std::unique_ptr<ReferenceSource> reference)
    : params_(params),
      reference_(reference != nullptr ? std::move(reference) : adapters_off_reference()) {}

std::string_view Preference::name() const {
  switch (params_.kind) {
    case PreferenceKind::kDpo: return "dpo";
    case PreferenceKind::kIpo: return "dpo (ipo)";
    case PreferenceKind::kCpo: return "cpo";
    case PreferenceKind::kSimpo: return "simpo";
    case PreferenceKind::kOrpo: return "orpo";
  }
  return "preference";
}

void Preference::Sums::add(const PairTerms& t, double pc, double pr) {
  v[0] += t.reward_chosen;
  v[1] += t.reward_rejected;
  v[2] += t.reward_chosen > t.reward_rejected ? 1.0 : 0.0;
  v[3] += t.reward_chosen - t.reward_rejected;
  v[4] += pc;
  v[5] += pr;
}

void Preference::begin_step(std::span<const model::Batch* const> micro_batches,
                            comm::Communicator& dp) {
  std::int64_t pairs = 0, chosen = 0;
  for (const model::Batch* b : micro_batches) {
    TAILOR_ASSERT(b->batch % 2 == 0, "a preference micro-batch of {} rows", b->batch);
    pairs += b->batch / 2;
    const std::vector<std::int64_t> counts = row_target_counts(*b);
    for (std::size_t r = 0; r < counts.size(); r += 2) chosen += counts[r];
  }
  pairs_ = dp.all_reduce_sum(pairs);
  chosen_tokens_ = dp.all_reduce_sum(chosen);
  step_sums_ = {};
}

double Preference::pairs_of(model::Transformer& model, const model::Batch& batch, Sums& sums,
                            bool with_backward, const GradsReady& grads_ready) {
  const std::int64_t rows = batch.batch;
  const std::vector<std::int64_t> counts = row_target_counts(batch);
  // The reference first: the policy's forward must be the last before its backward.
  std::vector<double> ref(static_cast<std::size_t>(rows), 0.0);
  if (needs_reference(params_.kind)) ref = reference_->row_logps(model, batch);
  const std::vector<double> nll = row_sums(model.forward_token_losses(batch), rows, batch.seq);
  const bool avg = length_normalized(params_.kind);
  const double per_pair = pairs_ > 0 ? 1.0 / static_cast<double>(pairs_) : 0.0;
  const double per_token =
      chosen_tokens_ > 0 ? params_.nll_weight / static_cast<double>(chosen_tokens_) : 0.0;
  std::vector<double> weights(static_cast<std::size_t>(rows), 0.0);
  double loss = 0.0;
  for (std::int64_t i = 0; i < rows / 2; ++i) {
    const auto c = static_cast<std::size_t>(2 * i), r = c + 1;
    TAILOR_ASSERT(counts[c] > 0 && counts[r] > 0, "a pair side without answer tokens");
    // d(mean)/d(sum) = 1 / n for the length-normalized kinds.
    const double sc = avg ? 1.0 / static_cast<double>(counts[c]) : 1.0;
    const double sr = avg ? 1.0 / static_cast<double>(counts[r]) : 1.0;
    const double pc = -nll[c] * sc, pr = -nll[r] * sr;
    const PairTerms t = pair_terms(params_, pc, pr, ref[c] * sc, ref[r] * sr,
                                   static_cast<double>(counts[c]), static_cast<double>(counts[r]));
    loss += t.loss * per_pair + nll[c] * per_token;
    sums.add(t, pc, pr);
    sums.v[6] += nll[c];
    // The row's token-loss sum is -(its log-probability sum).
    weights[c] = -t.d_chosen * sc * per_pair + per_token;
    weights[r] = -t.d_rejected * sr * per_pair;
  }
  if (with_backward) model.backward_rows(batch, weights, grads_ready);
  return loss;
}

double Preference::micro_batch(model::Transformer& model, const model::Batch& batch,
                               const GradsReady& grads_ready) {
  return pairs_of(model, batch, step_sums_, /*with_backward=*/true, grads_ready);
}

PreferenceStats Preference::reduce(const Sums& sums, std::int64_t pairs,
                                   std::int64_t chosen_tokens, comm::Communicator& dp) const {
  backend::Buffer buf(DType::kF64, Shape{static_cast<std::int64_t>(sums.v.size())});
  for (std::size_t k = 0; k < sums.v.size(); ++k) buf.ptr<double>()[k] = sums.v[k];
  dp.all_reduce(buf.tensor(), comm::ReduceOp::kSum);
  const double* v = buf.ptr<double>();
  const double n = pairs > 0 ? static_cast<double>(pairs) : 1.0;
  PreferenceStats s;
  s.reward_chosen = v[0] / n;
  s.reward_rejected = v[1] / n;
  s.reward_accuracy = v[2] / n;
  s.reward_margin = v[3] / n;
  s.logp_chosen = v[4] / n;
  s.logp_rejected = v[5] / n;
  s.nll = chosen_tokens > 0 ? v[6] / static_cast<double>(chosen_tokens) : 0.0;
  return s;
}

double Preference::step_loss(double local_sum, comm::Communicator& dp) {
  step_stats_ = reduce(step_sums_, pairs_, chosen_tokens_, dp);
  return dp.all_reduce_sum(local_sum);
}

EvalLoss Preference::evaluate(model::Transformer& model, const data::PackedSequences& sequences,
                              comm::Communicator& dp) {
  TAILOR_ASSERT(sequences.rows_per_item() == 2, "preference evaluation of unpaired data");
  const std::int64_t t = sequences.seq_len();
  const Shape s{2 * t};
  backend::Buffer ids(DType::kI32, s), targets(DType::kI32, s), positions(DType::kI32, s),
      docs(DType::kI32, s);
  const model::Batch batch{2, t, ids.tensor(), targets.tensor(), positions.tensor(), docs.tensor()};
  const auto n = static_cast<std::size_t>(2 * t);
  // Every pair and chosen token of the dev set counts once: the normalizers first.
  std::int64_t pairs = 0, chosen = 0;
  for (std::int64_t i = dp.rank(); i < sequences.size(); i += dp.size()) {
    sequences.fill(i, {ids.ptr<std::int32_t>(), n}, {targets.ptr<std::int32_t>(), n},
                   {positions.ptr<std::int32_t>(), n}, {docs.ptr<std::int32_t>(), n});
    ++pairs;
    chosen += row_target_counts(batch)[0];
  }
  pairs_ = dp.all_reduce_sum(pairs);
  chosen_tokens_ = dp.all_reduce_sum(chosen);
  Sums sums;
  double loss = 0.0;
  for (std::int64_t i = dp.rank(); i < sequences.size(); i += dp.size()) {
    sequences.fill(i, {ids.ptr<std::int32_t>(), n}, {targets.ptr<std::int32_t>(), n},
                   {positions.ptr<std::int32_t>(), n}, {docs.ptr<std::int32_t>(), n});
    loss += pairs_of(model, batch, sums, /*with_backward=*/false, {});
  }
  eval_stats_ = reduce(sums, pairs_, chosen_tokens_, dp);
  return {dp.all_reduce_sum(loss), pairs_};
}

namespace {

std::vector<std::pair<std::string, double>> named(const PreferenceStats& s, bool nll) {
  std::vector<std::pair<std::string, double>> out = {
      {"rewards_chosen", s.reward_chosen}, {"rewards_rejected", s.reward_rejected},
      {"rewards_accuracy", s.reward_accuracy}, {"rewards_margin", s.reward_margin},
      {"logps_chosen", s.logp_chosen}, {"logps_rejected", s.logp_rejected}};
  if (nll) out.emplace_back("nll", s.nll);
  return out;
}

}  // namespace

std::vector<std::pair<std::string, double>> Preference::step_metrics() const {
  return named(step_stats_, params_.nll_weight > 0);
}

std::vector<std::pair<std::string, double>> Preference::eval_metrics() const {
  return named(eval_stats_, params_.nll_weight > 0);
}

}  // namespace tailor::objective
