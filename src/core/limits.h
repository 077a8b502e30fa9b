// The largest sizes Tailor accepts from a config, a config.json, an adapter or the command line.
// They lie far above any released model (Llama-3 405B: hidden 16384, MLP 53248, 126 layers;
// Gemma: vocabulary 262144), keep every size computed from them within 64-bit integers, and turn
// a hostile or mistyped size (vocab_size 2^31, r 2^40) into a user error before anything is
// allocated, instead of an out-of-memory failure after minutes of work.
#pragma once

#include <cstdint>

namespace tailor::limits {

inline constexpr std::int64_t kVocab = std::int64_t{1} << 24;         // 16.7M tokens
inline constexpr std::int64_t kHidden = std::int64_t{1} << 17;        // 131072
inline constexpr std::int64_t kIntermediate = std::int64_t{1} << 20;  // 1048576
inline constexpr std::int64_t kHeads = std::int64_t{1} << 12;         // query or KV heads
inline constexpr std::int64_t kHeadDim = std::int64_t{1} << 12;
inline constexpr std::int64_t kLayers = std::int64_t{1} << 16;
inline constexpr std::int64_t kPositions = std::int64_t{1} << 24;     // context length
inline constexpr std::int64_t kLoraRank = std::int64_t{1} << 16;
inline constexpr std::int64_t kVirtualTokens = std::int64_t{1} << 16; // prompt tuning
inline constexpr std::int64_t kBottleneck = std::int64_t{1} << 20;    // adapter width
inline constexpr int kThreads = 1024;                                 // CPU threads per rank

}  // namespace tailor::limits
