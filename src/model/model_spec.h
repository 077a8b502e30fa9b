// ModelSpec: the shape and variant of a decoder-only transformer, independent of where it came
// from (a Tailor config today, a Hugging Face config.json with the interop work).
//
// Covers the LLaMA family (RMSNorm, RoPE, SwiGLU, GQA, optional biases) and the GPT-2 family
// (LayerNorm, learned positions, GELU, biases, tied embeddings) by independent switches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tailor::model {

enum class NormType { kRmsNorm, kLayerNorm };
enum class PositionType { kRope, kLearned };
// kSwiGLU: down(silu(gate(x)) * up(x)); kGeGLU: the same with the tanh GELU (Gemma);
// kGelu: down(gelu(up(x))) (GPT-2, no gate).
enum class MlpType { kSwiGLU, kGelu, kGeGLU };

struct ModelSpec {
  std::int64_t vocab_size = 0;        // real vocabulary (ids the tokenizer can produce)
  std::int64_t hidden_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t max_position_embeddings = 2048;
  NormType norm = NormType::kRmsNorm;
  double norm_eps = 1e-5;
  PositionType position = PositionType::kRope;
  double rope_theta = 10000.0;
  // RoPE frequency scaling, as transformers' rope init functions compute it: "default" (none),
  // "linear" (inv_freq / factor), "llama3" (Llama-3's wavelength-dependent smoothing between
  // original_max_position_embeddings / low and / high), "yarn" (YaRN: a ramp between the original
  // and the factor-scaled frequency over the dimensions whose rotations within the original length
  // lie between beta_slow and beta_fast) or "longrope" (Phi-3: each frequency divided by its own
  // short factor, or by its long factor when a forward's positions reach past the original length).
  std::string rope_type = "default";
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  std::int64_t rope_original_max_positions = 8192;
  double rope_beta_fast = 32.0;       // yarn
  double rope_beta_slow = 1.0;        // yarn
  bool rope_truncate = true;          // yarn: correction range rounded to whole dimensions
  std::vector<double> rope_short_factor, rope_long_factor;  // longrope: [head_dim / 2] each
  // yarn, longrope: what transformers multiplies cos and sin by (so q.k scales by its square);
  // resolved from config.json's attention_factor / mscale / factor when read.
  double rope_attention_factor = 1.0;
  MlpType mlp = MlpType::kSwiGLU;
  bool attention_bias = false;        // biases on q, k and v projections
  bool o_bias = false;                // bias on the o projection (LLaMA/GPT-2: as attention_bias;
                                      // Qwen2: false while q/k/v have biases)
  bool mlp_bias = false;              // biases on the MLP projections
  bool tie_embeddings = false;        // LM head shares the token embedding
  // Per-head RMSNorm on q and k (Qwen3, Gemma 3): after the projections and their adapters,
  // before RoPE, each head's [head_dim] vector is RMS-normalized (eps norm_eps) and scaled by a
  // weight [head_dim] that all heads share (self_attn.q_norm / k_norm). TP-local: a rank
  // normalizes its own heads; the weights are replicated and their gradients summed over the group.
  bool qk_norm = false;
  // Sliding-window attention (Mistral; Qwen2 with use_sliding_window): on a sliding layer token
  // i attends to the keys j with i - sliding_window < j <= i (itself and the sliding_window - 1
  // tokens before it: transformers' rule, kv > q - window). 0: no window. sliding_layers: one
  // flag per layer, which layers slide (Qwen2's layer_types / max_window_layers); empty when
  // every layer does (Mistral).
  std::int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;
  // Gemma 2 and 3 (decision 46):
  //  - norm_unit_offset: RMSNorm scales by (1 + w) where the checkpoint stores w. Tailor's norm
  //    parameters hold 1 + w (what the norm multiplies by), so every backend's rmsnorm serves;
  //    the offset is added on load and taken off on export. Norm weights are never decayed, so
  //    training is the same as on w.
  //  - sandwich_norms: besides input_layernorm, the attention output and the MLP output are
  //    normalized before they join the residual (post_attention_layernorm,
  //    post_feedforward_layernorm) and the MLP reads pre_feedforward_layernorm's output.
  //  - embedding_multiplier: the token embeddings are multiplied by sqrt(hidden_size), rounded to
  //    f32 as transformers does (1: none).
  //  - query_pre_attn_scalar: the softmax scale is query_pre_attn_scalar^-1/2 instead of
  //    head_dim^-1/2 (0: head_dim).
  //  - rope_local_theta: the RoPE base of the sliding-window layers (Gemma 3's
  //    rope_local_base_freq; unscaled, "default" RoPE); 0: the layers share rope_theta.
  bool norm_unit_offset = false;
  bool sandwich_norms = false;
  double embedding_multiplier = 1.0;
  double query_pre_attn_scalar = 0.0;
  double rope_local_theta = 0.0;
  double init_std = 0.02;
  // Embedding rows and LM-head columns are padded to a multiple of vocab_multiple x TP degree;
  // padded logits are masked to -inf in the loss.
  std::int64_t vocab_multiple = 128;
  // The config.json model_type the spec was read from ("" for a model defined in the config):
  // what a family-specific default (peft's IA3 targets) is looked up by, through
  // model::find_family; the computation never depends on it.
  std::string model_type;

  // Asserts the invariants (config validation reports them to users first).
  void check() const;
  // The attention window of layer `layer` (0-based) as the attention ops take it: 0 = global.
  [[nodiscard]] std::int64_t attention_window(std::int64_t layer) const;
  // Whether any layer has a sliding window.
  [[nodiscard]] bool has_sliding_window() const;
  // RoPE inverse frequencies [head_dim / 2] in f32, computed as Hugging Face does (incl. scaling);
  // `long_context`: longrope's set for positions past rope_original_max_positions.
  [[nodiscard]] std::vector<float> rope_inv_freq(bool long_context = false) const;
  // The sliding-window layers' inverse frequencies when they have a RoPE base of their own
  // (rope_local_theta > 0), else empty.
  [[nodiscard]] std::vector<float> rope_local_inv_freq() const;
  // Whether the MLP has a gate projection (SwiGLU, GeGLU).
  [[nodiscard]] bool gated_mlp() const noexcept { return mlp != MlpType::kGelu; }
  // Whether a forward whose largest position is `max_position` uses longrope's long factors.
  [[nodiscard]] bool rope_long_context(std::int64_t max_position) const noexcept {
    return rope_type == "longrope" && max_position + 1 > rope_original_max_positions;
  }
  // The attention's softmax scale: 1 / sqrt(head_dim), times the square of the RoPE attention
  // factor (yarn, longrope scale both the rotated q and k by it).
  [[nodiscard]] double attention_scale() const noexcept;
  [[nodiscard]] std::int64_t padded_vocab(int tp_size = 1) const noexcept {
    const std::int64_t m = vocab_multiple * tp_size;
    return (vocab_size + m - 1) / m * m;
  }
  [[nodiscard]] std::int64_t q_dim() const noexcept { return num_heads * head_dim; }
  [[nodiscard]] std::int64_t kv_dim() const noexcept { return num_kv_heads * head_dim; }
  // Parameters as a Hugging Face model counts them (unpadded vocabulary, tied head counted once).
  [[nodiscard]] std::int64_t num_parameters() const noexcept;
  // One line for logs: "llama-style: 4 layers, hidden 128, 4/2 heads, ..."
  [[nodiscard]] std::string summary() const;
};

// What one tensor-parallel rank holds (Megatron layout): query heads, KV heads, MLP columns and
// vocabulary rows are split in contiguous blocks. KV heads either split evenly (num_kv_heads % T
// == 0) or, when T % num_kv_heads == 0, each rank holds one KV head shared by T / num_kv_heads
// consecutive ranks.
struct TpLayout {
  int size = 1;
  int rank = 0;
  std::int64_t q_heads = 0, q_head_begin = 0;
  std::int64_t kv_heads = 0, kv_head_begin = 0;
  int kv_replicas = 1;                 // ranks holding the same KV head
  std::int64_t ffn = 0, ffn_begin = 0;
  std::int64_t padded_vocab = 0;       // global, padded to vocab_multiple * T
  std::int64_t vocab = 0, vocab_begin = 0;  // local rows of the embedding / LM head
  [[nodiscard]] std::int64_t q_dim(std::int64_t head_dim) const noexcept { return q_heads * head_dim; }
  [[nodiscard]] std::int64_t kv_dim(std::int64_t head_dim) const noexcept { return kv_heads * head_dim; }
  // Real (unpadded) vocabulary columns among this rank's local ones.
  [[nodiscard]] std::int64_t valid_vocab(std::int64_t vocab_size) const noexcept;
};

// Why `spec` cannot be split over `tp_size` ranks (one reason per line), or empty when it can.
[[nodiscard]] std::string tp_layout_problem(const ModelSpec& spec, int tp_size);
// Asserts the layout is possible (check tp_layout_problem first for a user-facing message).
[[nodiscard]] TpLayout make_tp_layout(const ModelSpec& spec, int tp_size, int tp_rank);

}  // namespace tailor::model
