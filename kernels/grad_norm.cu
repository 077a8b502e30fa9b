// Deterministic multi-tensor sum of squares (see grad_norm.cuh for the contract).
//
// Pass 1: tensors are cut into chunks of kChunk elements; the chunks of all tensors are numbered
// in order (tensor by tensor), and block b of a launch reduces one chunk: each of its kThreads
// threads sums x^2 in f64 over a fixed stride, then detail::block_sum combines the threads. The
// chunk's sum goes to partial[b]. Tensors travel in the kernel parameters, up to
// kSumSquaresTensorsPerLaunch per launch; partial slots continue across launches.
// Pass 2: one block of kFinalThreads threads: thread t sums partial[t], partial[t + kFinalThreads],
// ... in order, then block_sum; thread 0 writes the total.
#include "kernels/cuda_check.cuh"
#include "kernels/device_common.cuh"
#include "kernels/grad_norm.cuh"

namespace tailor::kernels {
namespace {

constexpr unsigned kThreads = 256;
constexpr std::int64_t kChunk = 16 * kThreads;  // elements per partial
constexpr unsigned kFinalThreads = 1024;

struct SumSquaresBatch {
  const float* data[kSumSquaresTensorsPerLaunch];
  std::int64_t numel[kSumSquaresTensorsPerLaunch];
  int first_block[kSumSquaresTensorsPerLaunch + 1];
  int count;
};
static_assert(sizeof(SumSquaresBatch) <= 4096, "kernel parameters must stay under 4 KiB");

__global__ void sum_squares_partials_kernel(const SumSquaresBatch batch,
                                            double* __restrict__ partial) {
  __shared__ double scratch[detail::kWarp];
  const int block = static_cast<int>(blockIdx.x);
  int lo = 0;
  int hi = batch.count - 1;
  while (lo < hi) {  // the last tensor whose first block is <= block
    const int mid = (lo + hi + 1) / 2;
    if (batch.first_block[mid] <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const int t = lo;
  const std::int64_t begin = static_cast<std::int64_t>(block - batch.first_block[t]) * kChunk;
  const std::int64_t end = begin + kChunk < batch.numel[t] ? begin + kChunk : batch.numel[t];
  const float* __restrict__ x = batch.data[t];
  double acc = 0.0;
  for (std::int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double v = x[i];
    acc += v * v;  // exact: an f32 square fits in an f64
  }
  acc = detail::block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[block] = acc;
}

__global__ void sum_squares_final_kernel(const double* __restrict__ partial, std::int64_t n,
                                         double* __restrict__ out) {
  __shared__ double scratch[detail::kWarp];
  double acc = 0.0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = detail::block_sum(acc, scratch);
  if (threadIdx.x == 0) *out = acc;
}

std::int64_t chunks_of(std::int64_t numel) { return (numel + kChunk - 1) / kChunk; }

std::int64_t total_chunks(const SumSquaresTensor* tensors, int count) {
  TAILOR_ASSERT(count >= 0 && (count == 0 || tensors != nullptr), "sum_squares: {} tensors", count);
  std::int64_t n = 0;
  for (int i = 0; i < count; ++i) {
    TAILOR_ASSERT(tensors[i].numel >= 0, "sum_squares: tensor {} has {} elements", i,
                  tensors[i].numel);
    n += chunks_of(tensors[i].numel);
  }
  return n;
}

}  // namespace

std::size_t sum_squares_workspace_bytes(const SumSquaresTensor* tensors, int count) {
  return static_cast<std::size_t>(total_chunks(tensors, count)) * sizeof(double);
}

void sum_squares(const SumSquaresTensor* tensors, int count, void* workspace, double* out,
                 cudaStream_t stream) {
  const std::int64_t chunks = total_chunks(tensors, count);
  if (chunks == 0) {
    TAILOR_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(double), stream));
    return;
  }
  TAILOR_ASSERT(workspace != nullptr, "sum_squares: no workspace");
  auto* partial = static_cast<double*>(workspace);
  std::int64_t done = 0;  // partial slots written by earlier launches
  int i = 0;
  while (i < count) {
    SumSquaresBatch batch{};
    std::int64_t blocks = 0;
    for (; i < count && batch.count < kSumSquaresTensorsPerLaunch; ++i) {
      const SumSquaresTensor& t = tensors[i];
      if (t.numel == 0) continue;
      TAILOR_ASSERT(t.data != nullptr, "sum_squares: tensor {} has no data", i);
      const int b = batch.count++;
      batch.data[b] = t.data;
      batch.numel[b] = t.numel;
      batch.first_block[b] = static_cast<int>(blocks);
      blocks += chunks_of(t.numel);
      TAILOR_ASSERT(blocks <= 0x7fffffff, "sum_squares: too many elements in one launch");
    }
    if (batch.count == 0) continue;
    batch.first_block[batch.count] = static_cast<int>(blocks);
    sum_squares_partials_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        batch, partial + done);
    TAILOR_CUDA_CHECK_LAUNCH();
    done += blocks;
  }
  sum_squares_final_kernel<<<1, kFinalThreads, 0, stream>>>(partial, done, out);
  TAILOR_CUDA_CHECK_LAUNCH();
}

}  // namespace tailor::kernels
