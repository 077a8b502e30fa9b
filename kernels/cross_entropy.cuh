// Vocab-parallel softmax cross-entropy (Megatron's), in the three phases of CpuOps::ce_local_max /
// ce_local_sums / ce_finish (src/backend/cpu/cross_entropy_parallel.cpp); between phases the
// caller all-reduces over the tensor-parallel group (MAX after phase 1, SUM after phase 2). With
// one shard (vocab_begin 0, no all-reduce) the three phases are the plain cross-entropy.
//
// The logits stay in their storage type (f32, or bf16 as raw bits in std::uint16_t): every phase
// reads them directly and accumulates in f32, so no f32 copy of [N, V] is ever made; row_max,
// stats and losses are f32. Columns [valid_cols, cols) are padding (-inf in the softmax, gradient
// 0); rows whose target is kCeIgnoreIndex carry no loss and a zero gradient row. Deterministic:
// one block per row, block size fixed by cols, fixed-order block reductions.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

// Target of tokens that carry no loss; equals backend::kIgnoreIndex (Hugging Face's -100).
inline constexpr std::int32_t kCeIgnoreIndex = -100;

struct CrossEntropyShape {
  std::int64_t rows = 0;         // N
  std::int64_t cols = 0;         // Vl: columns of this shard's logits [N, Vl]
  std::int64_t valid_cols = 0;   // the first valid_cols columns are real, the rest padding
  std::int64_t vocab_begin = 0;  // global id of column 0
};

// Phase 1: row_max[N] = max over the real local columns (-inf when there are none).
void ce_local_max(const float* logits, float* row_max, CrossEntropyShape shape,
                  cudaStream_t stream);
void ce_local_max(const std::uint16_t* logits, float* row_max, CrossEntropyShape shape,
                  cudaStream_t stream);

// Phase 2: stats[2, N]: stats[0][n] = sum of exp(x - row_max[n]) over the real local columns;
// stats[1][n] = the target's logit when this shard holds the target column, else 0.
// targets: i32 [N]; row_max: the all-reduced maxima.
void ce_local_sums(const float* logits, const std::int32_t* targets, const float* row_max,
                   float* stats, CrossEntropyShape shape, cudaStream_t stream);
void ce_local_sums(const std::uint16_t* logits, const std::int32_t* targets, const float* row_max,
                   float* stats, CrossEntropyShape shape, cudaStream_t stream);

// Phase 3: losses[n] = log(stats[0][n]) + row_max[n] - stats[1][n] (0 on ignored rows); when
// dlogits is not null ([N, Vl], may be the logits themselves: the gradient is then written in
// place): dscale * (exp(x - row_max) / stats[0][n] - onehot) on real columns, 0 on padding
// columns and on ignored rows. stats: the all-reduced sums.
void ce_finish(const float* logits, const std::int32_t* targets, const float* row_max,
               const float* stats, float* losses, float* dlogits, double dscale,
               CrossEntropyShape shape, cudaStream_t stream);
void ce_finish(const std::uint16_t* logits, const std::int32_t* targets, const float* row_max,
               const float* stats, float* losses, std::uint16_t* dlogits, double dscale,
               CrossEntropyShape shape, cudaStream_t stream);

}  // namespace tailor::kernels
