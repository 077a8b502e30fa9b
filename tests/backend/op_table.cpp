// The op table: one entry per operation of backend::Ops (op_registry.h says how an entry runs).
//
// An entry builds its case for a scale: small odd shapes for the tests, shapes of a ~1B-parameter
// model's layer (cut to what two CPU cores time in seconds) for the benchmark. It lists the op's
// tensors in the order the call takes them, then calls the op on them (a[i] is tensor i).
// Backward entries compute what the forward pass saves (statistics, outputs) in `setup`, on the
// backend under test, as training does.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "op_registry.h"

namespace tailor::backend::test {
namespace {

using I64 = std::int64_t;
using Init = std::function<void(HostTensor&, std::uint64_t stream)>;

constexpr std::uint64_t kSeed = 17;
constexpr double kEps = 1e-5;
const AdamWHyper kAdamW{1e-2, 0.9, 0.999, 1e-8, 0.1, 3};

I64 pick(Scale s, I64 test, I64 perf) { return s == Scale::kTest ? test : perf; }

std::string dims(std::initializer_list<std::pair<const char*, I64>> d) {
  std::string s;
  for (const auto& [name, v] : d) {
    if (!s.empty()) s += ' ';
    s += name;
    s += std::to_string(v);
  }
  return s;
}

// Fills; `stream` is the tensor's position in its case, so each tensor draws its own numbers.
Init normal(double sigma) {
  return [=](HostTensor& h, std::uint64_t stream) { h.normal(kSeed, stream, sigma); };
}
Init uniform(double lo, double hi) {
  return [=](HostTensor& h, std::uint64_t stream) { h.uniform(kSeed, stream, lo, hi); };
}
Init ints(I64 lo, I64 hi) {
  return [=](HostTensor& h, std::uint64_t stream) { h.integers(kSeed, stream, lo, hi); };
}
Init copy_of(const HostTensor& values) {
  return [v = values.values()](HostTensor& h, std::uint64_t) { h.set_values(v); };
}

TensorSpec in(std::string name, Shape s, Kind k = Kind::kStore, Init init = {}) {
  return {std::move(name), k, Role::kIn, s, std::move(init)};
}
TensorSpec out(std::string name, Shape s, Kind k = Kind::kStore) {
  return {std::move(name), k, Role::kOut, s, {}};
}
TensorSpec inout(std::string name, Shape s, Kind k = Kind::kStore, Init init = {}) {
  return {std::move(name), k, Role::kInOut, s, std::move(init)};
}
TensorSpec saved(std::string name, Shape s, Kind k = Kind::kStore) {
  return {std::move(name), k, Role::kSaved, s, {}};
}
// t, of which a run touches only `rows` of its first dimension (for GB/s).
TensorSpec rows_touched(TensorSpec t, I64 rows) {
  t.touched = std::min(1.0, static_cast<double>(rows) / static_cast<double>(t.shape[0]));
  return t;
}

// A void call as an OpFn.
template <typename F>
OpFn call(F f) {
  return [f](Ops& o, const Args& a) -> std::optional<double> {
    f(o, a);
    return std::nullopt;
  };
}

// x[N, H, Dh] rotated in place (both directions share the case).
OpCase rope_case(Scale s, bool backward) {
  const I64 n = pick(s, 7, 4096), h = pick(s, 3, 16), dh = pick(s, 8, 64);
  return {dims({{"N", n}, {"H", h}, {"Dh", dh}}),
          {inout("x", Shape{n, h, dh}), in("positions", Shape{n}, Kind::kI32, ints(0, 4096)),
           in("inv_freq", Shape{dh / 2}, Kind::kF32, copy_of(make_inv_freq(dh)))},
          backward ? call([](Ops& o, const Args& a) { o.rope_backward(a[0], a[1], a[2]); })
                   : call([](Ops& o, const Args& a) { o.rope_forward(a[0], a[1], a[2]); })};
}

// Causal attention with grouped-query heads over packed documents.
struct Attn {
  I64 b, t, hq, hkv, dh;
  // llama_1b: the perf shape of one Llama-3.2-1B layer (B 4, T 1024, 32 / 8 heads of 64), and
  // a test shape with T not a multiple of 64 and a head dim cuDNN takes.
  explicit Attn(Scale s, bool llama_1b = false)
      : b(llama_1b ? pick(s, 2, 4) : pick(s, 2, 2)),
        t(llama_1b ? pick(s, 37, 1024) : pick(s, 9, 512)),
        hq(llama_1b ? pick(s, 4, 32) : pick(s, 4, 16)),
        hkv(llama_1b ? pick(s, 2, 8) : pick(s, 2, 4)),
        dh(llama_1b ? pick(s, 16, 64) : pick(s, 8, 64)) {}
  [[nodiscard]] std::string str() const {
    return dims({{"B", b}, {"T", t}, {"Hq", hq}, {"Hkv", hkv}, {"Dh", dh}});
  }
  [[nodiscard]] Shape q() const { return Shape{b, t, hq, dh}; }
  [[nodiscard]] Shape kv() const { return Shape{b, t, hkv, dh}; }
  [[nodiscard]] Shape lse() const { return Shape{b, hq, t}; }
  [[nodiscard]] TensorSpec doc_ids() const {
    return in("doc_ids", Shape{b, t}, Kind::kI32, copy_of(make_doc_ids(b, t, Docs::kPacked, 5)));
  }
  [[nodiscard]] double scale() const { return 1.0 / std::sqrt(static_cast<double>(dh)); }
  // QK^T and PV over the causal half: 2 * 2 * (B Hq T^2 Dh / 2).
  [[nodiscard]] double flops() const { return 2.0 * static_cast<double>(b * hq * t * t * dh); }
};

// Causal attention over packed documents, with a sliding window when window > 0.
OpCase attention_forward_case(Scale s, I64 window) {
  const Attn d(s);
  const double sc = d.scale();
  return {d.str() + (window > 0 ? " W" + std::to_string(window) : ""),
          {in("q", d.q()), in("k", d.kv()), in("v", d.kv()), d.doc_ids(), out("out", d.q()),
           out("lse", d.lse(), Kind::kAccum)},
          call([sc, window](Ops& o, const Args& a) {
            o.attention_forward(a[0], a[1], a[2], a[3], sc, window, a[4], a[5]);
          }),
          /*setup=*/{},
          d.flops()};
}

OpCase attention_backward_case(Scale s, I64 window) {
  const Attn d(s);
  const double sc = d.scale();
  return {d.str() + (window > 0 ? " W" + std::to_string(window) : ""),
          {in("dout", d.q()), in("q", d.q()), in("k", d.kv()), in("v", d.kv()),
           saved("out", d.q()), saved("lse", d.lse(), Kind::kAccum), d.doc_ids(),
           out("dq", d.q()), out("dk", d.kv()), out("dv", d.kv())},
          call([sc, window](Ops& o, const Args& a) {
            o.attention_backward(a[0], a[1], a[2], a[3], a[4], a[5], a[6], sc, window, a[7], a[8],
                                 a[9]);
          }),
          call([sc, window](Ops& o, const Args& a) {
            o.attention_forward(a[1], a[2], a[3], a[6], sc, window, a[4], a[5]);
          }),
          2.5 * d.flops()};  // five products of the forward's size instead of two
}

// Tq new queries per row, a cache of S tokens.
OpCase attention_cached_case(Scale s, I64 window) {
  const I64 b = pick(s, 3, 8), tq = pick(s, 2, 1), cap = pick(s, 11, 2048), hq = pick(s, 4, 16),
            hkv = pick(s, 2, 4), dh = pick(s, 8, 64);
  const double sc = 1.0 / std::sqrt(static_cast<double>(dh));
  return {dims({{"B", b}, {"Tq", tq}, {"S", cap}, {"Hq", hq}, {"Hkv", hkv}, {"Dh", dh}}) +
              (window > 0 ? " W" + std::to_string(window) : ""),
          {in("q", Shape{b, tq, hq, dh}), in("k", Shape{b, cap, hkv, dh}),
           in("v", Shape{b, cap, hkv, dh}),
           in("start", Shape{b}, Kind::kI32, ints(0, cap - tq + 1)),
           out("out", Shape{b, tq, hq, dh})},
          call([sc, window](Ops& o, const Args& a) {
            o.attention_cached(a[0], a[1], a[2], a[3], sc, window, a[4]);
          }),
          /*setup=*/{},
          2.0 * static_cast<double>(b * tq * hq * cap * dh)};  // half the cache on average
}

// Cross-entropy over V columns of which the last 3 are padding; a quarter of the rows ignored.
// The vocab-parallel phases see one shard: global columns [4, 4 + V) of a 4 + V + 5 vocabulary,
// with targets anywhere in it.
constexpr I64 kPad = 3;
constexpr I64 kShardBegin = 4;
TensorSpec logits(I64 n, I64 v) { return in("logits", Shape{n, v}, Kind::kStore, normal(2.0)); }
TensorSpec shard_targets(I64 n, I64 v) {
  return in("targets", Shape{n}, Kind::kI32, copy_of(make_targets(n, kShardBegin + v + 5, 7)));
}

}  // namespace

const std::vector<OpEntry>& op_table() {
  static const std::vector<OpEntry> table = {
      // ---- dense linear algebra --------------------------------------------------------------
      {"gemm_nn",
       [](Scale s) -> OpCase {  // c[M, N] = a[M, K] @ b[K, N]
         const I64 m = pick(s, 7, 1024), n = pick(s, 5, 1024), k = pick(s, 33, 1024);
         return {
             dims({{"M", m}, {"N", n}, {"K", k}}),
             {in("a", Shape{m, k}), in("b", Shape{k, n}), out("c", Shape{m, n})},
             call([](Ops& o, const Args& a) { o.gemm(a[0], false, a[1], false, a[2], 1.0, 0.0); }),
             /*setup=*/{},
             2.0 * static_cast<double>(m * n * k)};
       }},
      {"gemm_nt",
       [](Scale s) -> OpCase {  // a linear layer: y[M, N] = 0.5 x[M, K] @ w[N, K]^T
         const I64 m = pick(s, 9, 2048), n = pick(s, 6, 1024), k = pick(s, 17, 1024);
         return {
             dims({{"M", m}, {"N", n}, {"K", k}}),
             {in("x", Shape{m, k}), in("w", Shape{n, k}), out("y", Shape{m, n})},
             call([](Ops& o, const Args& a) { o.gemm(a[0], false, a[1], true, a[2], 0.5, 0.0); }),
             /*setup=*/{},
             2.0 * static_cast<double>(m * n * k)};
       }},
      {"gemm_tn_accum",
       [](Scale s) -> OpCase {  // a weight gradient: dw[M, N] += x[K, M]^T dy[K, N]
         const I64 m = pick(s, 5, 1024), n = pick(s, 6, 1024), k = pick(s, 11, 2048);
         return {
             dims({{"M", m}, {"N", n}, {"K", k}}),
             {in("x", Shape{k, m}), in("dy", Shape{k, n}), inout("dw", Shape{m, n}, Kind::kAccum)},
             call([](Ops& o, const Args& a) { o.gemm(a[0], true, a[1], false, a[2], 1.0, 1.0); }),
             /*setup=*/{},
             2.0 * static_cast<double>(m * n * k)};
       }},

      // ---- elementwise and reductions --------------------------------------------------------
      {"fill",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 37, 1 << 24);
         return {dims({{"N", n}}), {out("x", Shape{n})}, call([](Ops& o, const Args& a) {
                   o.fill(a[0], 0.5);
                 })};
       }},
      {"copy_widen",
       [](Scale s) -> OpCase {  // storage -> accumulator dtype (bf16 -> f32)
         const I64 n = pick(s, 37, 1 << 24);
         return {dims({{"N", n}}),
                 {in("src", Shape{n}), out("dst", Shape{n}, Kind::kAccum)},
                 call([](Ops& o, const Args& a) { o.copy(a[1], a[0]); })};
       }},
      {"copy_narrow",
       [](Scale s) -> OpCase {  // master weights -> weights (f32 -> bf16)
         const I64 n = pick(s, 37, 1 << 24);
         return {dims({{"N", n}}),
                 {in("src", Shape{n}, Kind::kAccum), out("dst", Shape{n})},
                 call([](Ops& o, const Args& a) { o.copy(a[1], a[0]); })};
       }},
      {"add",
       [](Scale s) -> OpCase {  // y (an accumulator) += alpha x
         const I64 n = pick(s, 37, 1 << 24);
         return {dims({{"N", n}}),
                 {inout("y", Shape{n}, Kind::kAccum), in("x", Shape{n})},
                 call([](Ops& o, const Args& a) { o.add(a[0], a[1], -1.25); })};
       }},
      {"scale",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 37, 1 << 24);
         return {dims({{"N", n}}), {inout("x", Shape{n})}, call([](Ops& o, const Args& a) {
                   o.scale(a[0], -1.25);
                 })};
       }},
      {"sum_squares",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 37, 1 << 24);
         return {
             dims({{"N", n}}),
             {in("x", Shape{n})},
             [](Ops& o, const Args& a) -> std::optional<double> { return o.sum_squares(a[0]); }};
       }},
      {"weighted_sum_squares",
       [](Scale s) -> OpCase {  // a gradient norm's local part
         const I64 n = pick(s, 37, 1 << 22);
         return {dims({{"N", n}}),
                 {in("g0", Shape{n}, Kind::kAccum), in("g1", Shape{n + 3}, Kind::kAccum),
                  in("g2", Shape{n / 2}, Kind::kAccum)},
                 [](Ops& o, const Args& a) -> std::optional<double> {
                   const double w[] = {1.0, 0.5, 1.0};
                   return o.weighted_sum_squares(a, w);
                 }};
       }},
      {"add_bias",
       [](Scale s) -> OpCase {  // y[N, D] += bias[D]
         const I64 n = pick(s, 5, 4096), d = pick(s, 33, 2048);
         return {dims({{"N", n}, {"D", d}}),
                 {inout("y", Shape{n, d}), in("bias", Shape{d})},
                 call([](Ops& o, const Args& a) { o.add_bias(a[0], a[1]); })};
       }},
      {"bias_backward",
       [](Scale s) -> OpCase {  // dbias[D] += column sums of dy[N, D]
         const I64 n = pick(s, 5, 4096), d = pick(s, 33, 2048);
         return {dims({{"N", n}, {"D", d}}),
                 {inout("dbias", Shape{d}, Kind::kAccum), in("dy", Shape{n, d})},
                 call([](Ops& o, const Args& a) { o.bias_backward(a[0], a[1]); })};
       }},
      {"scale_columns",
       [](Scale s) -> OpCase {  // y[N, D] *= s[D]
         const I64 n = pick(s, 5, 4096), d = pick(s, 33, 2048);
         return {dims({{"N", n}, {"D", d}}),
                 {inout("y", Shape{n, d}), in("s", Shape{d})},
                 call([](Ops& o, const Args& a) { o.scale_columns(a[0], a[1]); })};
       }},
      {"scale_columns_backward",
       [](Scale s) -> OpCase {  // ds[D] += column sums of dy * x
         const I64 n = pick(s, 5, 4096), d = pick(s, 33, 2048);
         return {dims({{"N", n}, {"D", d}}),
                 {inout("ds", Shape{d}, Kind::kAccum), in("dy", Shape{n, d}),
                  in("x", Shape{n, d})},
                 call([](Ops& o, const Args& a) {
                   o.scale_columns_backward(a[0], a[1], a[2]);
                 })};
       }},

      // ---- embedding: a shard holding rows [3, 3 + V); some ids fall outside it -------------
      {"embedding_forward",
       [](Scale s) -> OpCase {
         const I64 v = pick(s, 11, 32000), d = pick(s, 6, 1024), n = pick(s, 13, 4096);
         return {dims({{"V", v}, {"D", d}, {"N", n}}),
                 {rows_touched(in("table", Shape{v, d}), n),
                  in("ids", Shape{n}, Kind::kI32, ints(0, v + 6)), out("out", Shape{n, d})},
                 call([](Ops& o, const Args& a) { o.embedding_forward(a[0], a[1], 3, a[2]); })};
       }},
      {"embedding_backward",
       [](Scale s) -> OpCase {
         const I64 v = pick(s, 11, 32000), d = pick(s, 6, 1024), n = pick(s, 13, 4096);
         return {dims({{"V", v}, {"D", d}, {"N", n}}),
                 {rows_touched(inout("dtable", Shape{v, d}, Kind::kAccum), n),
                  in("ids", Shape{n}, Kind::kI32, ints(0, v + 6)), in("dout", Shape{n, d})},
                 call([](Ops& o, const Args& a) { o.embedding_backward(a[0], a[1], 3, a[2]); })};
       }},

      // ---- normalization ---------------------------------------------------------------------
      {"rmsnorm_forward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), d = pick(s, 33, 2048);
         return {
             dims({{"N", n}, {"D", d}}),
             {in("x", Shape{n, d}), in("w", Shape{d}), out("y", Shape{n, d}),
              out("rstd", Shape{n}, Kind::kAccum)},
             call([](Ops& o, const Args& a) { o.rmsnorm_forward(a[0], a[1], kEps, a[2], a[3]); })};
       }},
      {"rmsnorm_backward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), d = pick(s, 33, 2048);
         return {
             dims({{"N", n}, {"D", d}}),
             {in("dy", Shape{n, d}), in("x", Shape{n, d}), in("w", Shape{d}),
              saved("rstd", Shape{n}, Kind::kAccum), out("dx", Shape{n, d}),
              inout("dw", Shape{d}, Kind::kAccum), saved("y", Shape{n, d})},
             call([](Ops& o, const Args& a) {
               o.rmsnorm_backward(a[0], a[1], a[2], a[3], a[4], a[5]);
             }),
             call([](Ops& o, const Args& a) { o.rmsnorm_forward(a[1], a[2], kEps, a[6], a[3]); })};
       }},
      {"layernorm_forward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), d = pick(s, 33, 2048);
         return {dims({{"N", n}, {"D", d}}),
                 {in("x", Shape{n, d}), in("w", Shape{d}), in("b", Shape{d}), out("y", Shape{n, d}),
                  out("mean", Shape{n}, Kind::kAccum), out("rstd", Shape{n}, Kind::kAccum)},
                 call([](Ops& o, const Args& a) {
                   o.layernorm_forward(a[0], a[1], a[2], kEps, a[3], a[4], a[5]);
                 })};
       }},
      {"layernorm_backward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), d = pick(s, 33, 2048);
         return {dims({{"N", n}, {"D", d}}),
                 {in("dy", Shape{n, d}), in("x", Shape{n, d}), in("w", Shape{d}), in("b", Shape{d}),
                  saved("mean", Shape{n}, Kind::kAccum), saved("rstd", Shape{n}, Kind::kAccum),
                  out("dx", Shape{n, d}), inout("dw", Shape{d}, Kind::kAccum),
                  inout("db", Shape{d}, Kind::kAccum), saved("y", Shape{n, d})},
                 call([](Ops& o, const Args& a) {
                   o.layernorm_backward(a[0], a[1], a[2], a[4], a[5], a[6], a[7], a[8]);
                 }),
                 call([](Ops& o, const Args& a) {
                   o.layernorm_forward(a[1], a[2], a[3], kEps, a[9], a[4], a[5]);
                 })};
       }},

      // ---- rotary position embedding -------------------------------------------------------
      {"rope_forward", [](Scale s) { return rope_case(s, false); }},
      {"rope_backward", [](Scale s) { return rope_case(s, true); }},

      // ---- attention -------------------------------------------------------------------------
      {"attention_forward", [](Scale s) { return attention_forward_case(s, 0); }},
      {"attention_backward", [](Scale s) { return attention_backward_case(s, 0); }},
      // The same ops on one causal document per row (no doc_ids): the case cuDNN's fused
      // attention takes on cuda_bf16 (cuda_bf16_tailor runs Tailor's kernels); the perf shape is
      // one Llama-3.2-1B layer at B 4, T 1024.
      {"attention_forward_causal",
       [](Scale s) -> OpCase {
         const Attn d(s, /*llama_1b=*/true);
         const double sc = d.scale();
         return {d.str(),
                 {in("q", d.q()), in("k", d.kv()), in("v", d.kv()), out("out", d.q()),
                  out("lse", d.lse(), Kind::kAccum)},
                 call([sc](Ops& o, const Args& a) {
                   o.attention_forward(a[0], a[1], a[2], backend::Tensor{}, sc, 0, a[3], a[4]);
                 }),
                 /*setup=*/{},
                 d.flops()};
       }},
      {"attention_backward_causal",
       [](Scale s) -> OpCase {
         const Attn d(s, /*llama_1b=*/true);
         const double sc = d.scale();
         return {d.str(),
                 {in("dout", d.q()), in("q", d.q()), in("k", d.kv()), in("v", d.kv()),
                  saved("out", d.q()), saved("lse", d.lse(), Kind::kAccum), out("dq", d.q()),
                  out("dk", d.kv()), out("dv", d.kv())},
                 call([sc](Ops& o, const Args& a) {
                   o.attention_backward(a[0], a[1], a[2], a[3], a[4], a[5], backend::Tensor{}, sc,
                                        0, a[6], a[7], a[8]);
                 }),
                 call([sc](Ops& o, const Args& a) {
                   o.attention_forward(a[1], a[2], a[3], backend::Tensor{}, sc, 0, a[4], a[5]);
                 }),
                 2.5 * d.flops()};
       }},
      {"attention_cached", [](Scale s) { return attention_cached_case(s, 0); }},
      // Sliding windows a few times shorter than the sequence (or cache).
      {"attention_forward_window",
       [](Scale s) { return attention_forward_case(s, pick(s, 3, 128)); }},
      {"attention_backward_window",
       [](Scale s) { return attention_backward_case(s, pick(s, 3, 128)); }},
      {"attention_cached_window",
       [](Scale s) { return attention_cached_case(s, pick(s, 4, 256)); }},

      // ---- MLP activations -------------------------------------------------------------------
      {"swiglu_forward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), f = pick(s, 19, 5632);
         return {dims({{"N", n}, {"F", f}}),
                 {in("gate", Shape{n, f}), in("up", Shape{n, f}), out("out", Shape{n, f})},
                 call([](Ops& o, const Args& a) { o.swiglu_forward(a[0], a[1], a[2]); })};
       }},
      {"swiglu_backward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), f = pick(s, 19, 5632);
         return {
             dims({{"N", n}, {"F", f}}),
             {in("dout", Shape{n, f}), in("gate", Shape{n, f}), in("up", Shape{n, f}),
              out("dgate", Shape{n, f}), out("dup", Shape{n, f})},
             call([](Ops& o, const Args& a) { o.swiglu_backward(a[0], a[1], a[2], a[3], a[4]); })};
       }},
      {"geglu_forward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), f = pick(s, 19, 5632);
         return {dims({{"N", n}, {"F", f}}),
                 {in("gate", Shape{n, f}), in("up", Shape{n, f}), out("out", Shape{n, f})},
                 call([](Ops& o, const Args& a) { o.geglu_forward(a[0], a[1], a[2]); })};
       }},
      {"geglu_backward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), f = pick(s, 19, 5632);
         return {
             dims({{"N", n}, {"F", f}}),
             {in("dout", Shape{n, f}), in("gate", Shape{n, f}), in("up", Shape{n, f}),
              out("dgate", Shape{n, f}), out("dup", Shape{n, f})},
             call([](Ops& o, const Args& a) { o.geglu_backward(a[0], a[1], a[2], a[3], a[4]); })};
       }},
      {"gelu_forward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), f = pick(s, 19, 4096);
         return {dims({{"N", n}, {"F", f}}),
                 {in("x", Shape{n, f}, Kind::kStore, normal(2.0)), out("out", Shape{n, f})},
                 call([](Ops& o, const Args& a) { o.gelu_forward(a[0], a[1]); })};
       }},
      {"gelu_backward",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), f = pick(s, 19, 4096);
         return {dims({{"N", n}, {"F", f}}),
                 {in("dout", Shape{n, f}), in("x", Shape{n, f}, Kind::kStore, normal(2.0)),
                  out("dx", Shape{n, f})},
                 call([](Ops& o, const Args& a) { o.gelu_backward(a[0], a[1], a[2]); })};
       }},

      // ---- dropout: rows from 5, columns [2, 2 + C) of a C + 4 wide tensor -----------------
      {"dropout",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 5, 4096), c = pick(s, 19, 2048);
         const DropoutKey key{7, 3, 5, c + 4, 2};
         return {dims({{"N", n}, {"C", c}}),
                 {in("src", Shape{n, c}), out("dst", Shape{n, c})},
                 call([key](Ops& o, const Args& a) { o.dropout(a[0], a[1], 0.25, key); })};
       }},

      // ---- softmax cross-entropy ------------------------------------------------------------
      {"cross_entropy",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 6, 512), v = pick(s, 23, 32000);
         const double dscale = 1.0 / static_cast<double>(n);
         return {dims({{"N", n}, {"V", v}}),
                 {logits(n, v),
                  in("targets", Shape{n}, Kind::kI32, copy_of(make_targets(n, v - kPad, 7))),
                  out("losses", Shape{n}, Kind::kAccum), out("dlogits", Shape{n, v})},
                 call([v, dscale](Ops& o, const Args& a) {
                   o.cross_entropy(a[0], a[1], v - kPad, a[2], a[3], dscale);
                 })};
       }},
      {"ce_local_max",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 6, 1024), v = pick(s, 23, 16000);
         return {dims({{"N", n}, {"V", v}}),
                 {logits(n, v), out("row_max", Shape{n}, Kind::kAccum)},
                 call([v](Ops& o, const Args& a) { o.ce_local_max(a[0], v - kPad, a[1]); })};
       }},
      {"ce_local_sums",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 6, 1024), v = pick(s, 23, 16000);
         return {dims({{"N", n}, {"V", v}}),
                 {logits(n, v), shard_targets(n, v), saved("row_max", Shape{n}, Kind::kAccum),
                  out("stats", Shape{2, n}, Kind::kAccum)},
                 call([v](Ops& o, const Args& a) {
                   o.ce_local_sums(a[0], a[1], kShardBegin, v - kPad, a[2], a[3]);
                 }),
                 call([v](Ops& o, const Args& a) { o.ce_local_max(a[0], v - kPad, a[2]); })};
       }},
      {"ce_finish",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 6, 1024), v = pick(s, 23, 16000);
         const double dscale = 1.0 / static_cast<double>(n);
         return {dims({{"N", n}, {"V", v}}),
                 {logits(n, v), shard_targets(n, v), saved("row_max", Shape{n}, Kind::kAccum),
                  saved("stats", Shape{2, n}, Kind::kAccum), out("losses", Shape{n}, Kind::kAccum),
                  out("dlogits", Shape{n, v})},
                 call([v, dscale](Ops& o, const Args& a) {
                   o.ce_finish(a[0], a[1], kShardBegin, v - kPad, a[2], a[3], a[4], a[5], dscale);
                 }),
                 call([v](Ops& o, const Args& a) {
                   o.ce_local_max(a[0], v - kPad, a[2]);
                   o.ce_local_sums(a[0], a[1], kShardBegin, v - kPad, a[2], a[3]);
                 })};
       }},

      // ---- optimizer: f32 state in every mode (the master weights) --------------------------
      {"adamw_update",
       [](Scale s) -> OpCase {
         const I64 n = pick(s, 37, 1 << 22);
         return {
             dims({{"N", n}}),
             {inout("param", Shape{n}, Kind::kAccum), in("grad", Shape{n}, Kind::kAccum),
              inout("m", Shape{n}, Kind::kAccum, normal(0.1)),
              inout("v", Shape{n}, Kind::kAccum, uniform(0.0, 0.01))},
             call([](Ops& o, const Args& a) { o.adamw_update(a[0], a[1], a[2], a[3], kAdamW); })};
       }},
      {"adamw_update_master",
       [](Scale s) -> OpCase {  // then weights = master, rounded
         const I64 n = pick(s, 37, 1 << 22);
         return {dims({{"N", n}}),
                 {inout("master", Shape{n}, Kind::kAccum), in("grad", Shape{n}, Kind::kAccum),
                  inout("m", Shape{n}, Kind::kAccum, normal(0.1)),
                  inout("v", Shape{n}, Kind::kAccum, uniform(0.0, 0.01)), out("weights", Shape{n})},
                 call([](Ops& o, const Args& a) {
                   o.adamw_update_master(a[0], a[1], a[2], a[3], kAdamW, a[4]);
                 })};
       }},
  };
  return table;
}

}  // namespace tailor::backend::test
