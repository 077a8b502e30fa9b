// The tokenized cache: built once and then reused with the same data, memory-mapped (never copied)
// whether just built or found, and the live progress counters of a build.
#include "data/token_cache.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "data/byte_tokenizer.h"
#include "data/mapped_file.h"

namespace tailor::data {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() / ("tailor_cache_test_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string operator/(const std::string& name) const {
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

// Whether `path` is mapped into this process (/proc/self/maps).
bool is_mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  const std::string canonical = fs::canonical(path).string();
  for (std::string line; std::getline(maps, line);)
    if (line.size() >= canonical.size() &&
        line.compare(line.size() - canonical.size(), canonical.size(), canonical) == 0)
      return true;
  return false;
}

CorpusSpec chat_spec(const std::string& path) {
  {
    std::ofstream f(path);
    for (int i = 0; i < 300; ++i)
      f << R"({"prompt": "Q)" << i << R"(: ", "completion": "answer )" << i * 7 << "\"}\n";
  }
  CorpusSpec spec;
  spec.sources = {{path, 1.0}};
  spec.format = DataFormat::kJsonl;
  spec.threads = 2;
  return spec;
}

TEST(TokenCache, BuiltAndReusedCachesAreMappedAndEqual) {
  const TempDir tmp;
  CorpusSpec spec = chat_spec(tmp / "data.jsonl");
  const ByteTokenizer tok;
  CorpusStats stats;
  const TokenizedCorpus expected = build_corpus(spec, tok, stats);

  const CachedCorpus built = load_or_build_cache(spec, tok, "byte", 32, tmp / "cache");
  EXPECT_FALSE(built.reused);
  const CachedCorpus reused = load_or_build_cache(spec, tok, "byte", 32, tmp / "cache");
  EXPECT_TRUE(reused.reused);
  EXPECT_EQ(reused.dir, built.dir);
  for (const CachedCorpus* c : {&built, &reused}) {
    EXPECT_TRUE(std::equal(c->corpus.tokens.begin(), c->corpus.tokens.end(),
                           expected.tokens.begin(), expected.tokens.end()));
    EXPECT_TRUE(std::equal(c->corpus.loss.begin(), c->corpus.loss.end(), expected.loss.begin(),
                           expected.loss.end()));
    EXPECT_TRUE(std::equal(c->corpus.doc_start.begin(), c->corpus.doc_start.end(),
                           expected.doc_start.begin(), expected.doc_start.end()));
    EXPECT_EQ(c->stats.records, 300);
  }
  // The views point into the cache files, mapped read-only.
  for (const char* f : {"tokens.bin", "loss.bin", "docs.bin"})
    EXPECT_TRUE(is_mapped(built.dir + "/" + f)) << f;
  const std::optional<MappedFile> tokens = MappedFile::open(built.dir + "/tokens.bin");
  ASSERT_TRUE(tokens.has_value());
  EXPECT_EQ(tokens->size(), expected.tokens.size() * sizeof(std::int32_t));

  // A damaged cache (a file of the wrong size) is rebuilt, not read. (Replaced, not truncated in
  // place: Tailor never writes into a cache file that may be mapped.)
  std::ofstream(built.dir + "/short.bin") << "12345678";
  fs::rename(built.dir + "/short.bin", built.dir + "/tokens.bin");
  EXPECT_FALSE(open_cache(built.dir).has_value());
  const CachedCorpus rebuilt = load_or_build_cache(spec, tok, "byte", 32, tmp / "cache");
  EXPECT_FALSE(rebuilt.reused);
  EXPECT_EQ(rebuilt.corpus.tokens.size(), expected.tokens.size());
  // The earlier mappings stay valid (their files were replaced, not overwritten).
  EXPECT_EQ(reused.corpus.tokens.back(), expected.tokens.back());
}

TEST(TokenCache, BuildAdvancesTheProgressCounters) {
  const TempDir tmp;
  CorpusSpec spec = chat_spec(tmp / "data.jsonl");
  BuildProgress progress;
  spec.progress = &progress;
  const ByteTokenizer tok;
  CorpusStats stats;
  (void)build_corpus(spec, tok, stats);
  const auto bytes = static_cast<std::int64_t>(fs::file_size(tmp / "data.jsonl"));
  EXPECT_EQ(progress.bytes_total, bytes);
  EXPECT_EQ(progress.bytes_parsed, bytes);
  EXPECT_EQ(progress.bytes_tokenized, bytes);
  EXPECT_EQ(progress.records_read, 300);  // counted while parsing (issue 19, item 13)
  EXPECT_EQ(progress.records_done, 300);
  EXPECT_DOUBLE_EQ(progress.fraction(), 1.0);
}

}  // namespace
}  // namespace tailor::data
