// The tokenized cache that `tailor prepare` writes and `tailor train` reads: a directory per
// distinct input, named by a SHA-256 key over everything that decides the tokens (the sources'
// contents and weights, the tokenizer's files, the format and template settings, seq_len):
//     <cache_dir>/<key>/tokens.bin   int32 little-endian, one per token
//                       loss.bin     uint8, 1 where the token is trained on
//                       docs.bin     int64, document starts plus a final sentinel
//                       manifest.json  the inputs of the key, counts, skipped lines per reason
// A cache is written under <key>.tmp.<pid> and renamed into place, so a reader never sees a
// partial one; an existing cache is reused as is. A loaded cache is memory-mapped read-only (never
// copied): the CachedCorpus views the files, freshly built ones included, and keeps the mappings.
// Cache files are never written in place once renamed into place, only replaced or removed, so a
// mapping stays valid while another process rebuilds or deletes the cache. Under MPI the trainer lets world rank 0 build
// while the other ranks wait at a barrier, then they reuse it (or, without a shared file system,
// build their own identical copy).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "data/corpus_builder.h"

#include "core/sha256.h"

namespace tailor::data {

struct CachedCorpus {
  CorpusView corpus;    // tokens.bin, loss.bin and docs.bin, mapped (valid while this lives)
  CorpusStats stats;
  std::string dir;      // the cache directory used
  bool reused = false;  // found, not built
  double build_seconds = 0.0;
  std::shared_ptr<const void> storage;  // the mappings `corpus` views
};

// SHA-256 helpers (sha256_file, sha256_hex) live in core/sha256.h.
using tailor::sha256_file;
using tailor::sha256_hex;

// "byte" for the byte tokenizer; for a model directory, the hashes of its tokenizer files.
[[nodiscard]] std::string tokenizer_fingerprint(const std::string& model_dir);

// The key and the manifest inputs it hashes (a JSON text), for a spec.
[[nodiscard]] std::string cache_inputs_json(const CorpusSpec& spec,
                                            const std::string& tokenizer_id,
                                            std::int64_t seq_len);

// The cache in `dir` (a <cache_dir>/<key> directory), mapped, whatever inputs it was built from;
// nullopt when it is incomplete or not a cache of this format.
[[nodiscard]] std::optional<CachedCorpus> open_cache(const std::string& dir);

// Reuses <cache_dir>/<key> when present and complete, else builds it (tmp + rename).
[[nodiscard]] CachedCorpus load_or_build_cache(const CorpusSpec& spec, const Tokenizer& tokenizer,
                                               const std::string& tokenizer_id,
                                               std::int64_t seq_len, const std::string& cache_dir);

}  // namespace tailor::data
