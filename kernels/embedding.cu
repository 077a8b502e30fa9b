// Embedding kernels (see embedding.cuh for the contract).
//
// Forward: one block per token copies (or zeroes) its row.
// Backward, three steps on the stream, with the workspace laid out as
//   keys[N] u32 | sorted_keys[N] u32 | tokens[N] i32 | sorted_tokens[N] i32 | CUB temp
//   1. keys[n] = ids[n] - vocab_begin for ids in the shard, V (a sentinel past every row) for the
//      others; tokens[n] = n.
//   2. cub::DeviceRadixSort::SortPairs over the bits that can hold V: stable, so each id's tokens
//      stay in ascending order.
//   3. A grid of (N sorted positions) x (column tiles): the block at the first position of a run
//      of equal keys sums the run's dout rows in order, one column per thread, onto dtable; every
//      other block returns at once. Each dtable element is written by exactly one thread.
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"
#include "kernels/embedding.cuh"

namespace tailor::kernels {
namespace {

using detail::to_float;

constexpr unsigned kThreads = 256;

template <typename T>
__global__ void embedding_forward_kernel(const T* __restrict__ table,
                                         const std::int32_t* __restrict__ ids, T* __restrict__ out,
                                         std::int64_t rows, std::int64_t cols,
                                         std::int64_t vocab_begin) {
  const std::int64_t n = blockIdx.x;
  const std::int64_t row = static_cast<std::int64_t>(ids[n]) - vocab_begin;
  T* dst = out + n * cols;
  if (row >= 0 && row < rows) {
    const T* src = table + row * cols;
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) dst[j] = src[j];
  } else {
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) dst[j] = T(0);
  }
}

__global__ void embedding_keys_kernel(const std::int32_t* __restrict__ ids,
                                      std::uint32_t* __restrict__ keys,
                                      std::int32_t* __restrict__ tokens, std::int64_t n_tokens,
                                      std::int64_t rows, std::int64_t vocab_begin) {
  for (std::int64_t n = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       n < n_tokens; n += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t row = static_cast<std::int64_t>(ids[n]) - vocab_begin;
    keys[n] = static_cast<std::uint32_t>(row >= 0 && row < rows ? row : rows);
    tokens[n] = static_cast<std::int32_t>(n);
  }
}

template <typename T>
__global__ void embedding_backward_kernel(const T* __restrict__ dout,
                                          const std::uint32_t* __restrict__ sorted_keys,
                                          const std::int32_t* __restrict__ sorted_tokens,
                                          float* __restrict__ dtable, std::int64_t n_tokens,
                                          std::int64_t rows, std::int64_t cols) {
  const std::int64_t p = blockIdx.x;
  const std::uint32_t key = sorted_keys[p];
  if (key >= rows) return;                         // out of the shard (sentinel)
  if (p > 0 && sorted_keys[p - 1] == key) return;  // not the first token of its run
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  float* dst = dtable + static_cast<std::int64_t>(key) * cols + j;
  float acc = *dst;
  for (std::int64_t q = p; q < n_tokens && sorted_keys[q] == key; ++q)
    acc += to_float(dout[static_cast<std::int64_t>(sorted_tokens[q]) * cols + j]);
  *dst = acc;
}

void check_shape(EmbeddingShape s) {
  TAILOR_ASSERT(
      s.tokens >= 0 && s.tokens <= 0x7fffffff && s.rows >= 0 && s.rows < 0x7fffffff && s.cols >= 0,
      "embedding: bad shape (tokens {}, table [{}, {}])", s.tokens, s.rows, s.cols);
}

// Key bits the sort looks at: enough for every key in [0, V] (V being the sentinel).
int key_bits(std::int64_t rows) {
  int bits = 1;
  while ((std::int64_t{1} << bits) <= rows) ++bits;
  return bits;
}

struct BackwardWorkspace {
  std::uint32_t* keys = nullptr;
  std::uint32_t* sorted_keys = nullptr;
  std::int32_t* tokens = nullptr;
  std::int32_t* sorted_tokens = nullptr;
  void* temp = nullptr;
  std::size_t temp_bytes = 0;
  std::size_t total_bytes = 0;
};

// Lays out the workspace at `base` (null: only computes the sizes).
BackwardWorkspace layout(EmbeddingShape s, void* base) {
  BackwardWorkspace w;
  const auto n = static_cast<int>(s.tokens);
  TAILOR_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, w.temp_bytes, static_cast<const std::uint32_t*>(nullptr),
      static_cast<std::uint32_t*>(nullptr), static_cast<const std::int32_t*>(nullptr),
      static_cast<std::int32_t*>(nullptr), n, 0, key_bits(s.rows)));
  const std::size_t array = detail::align_up(static_cast<std::size_t>(s.tokens) * 4);
  w.total_bytes = 4 * array + detail::align_up(w.temp_bytes);
  if (base != nullptr) {
    auto* b = static_cast<char*>(base);
    w.keys = reinterpret_cast<std::uint32_t*>(b);
    w.sorted_keys = reinterpret_cast<std::uint32_t*>(b + array);
    w.tokens = reinterpret_cast<std::int32_t*>(b + 2 * array);
    w.sorted_tokens = reinterpret_cast<std::int32_t*>(b + 3 * array);
    w.temp = b + 4 * array;
  }
  return w;
}

template <typename T>
void forward(const T* table, const std::int32_t* ids, T* out, EmbeddingShape s,
             cudaStream_t stream) {
  check_shape(s);
  if (s.tokens == 0 || s.cols == 0) return;
  embedding_forward_kernel<T><<<static_cast<unsigned>(s.tokens), kThreads, 0, stream>>>(
      table, ids, out, s.rows, s.cols, s.vocab_begin);
  TAILOR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward(const T* dout, const std::int32_t* ids, float* dtable, void* workspace,
              EmbeddingShape s, cudaStream_t stream) {
  check_shape(s);
  if (s.tokens == 0 || s.rows == 0 || s.cols == 0) return;
  TAILOR_ASSERT(workspace != nullptr, "embedding_backward: no workspace");
  const BackwardWorkspace w = layout(s, workspace);
  embedding_keys_kernel<<<detail::elementwise_blocks(s.tokens, kThreads), kThreads, 0, stream>>>(
      ids, w.keys, w.tokens, s.tokens, s.rows, s.vocab_begin);
  TAILOR_CUDA_CHECK_LAUNCH();
  std::size_t temp_bytes = w.temp_bytes;
  TAILOR_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      w.temp, temp_bytes, w.keys, w.sorted_keys, w.tokens, w.sorted_tokens,
      static_cast<int>(s.tokens), 0, key_bits(s.rows), stream));
  TAILOR_CUDA_CHECK_LAUNCH();
  const dim3 grid(static_cast<unsigned>(s.tokens),
                  static_cast<unsigned>((s.cols + kThreads - 1) / kThreads));
  embedding_backward_kernel<T><<<grid, kThreads, 0, stream>>>(dout, w.sorted_keys, w.sorted_tokens,
                                                              dtable, s.tokens, s.rows, s.cols);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void embedding_forward(const float* table, const std::int32_t* ids, float* out,
                       EmbeddingShape shape, cudaStream_t stream) {
  forward(table, ids, out, shape, stream);
}
void embedding_forward(const std::uint16_t* table, const std::int32_t* ids, std::uint16_t* out,
                       EmbeddingShape shape, cudaStream_t stream) {
  forward(table, ids, out, shape, stream);
}

std::size_t embedding_backward_workspace_bytes(EmbeddingShape shape) {
  check_shape(shape);
  if (shape.tokens == 0 || shape.rows == 0 || shape.cols == 0) return 0;
  return layout(shape, nullptr).total_bytes;
}

void embedding_backward(const float* dout, const std::int32_t* ids, float* dtable, void* workspace,
                        EmbeddingShape shape, cudaStream_t stream) {
  backward(dout, ids, dtable, workspace, shape, stream);
}
void embedding_backward(const std::uint16_t* dout, const std::int32_t* ids, float* dtable,
                        void* workspace, EmbeddingShape shape, cudaStream_t stream) {
  backward(dout, ids, dtable, workspace, shape, stream);
}

}  // namespace tailor::kernels
