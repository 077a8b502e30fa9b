// Source reading, parallel tokenization and weighted mixing (see corpus_builder.h).
#include "data/corpus_builder.h"

#include <algorithm>
#include <cmath>
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

void append_doc(TokenizedCorpus& out, const TokenizedCorpus& in, std::int64_t doc) {
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

TokenizedCorpus tokenize_records(const std::vector<Record>& records, const TemplateSpec& tmpl,
                                 const Tokenizer& tokenizer, int threads) {
  const auto n = records.size();
  std::vector<std::vector<std::int32_t>> tokens(n);
  std::vector<std::vector<std::uint8_t>> loss(n);
  const auto work = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
      tokenize_record(render_record(records[i], tmpl), tmpl.preset, tokenizer, tokens[i], loss[i]);
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

TrainValidSplit split_validation(const TokenizedCorpus& corpus, double fraction,
                                 std::uint64_t seed) {
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
  std::vector<TokenizedCorpus> parts;
  for (const DataSource& src : spec.sources) {
    const std::string text = read_data_file(src.path);
    stats.bytes += static_cast<std::int64_t>(text.size());
    if (spec.format == DataFormat::kText) {
      parts.push_back(tokenize_text(text, src.path, spec.split, tokenizer));
    } else {
      JsonlData data = parse_jsonl(text, src.path, spec.skip_invalid, spec.threads);
      for (const auto& [kind, count] : data.skipped) stats.skipped[kind] += count;
      parts.push_back(tokenize_records(data.records, spec.tmpl, tokenizer, spec.threads));
    }
    stats.records += parts.back().num_documents();
    if (parts.back().loss.empty()) parts.back().loss.assign(parts.back().tokens.size(), 1);
    parts.back() = limit_documents(std::move(parts.back()), spec, stats);
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
