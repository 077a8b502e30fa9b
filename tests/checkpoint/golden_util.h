// Helpers shared by the golden tests (model, export, PEFT fixtures): reading fixture tensors and
// the normwise relative error they are compared with.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "checkpoint/safetensors.h"
#include "core/shape.h"

namespace tailor::checkpoint::golden {

inline std::vector<float> read_f32(const SafetensorsFile& f, const std::string& name) {
  std::vector<float> out(static_cast<std::size_t>(f.info(name).numel));
  f.read_f32(name, out);
  return out;
}

inline std::vector<std::int32_t> read_i32(const SafetensorsFile& f, const std::string& name) {
  const SafetensorsTensorInfo& info = f.info(name);
  EXPECT_EQ(info.dtype, "I32") << name;
  std::vector<std::int32_t> out(static_cast<std::size_t>(info.numel));
  const std::span<const std::byte> raw = f.raw(name);
  EXPECT_EQ(raw.size(), out.size() * sizeof(std::int32_t)) << name;
  std::memcpy(out.data(), raw.data(), std::min(raw.size(), out.size() * sizeof(std::int32_t)));
  return out;
}

// ||got - want|| / ||want||, in f64.
inline double rel_error(std::span<const float> got, std::span<const float> want) {
  double diff = 0.0, ref = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - static_cast<double>(want[i]);
    diff += d * d;
    ref += static_cast<double>(want[i]) * static_cast<double>(want[i]);
  }
  return ref > 0.0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

inline std::vector<std::int64_t> dims(const Shape& s) {
  std::vector<std::int64_t> out;
  for (int i = 0; i < s.rank(); ++i) out.push_back(s[i]);
  return out;
}

}  // namespace tailor::checkpoint::golden
