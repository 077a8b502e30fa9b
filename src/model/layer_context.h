// LayerContext: the per-call inputs every decoder layer (and every adapter attached to it) of one
// micro-batch shares. Apart from decoder_layer.h so that adapter.h can name it without the layer.
#pragma once

#include <cstdint>

#include "backend/tensor.h"
#include "comm/communicator.h"

namespace tailor::model {

struct LayerContext {
  std::int64_t batch = 0;            // B
  std::int64_t seq = 0;              // T
  backend::Tensor positions;         // i32 [B*T]
  backend::Tensor doc_ids;           // i32 [B*T] or absent
  backend::Tensor inv_freq;          // f32 [Dh/2] (RoPE)
  backend::Tensor inv_freq_local;    // f32 [Dh/2]: the sliding layers' own (Gemma 3), or absent
  comm::Communicator* tp = nullptr;  // tensor-parallel group
  // Training batches (step >= 0): the key of an adapter's dropout masks; token n of this
  // micro-batch is token first_token + n of the step's global batch. step < 0: not a training
  // batch (evaluation, scoring, generation), no dropout.
  std::uint64_t seed = 0;
  std::int64_t step = -1;
  std::int64_t first_token = 0;
  // false: attached adapters are skipped (the base model alone, as a preference objective's
  // reference); forward only.
  bool adapters = true;
};

}  // namespace tailor::model
