// The geometry of the attention ops (ops.h), checked the same way by every backend: q
// [B, T, Hq, Dh]; k and v [B, S, Hkv, Dh] with Hq % Hkv == 0 (S = T for training attention, the
// cache length for attention_cached). Dtype and device checks stay with each backend.
#pragma once

#include <cstdint>
#include <string_view>

#include "backend/tensor.h"
#include "core/error.h"

namespace tailor::backend {

struct AttentionDims {
  std::int64_t batch = 0, seq = 0, keys = 0, hq = 0, hkv = 0, dh = 0;
};

// `same_length`: k and v hold as many tokens as q (training); else any cache length.
[[nodiscard]] inline AttentionDims attention_dims(std::string_view op, const Tensor& q,
                                                  const Tensor& k, const Tensor& v,
                                                  bool same_length) {
  TAILOR_ASSERT(q.shape.rank() == 4 && k.shape.rank() == 4 && v.shape == k.shape,
                "{}: q {}, k {}, v {} must be [B, T, H, Dh]", op, q.shape.str(), k.shape.str(),
                v.shape.str());
  AttentionDims d;
  d.batch = q.shape[0];
  d.seq = q.shape[1];
  d.hq = q.shape[2];
  d.dh = q.shape[3];
  d.keys = k.shape[1];
  d.hkv = k.shape[2];
  TAILOR_ASSERT(k.shape[0] == d.batch && k.shape[3] == d.dh && d.hkv > 0 && d.hq % d.hkv == 0 &&
                    (!same_length || d.keys == d.seq),
                "{}: q {} with k {}", op, q.shape.str(), k.shape.str());
  return d;
}

}  // namespace tailor::backend
