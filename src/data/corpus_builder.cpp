// Source reading, parallel tokenization and weighted mixing (see corpus_builder.h).
#include "data/corpus_builder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/rng.h"
#include "data/jsonl_dataset.h"

namespace tailor::data {
namespace {

// Seeded Fisher-Yates permutation of [0, n) on its own stream.
std::vector<std::int64_t> seeded_permutation(std::int64_t n, std::uint64_t seed,
                                             std::uint64_t stream) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  const CounterRng rng(seed, stream);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(
        rng.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(i + 1)));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

struct DocRef {
  std::size_t source;
  std::int64_t doc;
};

void append_doc(TokenizedCorpus& out, CorpusView in, std::int64_t doc) {
  const auto b = static_cast<std::size_t>(in.doc_start[static_cast<std::size_t>(doc)]);
  const auto e = static_cast<std::size_t>(in.doc_start[static_cast<std::size_t>(doc) + 1]);
  out.doc_start.push_back(static_cast<std::int64_t>(out.tokens.size()));
  out.tokens.insert(out.tokens.end(), in.tokens.begin() + static_cast<std::ptrdiff_t>(b),
                    in.tokens.begin() + static_cast<std::ptrdiff_t>(e));
  if (in.loss.empty()) {
    out.loss.insert(out.loss.end(), e - b, 1);
  } else {
    out.loss.insert(out.loss.end(), in.loss.begin() + static_cast<std::ptrdiff_t>(b),
                    in.loss.begin() + static_cast<std::ptrdiff_t>(e));
  }
}

// Applies the over-long policy (anything but kSplit) to every document.
TokenizedCorpus limit_documents(TokenizedCorpus in, const CorpusSpec& spec, CorpusStats& stats) {
  const std::int64_t limit = spec.max_doc_tokens;
  if (limit <= 0) return in;
  std::int64_t overlong = 0;
  for (std::int64_t d = 0; d < in.num_documents(); ++d) {
    const auto i = static_cast<std::size_t>(d);
    overlong += in.doc_start[i + 1] - in.doc_start[i] > limit;
  }
  stats.overlong += overlong;
  if (overlong == 0 || spec.overlong == OverlongPolicy::kSplit) return in;
  TokenizedCorpus out;
  for (std::int64_t d = 0; d < in.num_documents(); ++d) {
    const auto i = static_cast<std::size_t>(d);
    const std::int64_t b = in.doc_start[i], n = in.doc_start[i + 1] - b;
    if (n <= limit) {
      append_doc(out, in, d);
      continue;
    }
    if (spec.overlong == OverlongPolicy::kDrop) {
      stats.overlong_tokens_removed += n;
      continue;
    }
    stats.overlong_tokens_removed += n - limit;
    out.doc_start.push_back(static_cast<std::int64_t>(out.tokens.size()));
    const auto first = in.tokens.begin() + static_cast<std::ptrdiff_t>(b);
    out.tokens.insert(out.tokens.end(), first, first + static_cast<std::ptrdiff_t>(limit));
    const auto lfirst = in.loss.begin() + static_cast<std::ptrdiff_t>(b);
    out.loss.insert(out.loss.end(), lfirst, lfirst + static_cast<std::ptrdiff_t>(limit));
  }
  out.doc_start.push_back(static_cast<std::int64_t>(out.tokens.size()));
  return out;
}

}  // namespace

double BuildProgress::fraction() const {
  const auto total = static_cast<double>(bytes_total.load(std::memory_order_relaxed));
  if (total <= 0) return 0.0;
  const auto done = static_cast<double>(bytes_parsed.load(std::memory_order_relaxed) +
                                        bytes_tokenized.load(std::memory_order_relaxed));
  return std::clamp(done / (2 * total), 0.0, 1.0);
}

TokenizedCorpus tokenize_records(const std::vector<Record>& records, const TemplateSpec& tmpl,
                                 const Tokenizer& tokenizer, int threads, BuildProgress* progress,
                                 std::int64_t source_bytes, const PairLimits* pairs) {
  const auto n = records.size();
  std::vector<std::vector<std::int32_t>> tokens(n);
  std::vector<std::vector<std::uint8_t>> loss(n);
  // Record i's share of the source's bytes: its cumulative share minus the one before, so the
  // shares add up to source_bytes exactly. Counters advance every 64 records.
  const auto share = [&](std::size_t i) {
    return static_cast<std::int64_t>(static_cast<double>(source_bytes) * static_cast<double>(i) /
                                     static_cast<double>(n));
  };
  const auto work = [&](std::size_t begin, std::size_t end) {
    std::size_t counted = begin;
    for (std::size_t i = begin; i < end; ++i) {
      if (pairs != nullptr)
        tokenize_pair(records[i], tmpl, tokenizer, *pairs, tokens[i], loss[i]);
      else
        tokenize_record(render_record(records[i], tmpl), tmpl.chat_format(), tokenizer, tokens[i],
                        loss[i]);
      if (progress != nullptr && ((i - begin) % 64 == 63 || i + 1 == end)) {
        progress->records_done.fetch_add(static_cast<std::int64_t>(i + 1 - counted),
                                         std::memory_order_relaxed);
        progress->bytes_tokenized.fetch_add(share(i + 1) - share(counted),
                                            std::memory_order_relaxed);
        counted = i + 1;
      }
    }
  };
  const auto t = static_cast<std::size_t>(std::max(1, threads));
  if (t == 1 || n < 64) {
    work(0, n);
  } else {
    std::vector<std::thread> pool;
    std::exception_ptr failure;
    std::mutex failure_mutex;
    for (std::size_t k = 0; k < t; ++k) {
      pool.emplace_back([&, k] {
        try {
          work(n * k / t, n * (k + 1) / t);
        } catch (...) {
          const std::lock_guard lock(failure_mutex);
          if (!failure) failure = std::current_exception();
        }
      });
    }
    for (auto& th : pool) th.join();
    if (failure) std::rethrow_exception(failure);
  }
  TokenizedCorpus c;
  std::size_t total = 0;
  for (const auto& v : tokens) total += v.size();
  c.tokens.reserve(total);
  c.loss.reserve(total);
  for (std::size_t i = 0; i < n; ++i) {
    c.doc_start.push_back(static_cast<std::int64_t>(c.tokens.size()));
    c.tokens.insert(c.tokens.end(), tokens[i].begin(), tokens[i].end());
    c.loss.insert(c.loss.end(), loss[i].begin(), loss[i].end());
  }
  c.doc_start.push_back(static_cast<std::int64_t>(c.tokens.size()));
  return c;
}

void check_record_kinds(const std::vector<Record>& records, const std::string& name, bool pairs) {
  for (const Record& r : records) {
    const bool pair = r.kind == RecordKind::kPreference;
    if (pair && !pairs)
      throw_user_error(fmt::format("{}:{}", name, r.line),
                       "a preference pair (\"chosen\"/\"rejected\") needs a preference "
                       "objective (objective.type: dpo, cpo, orpo or simpo)");
    if (!pair && pairs)
      throw_user_error(fmt::format("{}:{}", name, r.line),
                       "expected a preference pair {{\"prompt\", \"chosen\", \"rejected\"}} "
                       "(objective.type is a preference objective), got another kind of record");
  }
}

TrainValidSplit split_validation(CorpusView corpus, double fraction, std::uint64_t seed) {
  const std::int64_t n = corpus.num_documents();
  TAILOR_ASSERT(n >= 2, "a validation split needs at least 2 documents, got {}", n);
  const auto held = std::clamp<std::int64_t>(
      std::llround(fraction * static_cast<double>(n)), 1, n - 1);
  std::vector<std::int64_t> perm = seeded_permutation(n, seed, stream_id("data.valid"));
  std::vector<char> is_valid(static_cast<std::size_t>(n), 0);
  for (std::int64_t i = 0; i < held; ++i) is_valid[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])] = 1;
  TrainValidSplit out;
  for (std::int64_t d = 0; d < n; ++d)
    append_doc(is_valid[static_cast<std::size_t>(d)] ? out.valid : out.train, corpus, d);
  out.train.doc_start.push_back(static_cast<std::int64_t>(out.train.tokens.size()));
  out.valid.doc_start.push_back(static_cast<std::int64_t>(out.valid.tokens.size()));
  return out;
}

TokenizedCorpus build_corpus(const CorpusSpec& spec, const Tokenizer& tokenizer,
                             CorpusStats& stats) {
  TAILOR_ASSERT(!spec.sources.empty(), "no data sources");
  TAILOR_CHECK_USER(tokenizer.eos_token_id().has_value(), spec.sources.front().path,
                    "the tokenizer has no end-of-sequence token to close documents with");
  BuildProgress* progress = spec.progress;
  if (progress != nullptr) {
    std::int64_t total = 0;
    for (const DataSource& src : spec.sources) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(src.path, ec);
      total += ec ? 0 : static_cast<std::int64_t>(size);
    }
    progress->bytes_total = total;
  }
  std::vector<TokenizedCorpus> parts;
  for (const DataSource& src : spec.sources) {
    const std::string text = read_data_file(src.path);
    const auto bytes = static_cast<std::int64_t>(text.size());
    stats.bytes += bytes;
    if (spec.format == DataFormat::kText) {
      parts.push_back(tokenize_text(text, src.path, spec.split, tokenizer));
      if (progress != nullptr) {
        progress->records_read += parts.back().num_documents();
        progress->records_done += parts.back().num_documents();
        progress->bytes_parsed += bytes;
        progress->bytes_tokenized += bytes;
      }
    } else {
      JsonlData data = parse_jsonl(text, src.path, spec.skip_invalid, spec.threads,
                                   progress != nullptr ? &progress->bytes_parsed : nullptr,
                                   progress != nullptr ? &progress->records_read : nullptr);
      for (const auto& [kind, count] : data.skipped) stats.skipped[kind] += count;
      check_record_kinds(data.records, src.path, spec.pairs.has_value());
      parts.push_back(tokenize_records(data.records, spec.tmpl, tokenizer, spec.threads, progress,
                                       bytes, spec.pairs ? &*spec.pairs : nullptr));
    }
    stats.records += parts.back().num_documents();
    if (parts.back().loss.empty()) parts.back().loss.assign(parts.back().tokens.size(), 1);
    if (!spec.pairs) parts.back() = limit_documents(std::move(parts.back()), spec, stats);
  }
  TAILOR_CHECK_USER(stats.records > stats.overlong || spec.overlong != OverlongPolicy::kDrop,
                    spec.sources.front().path,
                    "every document is longer than data.seq_len ({} tokens) and data.overlong is "
                    "drop",
                    spec.max_doc_tokens);
  if (parts.size() == 1 && spec.sources.front().weight == 1.0) return std::move(parts.front());

  // Weighted selection, then a seeded interleave.
  std::vector<DocRef> docs;
  for (std::size_t s = 0; s < parts.size(); ++s) {
    const std::int64_t n = parts[s].num_documents();
    const double w = spec.sources[s].weight;
    const auto whole = static_cast<std::int64_t>(std::floor(w));
    for (std::int64_t r = 0; r < whole; ++r)
      for (std::int64_t d = 0; d < n; ++d) docs.push_back({s, d});
    const auto extra = static_cast<std::int64_t>(
        std::llround((w - static_cast<double>(whole)) * static_cast<double>(n)));
    if (extra > 0) {
      std::vector<std::int64_t> pick =
          seeded_permutation(n, spec.seed, stream_id("data.mix.select") ^ s);
      pick.resize(static_cast<std::size_t>(extra));
      std::sort(pick.begin(), pick.end());
      for (std::int64_t d : pick) docs.push_back({s, d});
    }
  }
  TAILOR_CHECK_USER(!docs.empty(), spec.sources.front().path,
                    "the weights of data.train select no documents");
  const std::vector<std::int64_t> order = seeded_permutation(
      static_cast<std::int64_t>(docs.size()), spec.seed, stream_id("data.mix.interleave"));
  TokenizedCorpus out;
  for (std::int64_t i : order) {
    const DocRef& ref = docs[static_cast<std::size_t>(i)];
    append_doc(out, parts[ref.source], ref.doc);
  }
  out.doc_start.push_back(static_cast<std::int64_t>(out.tokens.size()));
  return out;
}

}  // namespace tailor::data
