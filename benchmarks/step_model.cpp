#include "step_model.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

#include "model/transformer.h"

namespace tailor::bench {

model::ModelSpec preset_spec(const std::string& name) {
  model::ModelSpec s;
  if (name == "llama-3.2-1b") {
    s.vocab_size = 128256;
    s.hidden_size = 2048;
    s.num_layers = 16;
    s.num_heads = 32;
    s.num_kv_heads = 8;
    s.head_dim = 64;
    s.intermediate_size = 8192;
    s.tie_embeddings = true;
    s.rope_theta = 500000.0;
  } else if (name == "llama-3.1-8b") {
    s.vocab_size = 128256;
    s.hidden_size = 4096;
    s.num_layers = 32;
    s.num_heads = 32;
    s.num_kv_heads = 8;
    s.head_dim = 128;
    s.intermediate_size = 14336;
    s.rope_theta = 500000.0;
  } else if (name == "gemma3-head") {
    // The LM head and embedding of Gemma-3-1B (vocabulary 262,144, hidden 1,152, tied) on one
    // small LLaMA-style layer: where the [tokens, vocabulary] logits dominate memory.
    s.vocab_size = 262144;
    s.hidden_size = 1152;
    s.num_layers = 1;
    s.num_heads = 4;
    s.num_kv_heads = 1;
    s.head_dim = 256;
    s.intermediate_size = 6912;
    s.tie_embeddings = true;
  } else if (name == "small") {  // a CPU-sized LLaMA: 8 layers, hidden 512, vocab 8192 (30M)
    s.vocab_size = 8192;
    s.hidden_size = 512;
    s.num_layers = 8;
    s.num_heads = 8;
    s.num_kv_heads = 4;
    s.head_dim = 64;
    s.intermediate_size = 1408;
  } else {
    TAILOR_CHECK_USER(name == "tiny", "--preset",
                      "unknown preset {} (llama-3.2-1b, llama-3.1-8b, gemma3-head, small, tiny)",
                      name);
    s.vocab_size = 512;
    s.hidden_size = 128;
    s.num_layers = 2;
    s.num_heads = 4;
    s.num_kv_heads = 2;
    s.head_dim = 32;
    s.intermediate_size = 256;
  }
  return s;
}

double ModeledOp::seconds(const Ceilings& c) const {
  const bool attention = kind.rfind("attention", 0) == 0;
  const double peak = (attention ? c.attention_tflops : c.gemm_tflops) * 1e12;
  return std::max(flops / peak, bytes / (c.memory_tbs * 1e12)) + c.launch_us * 1e-6;
}

namespace {

struct Builder {
  std::vector<ModeledOp> ops;
  double e = 2;  // bytes of an activation or weight element

  // What the epilogue of a GEMM does with C: write it (beta = 0), or read an m x n input of the
  // same type beside writing it (beta != 0: accumulating onto C, or C = W + A B out of place).
  enum class C { kWrite, kReadWrite };

  // C[m, n] (+)= A[m, k] B[k, n]: A and B in `e` bytes, C in `c_bytes`.
  void gemm(const std::string& name, double count, double m, double n, double k, double c_bytes,
            C c = C::kWrite) {
    ops.push_back({name, "gemm", count, 2 * m * n * k,
                   (m * k + k * n) * e + m * n * c_bytes * (c == C::kReadWrite ? 2 : 1)});
  }
  void mem(const std::string& name, const std::string& kind, double count, double bytes,
           double flops = 0) {
    ops.push_back({name, kind, count, flops, bytes});
  }
};

}  // namespace

std::vector<ModeledOp> model_step(const model::ModelSpec& spec, const StepShape& s) {
  Builder b;
  b.e = s.activation_bytes;
  const double e = b.e, f32 = 4;
  const double n = static_cast<double>(s.batch * s.seq), t = static_cast<double>(s.seq);
  const double d = static_cast<double>(spec.hidden_size);
  const double q = static_cast<double>(spec.q_dim()), kv = static_cast<double>(spec.kv_dim());
  const double f = static_cast<double>(spec.intermediate_size);
  const double v = static_cast<double>(spec.padded_vocab());
  const double layers = static_cast<double>(spec.num_layers);
  const double heads = static_cast<double>(spec.num_heads);
  const double hd = static_cast<double>(spec.head_dim);
  const bool lora = s.lora_rank > 0;
  const double r = static_cast<double>(s.lora_rank);
  const double full = lora ? 0 : 1;  // weight gradients of the base exist

  // The linears of a layer: name, input width, output width (Q/K/V and gate/up fused).
  struct Linear {
    const char* name;
    double in, out;
  };
  const Linear linears[] = {{"qkv", d, q + 2 * kv}, {"o", q, d}, {"gate_up", d, 2 * f},
                            {"down", f, d}};
  const Linear lora_targets[] = {{"q", d, q},      {"k", d, kv},    {"v", d, kv}, {"o", q, d},
                                 {"gate", d, f},   {"up", d, f},    {"down", f, d}};

  // ---- forward ---------------------------------------------------------------------------
  b.mem("embedding forward", "embedding_forward", 1, 2 * n * d * e);
  // Causal attention: QK^T and PV over the lower triangle, 2 x 2 B H T^2 Dh / 2 FLOPs.
  const double attn_fwd_flops = 2 * n * t * heads * hd;
  for (const Linear& l : linears) {
    if (std::string(l.name) == "qkv") {
      // The residual add of the previous layer fused into the norm: read x and delta, write
      // the sum and the normalized copy.
      b.mem("layer.attn_norm (+ residual add) forward", "rmsnorm_forward", layers, 4 * n * d * e);
    }
    if (std::string(l.name) == "gate_up")
      b.mem("layer.mlp_norm (+ residual add) forward", "rmsnorm_forward", layers, 4 * n * d * e);
    if (std::string(l.name) == "down")
      b.mem("layer.swiglu forward", "swiglu_forward", layers, 3 * n * f * e);
    // With LoRA the adapter's u B^T is written first and the base GEMM accumulates onto it
    // (unless the weights are merged).
    b.gemm("layer." + std::string(l.name) + " forward", layers, n, l.out, l.in, e,
           lora && !s.lora_merged ? Builder::C::kReadWrite : Builder::C::kWrite);
    if (std::string(l.name) == "qkv") {
      b.mem("layer.rope q,k forward", "rope_forward", layers, 2 * n * (q + kv) * e);
      b.mem("layer.attention forward (fused)", "attention_forward", layers,
            n * (q + 2 * kv) * e + n * q * e + n * heads * f32, attn_fwd_flops);
    }
  }
  if (lora) {
    for (const Linear& l : lora_targets) {
      const std::string nm = std::string("layer.lora ") + l.name;
      if (s.lora_merged) {
        // W' = W + s B A: a rank-r GEMM whose epilogue reads W beside writing W'.
        b.gemm(nm + " merge W' = W + s B A", layers, l.out, l.in, r, e, Builder::C::kReadWrite);
      }
      b.gemm(nm + " u = x A^T", layers, n, r, l.in, e);
      if (!s.lora_merged) b.gemm(nm + " y = u B^T", layers, n, l.out, r, e);
    }
  }
  b.mem("final norm (+ residual add) forward", "rmsnorm_forward", 1, 4 * n * d * e);

  // ---- LM head and loss, chunk by chunk ----------------------------------------------------
  const double chunk_rows = std::min<double>(
      n, std::max<double>(1.0, std::floor(static_cast<double>(
                                   model::Transformer::kHeadChunkElements) / v)));
  const double chunks = std::ceil(n / chunk_rows);
  b.gemm("head logits = h W^T", 1, n, v, d, e);
  b.mem("cross-entropy, gradient in place", "cross_entropy", 1, 2 * n * v * e);
  b.gemm("head dh = dlogits W", 1, n, d, v, e);
  if (!lora) {
    // dW_head accumulates over the chunks in f32: the first writes, the rest read and write.
    b.gemm("head dW += dlogits^T h (first chunk)", 1, v, d, n / chunks, f32);
    if (chunks > 1) b.gemm("head dW += dlogits^T h (other chunks)", chunks - 1, v, d, n / chunks,
                           f32, Builder::C::kReadWrite);
  }

  // ---- backward ----------------------------------------------------------------------------
  b.mem("final norm backward (+ residual grad)", "rmsnorm_backward", 1, 4 * n * d * e);
  for (auto it = std::rbegin(linears); it != std::rend(linears); ++it) {
    const Linear& l = *it;
    const std::string nm = l.name;
    // dX = dY W (accumulating onto the LoRA path's (dY B) A when there is one).
    b.gemm("layer." + nm + " backward dX", layers, n, l.in, l.out, e,
           lora && !s.lora_merged ? Builder::C::kReadWrite : Builder::C::kWrite);
    // dW = dY^T X in f32; the first micro-batch of a step writes instead of zero + add.
    if (!lora) b.gemm("layer." + nm + " backward dW", layers, l.out, l.in, n, f32);
    if (nm == "down")
      b.mem("layer.swiglu backward", "swiglu_backward", layers, 5 * n * f * e);
    if (nm == "gate_up")
      b.mem("layer.mlp_norm backward (+ residual grad)", "rmsnorm_backward", layers,
            4 * n * d * e);
    if (nm == "o") {
      // Five products (QK^T again, dV, dP, dQ, dK): 2.5 x the forward's FLOPs. Reads q, k, v,
      // o, dO and the statistics, writes dQ, dK, dV.
      b.mem("layer.attention backward (fused)", "attention_backward", layers,
            (q + 2 * kv) * n * e * 2 + 2 * n * q * e + n * heads * f32, 2.5 * attn_fwd_flops);
      b.mem("layer.rope q,k backward", "rope_backward", layers, 2 * n * (q + kv) * e);
    }
    if (nm == "qkv")
      b.mem("layer.attn_norm backward (+ residual grad)", "rmsnorm_backward", layers,
            4 * n * d * e);
  }
  if (lora) {
    for (const Linear& l : lora_targets) {
      const std::string nm = std::string("layer.lora ") + l.name;
      b.gemm(nm + " g = dY B", layers, n, r, l.out, e);
      if (!s.lora_merged) b.gemm(nm + " dX = g A", layers, n, l.in, r, e);
      b.gemm(nm + " dB = dY^T u", layers, l.out, r, n, f32);
      b.gemm(nm + " dA = g^T x", layers, r, l.in, n, f32);
    }
  }
  // The token embedding's gradient: scatter-add of dX rows into an f32 table.
  if (!lora) b.mem("embedding backward", "embedding_backward", 1, n * d * (e + 2 * f32));

  // ---- gradient norm and optimizer ---------------------------------------------------------
  double trainable = full * static_cast<double>(spec.num_parameters());
  if (lora) {
    for (const Linear& l : lora_targets) trainable += layers * r * (l.in + l.out);
  }
  b.mem("grad norm (sum of squares)", "weighted_sum_squares", 1, trainable * f32);
  // Multi-tensor AdamW, clip folded in: read g, m, v, master; write m, v, master, weights.
  const double moment = s.bf16_moments ? 2 : f32;
  b.mem("AdamW (multi-tensor, clip folded)", "adamw_update", 1,
        trainable * (f32 + 2 * moment + f32 + 2 * moment + f32 + e));
  return b.ops;
}

StepEstimate estimate(const std::vector<ModeledOp>& ops, const StepShape& s, const Ceilings& c) {
  StepEstimate r;
  for (const ModeledOp& op : ops) {
    r.flops += op.count * op.flops;
    r.bytes += op.count * op.bytes;
    r.seconds += op.count * op.seconds(c);
  }
  r.tokens_per_s = r.seconds > 0 ? static_cast<double>(s.batch * s.seq) / r.seconds : 0;
  return r;
}

std::string print_step_model(std::FILE* out, const std::vector<ModeledOp>& ops,
                             const StepShape& s, const Ceilings& c) {
  const StepEstimate total = estimate(ops, s, c);
  std::vector<const ModeledOp*> order;
  for (const ModeledOp& op : ops) order.push_back(&op);
  std::stable_sort(order.begin(), order.end(), [&](const ModeledOp* a, const ModeledOp* b) {
    return a->count * a->seconds(c) > b->count * b->seconds(c);
  });
  std::fprintf(out, "%-44s %-22s %6s %10s %10s %9s %6s %s\n", "op", "kind", "calls", "GFLOP",
               "MB", "ms", "share", "bound");
  nlohmann::ordered_json j;
  j["ceilings"] = {{"gemm_tflops", c.gemm_tflops},
                   {"attention_tflops", c.attention_tflops},
                   {"memory_tbs", c.memory_tbs},
                   {"launch_us", c.launch_us}};
  for (const ModeledOp* op : order) {
    const double ms = op->count * op->seconds(c) * 1e3;
    const bool attention = op->kind.rfind("attention", 0) == 0;
    const double peak = (attention ? c.attention_tflops : c.gemm_tflops) * 1e12;
    const bool compute = op->flops / peak > op->bytes / (c.memory_tbs * 1e12);
    std::fprintf(out, "%-44s %-22s %6.0f %10.1f %10.1f %9.3f %5.1f%% %s\n", op->name.c_str(),
                 op->kind.c_str(), op->count, op->count * op->flops * 1e-9,
                 op->count * op->bytes * 1e-6, ms, 100.0 * ms / (total.seconds * 1e3),
                 compute ? "compute" : "memory");
    j["ops"].push_back({{"name", op->name},
                        {"kind", op->kind},
                        {"calls", op->count},
                        {"flops", op->count * op->flops},
                        {"bytes", op->count * op->bytes},
                        {"ms", ms}});
  }
  std::fprintf(out, "modeled step: %.1f TFLOP, %.1f GB, %.2f ms, %.0f tokens/s\n",
               total.flops * 1e-12, total.bytes * 1e-9, total.seconds * 1e3, total.tokens_per_s);
  j["flops"] = total.flops;
  j["bytes"] = total.bytes;
  j["step_ms"] = total.seconds * 1e3;
  j["tokens_per_s"] = total.tokens_per_s;
  return j.dump();
}

}  // namespace tailor::bench
