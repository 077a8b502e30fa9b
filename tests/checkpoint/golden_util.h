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
#include "model/model_test_util.h"

#include <memory>

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

// A fixture's input_ids/labels as a Tailor batch: HF shifts labels inside the model, so target t
// is labels[t + 1] (the last position has none); positions 0..T-1, one document per row.
struct GoldenBatch {
  std::int64_t b = 0, t = 0;
  std::int64_t count = 0;  // targets that carry loss
  std::unique_ptr<model::testing::HostBatch> host;
};

inline GoldenBatch make_batch(const SafetensorsFile& expected) {
  GoldenBatch g;
  const std::vector<std::int64_t>& shape = expected.info("input_ids").shape;
  EXPECT_EQ(shape.size(), 2u);
  g.b = shape[0];
  g.t = shape[1];
  const std::vector<std::int32_t> ids = read_i32(expected, "input_ids");
  const std::vector<std::int32_t> labels = read_i32(expected, "labels");
  std::vector<std::int32_t> targets(ids.size()), positions(ids.size());
  for (std::int64_t r = 0; r < g.b; ++r) {
    for (std::int64_t c = 0; c < g.t; ++c) {
      const auto i = static_cast<std::size_t>(r * g.t + c);
      targets[i] = c + 1 < g.t ? labels[i + 1] : -100;
      positions[i] = static_cast<std::int32_t>(c);
      if (targets[i] != -100) ++g.count;
    }
  }
  // No doc_ids: one document per row.
  g.host = std::make_unique<model::testing::HostBatch>(g.b, g.t, ids, targets, positions,
                                                       std::vector<std::int32_t>{});
  return g;
}

}  // namespace tailor::checkpoint::golden
