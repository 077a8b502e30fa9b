// Token embedding lookup and its gradient, as CpuOps::embedding_* (src/backend/cpu/embedding.cpp)
// define them, for a vocab-parallel shard: the table holds rows [vocab_begin, vocab_begin + V) of
// the full embedding; ids outside them give zero rows forward and add nothing backward.
//
// Storage f32 or bf16 (raw bits in std::uint16_t) for the table and activations; the table's
// gradient is an f32 buffer (accumulated, +=). Backward is deterministic without atomics: the
// token indices are sorted by id (stable radix sort, so equal ids keep token order), and each
// vocabulary row's tokens are summed in token order by one thread per column, starting from the
// existing gradient. That is exactly the order of the CPU's serial loop, so f32 results are
// bit-identical to the CPU reference.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

struct EmbeddingShape {
  std::int64_t tokens = 0;       // N: ids [N], out / dout [N, D]
  std::int64_t rows = 0;         // V: rows of this shard's table [V, D]
  std::int64_t cols = 0;         // D
  std::int64_t vocab_begin = 0;  // global id of the table's row 0
};

// out[n, :] = table[ids[n] - vocab_begin, :] for ids in the shard, 0 for the others.
void embedding_forward(const float* table, const std::int32_t* ids, float* out,
                       EmbeddingShape shape, cudaStream_t stream);
void embedding_forward(const std::uint16_t* table, const std::int32_t* ids, std::uint16_t* out,
                       EmbeddingShape shape, cudaStream_t stream);

// Device workspace embedding_backward needs (the sort's buffers). Asks CUB for its temporary
// storage, so it needs a CUDA device (it launches nothing).
[[nodiscard]] std::size_t embedding_backward_workspace_bytes(EmbeddingShape shape);

// dtable[V, D] += sum over the tokens n with ids[n] in the shard of dout[n, :] at row
// ids[n] - vocab_begin.
void embedding_backward(const float* dout, const std::int32_t* ids, float* dtable, void* workspace,
                        EmbeddingShape shape, cudaStream_t stream);
void embedding_backward(const std::uint16_t* dout, const std::int32_t* ids, float* dtable,
                        void* workspace, EmbeddingShape shape, cudaStream_t stream);

}  // namespace tailor::kernels
