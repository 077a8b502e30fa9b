#include "backend/profiling_ops.h"

namespace tailor::backend {

ProfilingOps::ProfilingOps(Ops& inner) : inner_(&inner), timer_(inner.make_event_timer()) {}

std::string ProfilingOps::describe() const { return inner_->describe() + ", profiled"; }

ProfilingOps::Mark ProfilingOps::begin() {
  Mark m;
  if (timer_) {
    m.event = next_event_++;
    timer_->record(m.event);
  } else {
    m.host = std::chrono::steady_clock::now();
  }
  return m;
}

void ProfilingOps::end(const char* kind, const Mark& m) {
  if (timer_) {
    const std::size_t to = next_event_++;
    timer_->record(to);
    pending_.push_back({kind, m.event, to});
    return;
  }
  OpTime& t = times_[kind];
  ++t.calls;
  t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - m.host).count();
}

std::map<std::string, OpTime> ProfilingOps::report() {
  inner_->synchronize();
  for (const Pending& p : pending_) {
    OpTime& t = times_[p.kind];
    ++t.calls;
    t.seconds += timer_->seconds(p.from, p.to);
  }
  pending_.clear();
  next_event_ = 0;  // the events are read: they can be recorded again
  return times_;
}

void ProfilingOps::clear() {
  inner_->synchronize();
  pending_.clear();
  next_event_ = 0;
  times_.clear();
}

void ProfilingOps::gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                        const Tensor& c, double alpha, double beta) {
  const Mark mark = begin();
  inner_->gemm(a, trans_a, b, trans_b, c, alpha, beta);
  end("gemm", mark);
}

void ProfilingOps::fill(const Tensor& x, double value) {
  const Mark mark = begin();
  inner_->fill(x, value);
  end("fill", mark);
}

void ProfilingOps::copy(const Tensor& dst, const Tensor& src) {
  const Mark mark = begin();
  inner_->copy(dst, src);
  end("copy", mark);
}

void ProfilingOps::add(const Tensor& y, const Tensor& x, double alpha) {
  const Mark mark = begin();
  inner_->add(y, x, alpha);
  end("add", mark);
}

void ProfilingOps::scale(const Tensor& x, double alpha) {
  const Mark mark = begin();
  inner_->scale(x, alpha);
  end("scale", mark);
}

double ProfilingOps::sum_squares(const Tensor& x) {
  const Mark mark = begin();
  const double r = inner_->sum_squares(x);
  end("sum_squares", mark);
  return r;
}

double ProfilingOps::weighted_sum_squares(std::span<const Tensor> xs,
                                          std::span<const double> weights) {
  const Mark mark = begin();
  const double r = inner_->weighted_sum_squares(xs, weights);
  end("weighted_sum_squares", mark);
  return r;
}

void ProfilingOps::add_bias(const Tensor& y, const Tensor& bias) {
  const Mark mark = begin();
  inner_->add_bias(y, bias);
  end("add_bias", mark);
}

void ProfilingOps::bias_backward(const Tensor& dbias, const Tensor& dy) {
  const Mark mark = begin();
  inner_->bias_backward(dbias, dy);
  end("bias_backward", mark);
}

void ProfilingOps::embedding_forward(const Tensor& table, const Tensor& ids,
                                     std::int64_t vocab_begin, const Tensor& out) {
  const Mark mark = begin();
  inner_->embedding_forward(table, ids, vocab_begin, out);
  end("embedding_forward", mark);
}

void ProfilingOps::embedding_backward(const Tensor& dtable, const Tensor& ids,
                                      std::int64_t vocab_begin, const Tensor& dout) {
  const Mark mark = begin();
  inner_->embedding_backward(dtable, ids, vocab_begin, dout);
  end("embedding_backward", mark);
}

void ProfilingOps::rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, const Tensor& y,
                                   const Tensor& rstd) {
  const Mark mark = begin();
  inner_->rmsnorm_forward(x, w, eps, y, rstd);
  end("rmsnorm_forward", mark);
}

void ProfilingOps::rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                    const Tensor& rstd, const Tensor& dx, const Tensor& dw) {
  const Mark mark = begin();
  inner_->rmsnorm_backward(dy, x, w, rstd, dx, dw);
  end("rmsnorm_backward", mark);
}

void ProfilingOps::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                                     const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const Mark mark = begin();
  inner_->layernorm_forward(x, w, b, eps, y, mean, rstd);
  end("layernorm_forward", mark);
}

void ProfilingOps::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                      const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                                      const Tensor& dw, const Tensor& db) {
  const Mark mark = begin();
  inner_->layernorm_backward(dy, x, w, mean, rstd, dx, dw, db);
  end("layernorm_backward", mark);
}

void ProfilingOps::rope_forward(const Tensor& x, const Tensor& positions, const Tensor& inv_freq) {
  const Mark mark = begin();
  inner_->rope_forward(x, positions, inv_freq);
  end("rope_forward", mark);
}

void ProfilingOps::rope_backward(const Tensor& dx, const Tensor& positions,
                                 const Tensor& inv_freq) {
  const Mark mark = begin();
  inner_->rope_backward(dx, positions, inv_freq);
  end("rope_backward", mark);
}

void ProfilingOps::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& doc_ids, double scale, std::int64_t window,
                                     const Tensor& out, const Tensor& lse) {
  const Mark mark = begin();
  inner_->attention_forward(q, k, v, doc_ids, scale, window, out, lse);
  end("attention_forward", mark);
}

void ProfilingOps::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const Tensor& out, const Tensor& lse,
                                      const Tensor& doc_ids, double scale, std::int64_t window,
                                      const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const Mark mark = begin();
  inner_->attention_backward(dout, q, k, v, out, lse, doc_ids, scale, window, dq, dk, dv);
  end("attention_backward", mark);
}

void ProfilingOps::attention_cached(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& start, double scale, std::int64_t window,
                                    const Tensor& out) {
  const Mark mark = begin();
  inner_->attention_cached(q, k, v, start, scale, window, out);
  end("attention_cached", mark);
}

void ProfilingOps::swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  const Mark mark = begin();
  inner_->swiglu_forward(gate, up, out);
  end("swiglu_forward", mark);
}

void ProfilingOps::swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                                   const Tensor& dgate, const Tensor& dup) {
  const Mark mark = begin();
  inner_->swiglu_backward(dout, gate, up, dgate, dup);
  end("swiglu_backward", mark);
}

void ProfilingOps::geglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  const Mark mark = begin();
  inner_->geglu_forward(gate, up, out);
  end("geglu_forward", mark);
}

void ProfilingOps::geglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                                  const Tensor& dgate, const Tensor& dup) {
  const Mark mark = begin();
  inner_->geglu_backward(dout, gate, up, dgate, dup);
  end("geglu_backward", mark);
}

void ProfilingOps::gelu_forward(const Tensor& x, const Tensor& out) {
  const Mark mark = begin();
  inner_->gelu_forward(x, out);
  end("gelu_forward", mark);
}

void ProfilingOps::gelu_backward(const Tensor& dout, const Tensor& x, const Tensor& dx) {
  const Mark mark = begin();
  inner_->gelu_backward(dout, x, dx);
  end("gelu_backward", mark);
}

void ProfilingOps::dropout(const Tensor& src, const Tensor& dst, double p, const DropoutKey& key) {
  const Mark mark = begin();
  inner_->dropout(src, dst, p, key);
  end("dropout", mark);
}

void ProfilingOps::cross_entropy(const Tensor& logits, const Tensor& targets,
                                 std::int64_t valid_vocab, const Tensor& losses,
                                 const Tensor& dlogits, double dscale) {
  const Mark mark = begin();
  inner_->cross_entropy(logits, targets, valid_vocab, losses, dlogits, dscale);
  end("cross_entropy", mark);
}

void ProfilingOps::ce_local_max(const Tensor& logits, std::int64_t valid_cols,
                                const Tensor& row_max) {
  const Mark mark = begin();
  inner_->ce_local_max(logits, valid_cols, row_max);
  end("ce_local_max", mark);
}

void ProfilingOps::ce_local_sums(const Tensor& logits, const Tensor& targets,
                                 std::int64_t vocab_begin, std::int64_t valid_cols,
                                 const Tensor& row_max, const Tensor& stats) {
  const Mark mark = begin();
  inner_->ce_local_sums(logits, targets, vocab_begin, valid_cols, row_max, stats);
  end("ce_local_sums", mark);
}

void ProfilingOps::ce_finish(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin,
                             std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats,
                             const Tensor& losses, const Tensor& dlogits, double dscale) {
  const Mark mark = begin();
  inner_->ce_finish(logits, targets, vocab_begin, valid_cols, row_max, stats, losses, dlogits,
                    dscale);
  end("ce_finish", mark);
}

void ProfilingOps::scale_columns(const Tensor& y, const Tensor& s) {
  const Mark mark = begin();
  inner_->scale_columns(y, s);
  end("scale_columns", mark);
}

void ProfilingOps::scale_columns_backward(const Tensor& ds, const Tensor& dy, const Tensor& x) {
  const Mark mark = begin();
  inner_->scale_columns_backward(ds, dy, x);
  end("scale_columns_backward", mark);
}

void ProfilingOps::adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m,
                                const Tensor& v, const AdamWHyper& hyper) {
  const Mark mark = begin();
  inner_->adamw_update(param, grad, m, v, hyper);
  end("adamw_update", mark);
}

void ProfilingOps::adamw_update_master(const Tensor& master, const Tensor& grad, const Tensor& m,
                                       const Tensor& v, const AdamWHyper& hyper,
                                       const Tensor& weights) {
  const Mark mark = begin();
  inner_->adamw_update_master(master, grad, m, v, hyper, weights);
  end("adamw_update_master", mark);
}

}  // namespace tailor::backend
