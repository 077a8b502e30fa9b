// Data preparation shared by `tailor prepare` and `tailor train`: the config's tokenizer, and its
// training corpus from the tokenized cache (built when missing), with the log lines that report
// what was read, skipped and how fast.
#pragma once

#include <memory>

#include "config/config.h"
#include "data/token_cache.h"
#include "data/tokenizer.h"

namespace tailor::trainer {

// The byte tokenizer, or model.path's tokenizer files (data.tokenizer: model).
[[nodiscard]] std::unique_ptr<data::Tokenizer> tokenizer_from_config(
    const config::ExperimentConfig& cfg);

// The training corpus through the cache in data.cache_dir, tokenized with `threads` threads.
[[nodiscard]] data::CachedCorpus prepare_data(const config::ExperimentConfig& cfg,
                                              const data::Tokenizer& tokenizer, int threads);

}  // namespace tailor::trainer
