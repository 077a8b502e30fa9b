// From data sources to one TokenizedCorpus: reads each source (plain text or JSONL), renders JSONL
// records through the prompt template, tokenizes in parallel, and mixes sources by weight.
//
// Mixing: a source of weight w contributes its documents floor(w) times plus a fraction w -
// floor(w) of them chosen by the seed; the documents of several sources are then interleaved by a
// seeded shuffle, so the mix is the same for a seed whatever the thread count. A single source of
// weight 1 keeps its documents in file order.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/preference.h"
#include "data/template.h"
#include "data/text_dataset.h"
#include "data/tokenizer.h"

namespace tailor::data {

enum class DataFormat { kText, kJsonl };

// Documents longer than one sequence (max_doc_tokens): split across sequences as packing does
// anyway (kSplit), cut to their first max_doc_tokens tokens (kTruncate), or left out (kDrop).
enum class OverlongPolicy { kSplit, kTruncate, kDrop };

struct DataSource {
  std::string path;
  double weight = 1.0;
};

// How far build_corpus has got, for a watcher on another thread (the progress line of `tailor
// prepare`). bytes_total is set before anything moves; every source byte is counted twice, once
// when its line is parsed and once when its record is tokenized (each record counting its share of
// its source's bytes; text sources count whole), so the work done is (parsed + tokenized) /
// (2 * total). Records are counted when read (a JSONL line parsed; a text source's documents
// once it is split) and again when tokenized, so the count moves in both halves of the work.
struct BuildProgress {
  std::atomic<std::int64_t> bytes_total{0};
  std::atomic<std::int64_t> bytes_parsed{0};
  std::atomic<std::int64_t> bytes_tokenized{0};
  std::atomic<std::int64_t> records_read{0};
  std::atomic<std::int64_t> records_done{0};  // tokenized

  [[nodiscard]] double fraction() const;
};

struct CorpusSpec {
  std::vector<DataSource> sources;
  DataFormat format = DataFormat::kText;
  TextSplit split = TextSplit::kNone;  // text format only
  TemplateSpec tmpl;                   // JSONL only
  bool skip_invalid = false;           // JSONL only
  std::uint64_t seed = 0;              // mixing
  int threads = 1;                     // tokenization
  OverlongPolicy overlong = OverlongPolicy::kSplit;
  std::int64_t max_doc_tokens = 0;     // seq_len; 0: no limit (preference pairs: unused)
  // Preference pairs (a preference objective): every JSONL record must be one, and each becomes
  // one document of two sequences truncated to these limits (preference.h). Without them a
  // pair is a `file:line` error.
  std::optional<PairLimits> pairs;
  BuildProgress* progress = nullptr;   // counters to advance, when watched (not part of any key)
};

struct CorpusStats {
  std::map<std::string, std::int64_t> skipped;  // invalid JSONL lines left out, by reason
  std::int64_t records = 0;                     // documents read (before mixing)
  std::int64_t bytes = 0;                       // bytes of the sources
  std::int64_t overlong = 0;                    // documents longer than max_doc_tokens
  std::int64_t overlong_tokens_removed = 0;     // by truncation or dropping
};

[[nodiscard]] TokenizedCorpus build_corpus(const CorpusSpec& spec, const Tokenizer& tokenizer,
                                           CorpusStats& stats);

// Holds out round(fraction * documents) documents, chosen by `seed`, as a validation corpus
// (at least one, and at least one left for training). Both keep their documents' order.
struct TrainValidSplit {
  TokenizedCorpus train;
  TokenizedCorpus valid;
};
[[nodiscard]] TrainValidSplit split_validation(CorpusView corpus, double fraction,
                                               std::uint64_t seed);

// Tokenizes records already parsed (`name` is used in messages), `threads` at a time. With
// `progress`, advances records_done and bytes_tokenized (by source_bytes in all).
// `pairs`: the records are preference pairs, each one document (preference.h).
[[nodiscard]] TokenizedCorpus tokenize_records(const std::vector<Record>& records,
                                               const TemplateSpec& tmpl,
                                               const Tokenizer& tokenizer, int threads,
                                               BuildProgress* progress = nullptr,
                                               std::int64_t source_bytes = 0,
                                               const PairLimits* pairs = nullptr);

// Records of the wrong kind for `pairs` (a preference pair without it, anything else with it)
// are a UserError naming `name:line`.
void check_record_kinds(const std::vector<Record>& records, const std::string& name, bool pairs);

}  // namespace tailor::data
