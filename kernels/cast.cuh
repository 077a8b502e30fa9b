// Casts between f32 and bf16 on the GPU (round to nearest even, NaN preserved), the conversion
// every bf16 weight and activation goes through. Matches tailor::float_to_bf16 bit for bit.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace tailor::kernels {

// dst[i] = bf16(src[i]) for i < n; dst holds raw bf16 bits.
void cast_f32_to_bf16(const float* src, std::uint16_t* dst, std::int64_t n, cudaStream_t stream);
// dst[i] = float(src[i]) for i < n.
void cast_bf16_to_f32(const std::uint16_t* src, float* dst, std::int64_t n, cudaStream_t stream);

}  // namespace tailor::kernels
