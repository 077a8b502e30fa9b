// Data preparation for `tailor prepare` and `tailor train` (see prepare.h).
#include "trainer/prepare.h"

#include <fmt/format.h>

#include "core/logging.h"
#include "data/byte_tokenizer.h"
#include "trainer/from_config.h"

namespace tailor::trainer {

std::unique_ptr<data::Tokenizer> tokenizer_from_config(const config::ExperimentConfig& cfg) {
  if (cfg.data.tokenizer == "model") return data::load_tokenizer(cfg.model.path);
  return std::make_unique<data::ByteTokenizer>();
}

data::CachedCorpus prepare_data(const config::ExperimentConfig& cfg,
                                const data::Tokenizer& tokenizer, int threads) {
  const data::CorpusSpec spec = corpus_spec_from_config(cfg, threads);
  for (const std::string& special : data::chat_preset_special_tokens(spec.tmpl.preset))
    if (!tokenizer.token_to_id(special))
      log::warn("data.template.preset {}: the tokenizer has no token {}; it is encoded as plain "
                "text",
                cfg.data.prompt_template.preset, special);
  const std::string tokenizer_id =
      data::tokenizer_fingerprint(cfg.data.tokenizer == "model" ? cfg.model.path : "");
  data::CachedCorpus c =
      data::load_or_build_cache(spec, tokenizer, tokenizer_id, cfg.data.seq_len, cfg.data.cache_dir);
  for (const auto& [reason, count] : c.stats.skipped)
    log::warn("data: skipped {} invalid line{} ({})", count, count == 1 ? "" : "s", reason);
  if (c.stats.overlong > 0) {
    const std::string& policy = cfg.data.overlong;
    const std::string message = fmt::format(
        "data: {} document{} longer than data.seq_len ({} tokens): {}{}", c.stats.overlong,
        c.stats.overlong == 1 ? " is" : "s are", cfg.data.seq_len,
        policy == "split"  ? "split across sequences (data.overlong: split)"
        : policy == "drop" ? "dropped (data.overlong: drop)"
                           : "truncated (data.overlong: truncate)",
        c.stats.overlong_tokens_removed > 0
            ? fmt::format(", {} tokens removed", c.stats.overlong_tokens_removed)
            : std::string());
    // Splitting is what packing does with long text anyway: worth a line, not a warning.
    if (policy == "split") log::info("{}", message);
    else log::warn("{}", message);
  }
  const double mb = static_cast<double>(c.stats.bytes) / 1e6;
  if (c.reused) {
    log::info("data: reusing the tokenized cache {} ({} documents, {} tokens)", c.dir,
              c.corpus.num_documents(), c.corpus.tokens.size());
  } else {
    log::info("data: prepared {} documents, {} tokens from {:.2f} MB in {:.2f} s ({:.1f} MB/s, {} "
              "threads) into {}",
              c.corpus.num_documents(), c.corpus.tokens.size(), mb, c.build_seconds,
              c.build_seconds > 0 ? mb / c.build_seconds : 0.0, threads, c.dir);
  }
  return c;
}

}  // namespace tailor::trainer
