// Transformer::InferenceState: the scratch buffers of Transformer::extend(). Private to
// src/model (transformer.cpp needs the complete type to destroy it).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/tensor.h"
#include "model/decoder_layer.h"
#include "model/transformer.h"

namespace tailor::model {

// Scratch of extend() for B rows of T new tokens (N = B*T).
struct Transformer::InferenceState {
  std::int64_t batch = 0, seq = 0;
  std::vector<backend::Buffer> storage;
  backend::Tensor resid[2];              // [N, D] residual stream: layer inputs/outputs in turn
  backend::Tensor embed_tmp;             // [N, D] learned position / virtual token embeddings
  LayerActivations act;                  // one set, reused by every layer
  LayerScratch scratch;                  // the adapters' scratch (row-parallel sums: TP > 1 only)
  backend::Tensor last_x, last_h;        // [B, D] each row's last real token, before/after norm
  backend::Tensor last_mean, last_rstd;  // [B]
  backend::Tensor logits;                // [B, padded vocab]
  backend::Buffer logits_host;           // the same on the host (device models only)
  backend::Buffer positions_host;        // i32 [N]: cache.length(b) + t
  backend::Buffer start_host_i32;        // i32 [B]: cache.length(b)
  backend::Buffer positions, start;      // the same on the model's device
  backend::Buffer ids;                   // i32 [N]: the new tokens on the device (device models)
  std::vector<std::int64_t> start_host;  // the same, as the layers read it on the host

  // positions, start and start_host for the next extend() of `cache` (on the host; the caller
  // uploads them).
  void set_positions(const KvCache& cache, std::span<const std::int64_t> counts);

  const backend::Ops* ops = nullptr;  // allocates on the model's device

  backend::Tensor make(DType dtype, Shape shape) {
    storage.push_back(ops->alloc(dtype, shape));
    return storage.back().tensor();
  }
};

}  // namespace tailor::model
