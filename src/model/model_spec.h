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
enum class MlpType { kSwiGLU, kGelu };

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
  // RoPE frequency scaling: "default" (none), "linear" (inv_freq / factor) or "llama3" (Llama-3's
  // wavelength-dependent smoothing between original_max_position_embeddings / low and / high).
  std::string rope_type = "default";
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  std::int64_t rope_original_max_positions = 8192;
  MlpType mlp = MlpType::kSwiGLU;
  bool attention_bias = false;        // biases on q, k and v projections
  bool o_bias = false;                // bias on the o projection (LLaMA/GPT-2: as attention_bias;
                                      // Qwen2: false while q/k/v have biases)
  bool mlp_bias = false;              // biases on the MLP projections
  bool tie_embeddings = false;        // LM head shares the token embedding
  // Sliding-window attention (Mistral; Qwen2 with use_sliding_window): on a sliding layer token
  // i attends to the keys j with i - sliding_window < j <= i (itself and the sliding_window - 1
  // tokens before it: transformers' rule, kv > q - window). 0: no window. sliding_layers: one
  // flag per layer, which layers slide (Qwen2's layer_types / max_window_layers); empty when
  // every layer does (Mistral).
  std::int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;
  double init_std = 0.02;
  // Embedding rows and LM-head columns are padded to a multiple of vocab_multiple x TP degree;
  // padded logits are masked to -inf in the loss.
  std::int64_t vocab_multiple = 128;

  // Asserts the invariants (config validation reports them to users first).
  void check() const;
  // The attention window of layer `layer` (0-based) as the attention ops take it: 0 = global.
  [[nodiscard]] std::int64_t attention_window(std::int64_t layer) const;
  // Whether any layer has a sliding window.
  [[nodiscard]] bool has_sliding_window() const;
  // RoPE inverse frequencies [head_dim / 2] in f32, computed as Hugging Face does (incl. scaling).
  [[nodiscard]] std::vector<float> rope_inv_freq() const;
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
