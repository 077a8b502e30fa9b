#include "backend/host_convert.h"

#include <type_traits>

#include "core/error.h"

namespace tailor::backend {
namespace {

template <typename Dst, typename Src>
void convert_range(Dst* dst, const Src* src, std::int64_t begin, std::int64_t end) {
  for (std::int64_t i = begin; i < end; ++i) {
    if constexpr (std::is_same_v<Dst, Src>) {
      dst[i] = src[i];
    } else if constexpr (std::is_same_v<Dst, BF16>) {
      dst[i] = float_to_bf16(static_cast<float>(src[i]));
    } else if constexpr (std::is_same_v<Src, BF16>) {
      dst[i] = static_cast<Dst>(bf16_to_float(src[i]));
    } else {
      dst[i] = static_cast<Dst>(src[i]);
    }
  }
}

// Calls fn(T{}) for T in {float, double, BF16}.
template <typename Fn>
void dispatch_convertible(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF32:
      fn(float{});
      return;
    case DType::kF64:
      fn(double{});
      return;
    case DType::kBF16:
      fn(BF16{});
      return;
    default:
      break;
  }
  TAILOR_ASSERT(false, "cannot convert {} (f32, f64 and bf16 only)", dtype_name(dtype));
}

}  // namespace

void convert_host(void* dst, DType dst_dtype, const void* src, DType src_dtype,
                  std::int64_t begin, std::int64_t end) {
  dispatch_convertible(dst_dtype, [&](auto dtag) {
    using Dst = decltype(dtag);
    dispatch_convertible(src_dtype, [&](auto stag) {
      using Src = decltype(stag);
      convert_range(static_cast<Dst*>(dst), static_cast<const Src*>(src), begin, end);
    });
  });
}

}  // namespace tailor::backend
