// Data preparation for `tailor prepare` and `tailor train` (see prepare.h).
#include "trainer/prepare.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <stop_token>
#include <thread>

#include "core/logging.h"
#include "data/byte_tokenizer.h"
#include "trainer/from_config.h"
#include "trainer/progress.h"

namespace tailor::trainer {
namespace {

// Prints the progress line of a cache build (progress.h says when) from a thread of its own while
// the build advances `progress`; on a terminal the line is redrawn in place and cleared at the
// end, so the summary line that follows stands alone. Only where info lines print (world rank 0).
class ProgressWatcher {
 public:
  explicit ProgressWatcher(const data::BuildProgress& progress)
      : progress_(progress), sink_(log::logging_config().sink),
        policy_(sink_ != nullptr && ::isatty(::fileno(sink_)) == 1) {
    const log::LogConfig& lc = log::logging_config();
    if (sink_ == nullptr || lc.rank != 0 || lc.level > log::Level::kInfo) return;
    thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
  }
  ~ProgressWatcher() {
    if (!thread_.joinable()) return;
    thread_.request_stop();
    thread_.join();
    if (policy_.terminal() && policy_.printed()) {
      std::fputs("\r\033[K", sink_);
      std::fflush(sink_);
    }
  }
  ProgressWatcher(const ProgressWatcher&) = delete;
  ProgressWatcher& operator=(const ProgressWatcher&) = delete;

 private:
  void run(const std::stop_token& stop) {
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> t0;  // when the build started (the totals were set)
    while (!stop.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const std::int64_t total = progress_.bytes_total.load(std::memory_order_relaxed);
      if (total <= 0) continue;  // still checking the cache
      if (!t0) t0 = Clock::now();
      const double elapsed = std::chrono::duration<double>(Clock::now() - *t0).count();
      const double fraction = progress_.fraction();
      if (!policy_.should_print(fraction, elapsed)) continue;
      const std::string line = prepare_progress_line(
          fraction, progress_.records_read.load(std::memory_order_relaxed),
          progress_.records_done.load(std::memory_order_relaxed),
          static_cast<double>(total) / 1e6, elapsed);
      if (policy_.terminal()) {
        std::fprintf(sink_, "\r%s\033[K", line.c_str());
        std::fflush(sink_);
      } else {
        log::info("{}", line);
      }
    }
  }

  const data::BuildProgress& progress_;
  std::FILE* sink_;
  PrepareProgressPolicy policy_;
  std::jthread thread_;  // last: stopped before the members it reads go
};

}  // namespace

std::unique_ptr<data::Tokenizer> tokenizer_from_config(const config::ExperimentConfig& cfg) {
  if (cfg.data.tokenizer == config::TokenizerKind::kModel) return data::load_tokenizer(cfg.model.path);
  return std::make_unique<data::ByteTokenizer>();
}

data::CachedCorpus prepare_data(const config::ExperimentConfig& cfg,
                                const data::Tokenizer& tokenizer, int threads) {
  data::BuildProgress progress;
  data::CorpusSpec spec = corpus_spec_from_config(cfg, threads);
  spec.progress = &progress;
  for (const std::string& special : spec.tmpl.chat_format().special_tokens)
    if (!tokenizer.token_to_id(special))
      log::warn("data.template.preset {}: the tokenizer has no token {}; it is encoded as plain "
                "text",
                cfg.data.prompt_template.preset, special);
  const std::string tokenizer_id =
      data::tokenizer_fingerprint(cfg.data.tokenizer == config::TokenizerKind::kModel ? cfg.model.path
                                                                                   : "");
  data::CachedCorpus c = [&] {
    const ProgressWatcher watcher(progress);
    return data::load_or_build_cache(spec, tokenizer, tokenizer_id, cfg.data.seq_len,
                                     cfg.data.cache_dir);
  }();
  for (const auto& [reason, count] : c.stats.skipped)
    log::warn("data: skipped {} invalid line{} ({})", count, count == 1 ? "" : "s", reason);
  if (c.stats.overlong > 0) {
    const config::OverlongPolicy policy = cfg.data.overlong;
    const std::string message = fmt::format(
        "data: {} document{} longer than data.seq_len ({} tokens): {}{}", c.stats.overlong,
        c.stats.overlong == 1 ? " is" : "s are", cfg.data.seq_len,
        policy == config::OverlongPolicy::kSplit  ? "split across sequences (data.overlong: split)"
        : policy == config::OverlongPolicy::kDrop ? "dropped (data.overlong: drop)"
                                                  : "truncated (data.overlong: truncate)",
        c.stats.overlong_tokens_removed > 0
            ? fmt::format(", {} tokens removed", c.stats.overlong_tokens_removed)
            : std::string());
    // Splitting is what packing does with long text anyway: worth a line, not a warning.
    if (policy == config::OverlongPolicy::kSplit) log::info("{}", message);
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
