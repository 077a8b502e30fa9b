#include "core/dtype.h"

namespace tailor {

std::string_view dtype_name(DType t) noexcept {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
    case DType::kBF16: return "bf16";
    case DType::kF16: return "f16";
    case DType::kI32: return "i32";
  }
  return "?";
}

bool parse_dtype(std::string_view text, DType& out) noexcept {
  if (text == "f32") out = DType::kF32;
  else if (text == "f64") out = DType::kF64;
  else if (text == "bf16") out = DType::kBF16;
  else if (text == "f16") out = DType::kF16;
  else if (text == "i32") out = DType::kI32;
  else return false;
  return true;
}

}  // namespace tailor
