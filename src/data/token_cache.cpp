// Tokenized cache: key, binary files, manifest, tmp + rename (see token_cache.h).
#include "data/token_cache.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/sha256.h"
#include "data/jsonl_dataset.h"

namespace tailor::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kFormatVersion = 1;

template <typename T>
void write_binary(const fs::path& path, const std::vector<T>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
  f.close();
  if (!f) throw_runtime_error("cannot write {}", path.string());
}

template <typename T>
bool read_binary(const fs::path& path, std::vector<T>& v, std::size_t count) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  v.resize(count);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(T)));
  return static_cast<std::size_t>(f.gcount()) == count * sizeof(T) && f.peek() == EOF;
}

// The cache in `dir` when it is complete and matches `inputs`.
std::optional<CachedCorpus> try_load(const fs::path& dir, const json& inputs) {
  std::ifstream mf(dir / "manifest.json");
  if (!mf) return std::nullopt;
  const json m = json::parse(mf, nullptr, false);
  if (m.is_discarded() || m.value("format_version", 0) != kFormatVersion ||
      m.value("inputs", json()) != inputs)
    return std::nullopt;
  CachedCorpus c;
  const auto n_tokens = m.value("tokens", std::size_t{0});
  const auto n_docs = m.value("documents", std::size_t{0});
  if (!read_binary(dir / "tokens.bin", c.corpus.tokens, n_tokens) ||
      !read_binary(dir / "loss.bin", c.corpus.loss, n_tokens) ||
      !read_binary(dir / "docs.bin", c.corpus.doc_start, n_docs + 1))
    return std::nullopt;
  c.stats.records = m.value("records", std::int64_t{0});
  c.stats.bytes = m.value("source_bytes", std::int64_t{0});
  c.stats.overlong = m.value("overlong", std::int64_t{0});
  c.stats.overlong_tokens_removed = m.value("overlong_tokens_removed", std::int64_t{0});
  for (const auto& [k, v] : m.value("skipped", json::object()).items())
    c.stats.skipped[k] = v.get<std::int64_t>();
  c.dir = dir.string();
  c.reused = true;
  return c;
}

}  // namespace

std::string tokenizer_fingerprint(const std::string& model_dir) {
  if (model_dir.empty()) return "byte";
  json j = json::object();
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                           "special_tokens_map.json"}) {
    const fs::path p = fs::path(model_dir) / name;
    std::error_code ec;
    if (fs::exists(p, ec)) j[name] = sha256_file(p.string());
  }
  return j.dump();
}

std::string cache_inputs_json(const CorpusSpec& spec, const std::string& tokenizer_id,
                              std::int64_t seq_len) {
  json j;
  j["format"] = spec.format == DataFormat::kJsonl ? "jsonl" : "text";
  json sources = json::array();
  for (const DataSource& s : spec.sources)
    sources.push_back({{"sha256", sha256_file(s.path)}, {"weight", s.weight}});
  j["sources"] = sources;
  j["tokenizer"] = tokenizer_id;
  j["seq_len"] = seq_len;
  j["overlong"] = static_cast<int>(spec.overlong);
  j["max_doc_tokens"] = spec.max_doc_tokens;
  if (spec.format == DataFormat::kText) {
    j["split"] = static_cast<int>(spec.split);
  } else {
    const TemplateSpec& t = spec.tmpl;
    json shots = json::array();
    for (const auto& ex : t.few_shot) shots.push_back({ex.prompt, ex.completion});
    j["template"] = {{"preset", chat_preset_name(t.preset)}, {"system", t.system},
                     {"few_shot", shots},  {"translation", t.translation},
                     {"train_on_prompt", t.train_on_prompt}};
    j["skip_invalid"] = spec.skip_invalid;
  }
  const bool mixed = spec.sources.size() > 1 || spec.sources.front().weight != 1.0;
  if (mixed) j["seed"] = spec.seed;  // only mixing uses it
  return j.dump();
}

CachedCorpus load_or_build_cache(const CorpusSpec& spec, const Tokenizer& tokenizer,
                                 const std::string& tokenizer_id, std::int64_t seq_len,
                                 const std::string& cache_dir) {
  const std::string inputs_text = cache_inputs_json(spec, tokenizer_id, seq_len);
  const json inputs = json::parse(inputs_text);
  const fs::path dir = fs::path(cache_dir) / sha256_hex(inputs_text).substr(0, 32);
  if (auto hit = try_load(dir, inputs)) return std::move(*hit);
  std::error_code ec;
  fs::remove_all(dir, ec);  // an incomplete or damaged cache under this key

  const auto t0 = std::chrono::steady_clock::now();
  CachedCorpus c;
  c.corpus = build_corpus(spec, tokenizer, c.stats);
  c.build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  c.dir = dir.string();

  fs::create_directories(cache_dir, ec);
  if (ec) throw_user_error(cache_dir, "data.cache_dir: cannot create: {}", ec.message());
  const fs::path tmp = dir.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw_user_error(tmp.string(), "cannot create: {}", ec.message());
  write_binary(tmp / "tokens.bin", c.corpus.tokens);
  write_binary(tmp / "loss.bin", c.corpus.loss);
  write_binary(tmp / "docs.bin", c.corpus.doc_start);
  json m;
  m["format_version"] = kFormatVersion;
  m["inputs"] = inputs;
  json paths = json::array();
  for (const DataSource& s : spec.sources) paths.push_back(s.path);
  m["source_paths"] = paths;  // informational: the key uses contents, not paths
  m["tokens"] = c.corpus.tokens.size();
  m["documents"] = c.corpus.num_documents();
  m["records"] = c.stats.records;
  m["source_bytes"] = c.stats.bytes;
  m["skipped"] = c.stats.skipped;
  m["overlong"] = c.stats.overlong;
  m["overlong_tokens_removed"] = c.stats.overlong_tokens_removed;
  {
    std::ofstream mf(tmp / "manifest.json");
    mf << m.dump(2) << "\n";
    if (!mf) throw_runtime_error("cannot write {}", (tmp / "manifest.json").string());
  }
  fs::rename(tmp, dir, ec);
  if (ec) {
    // Another process finished the same cache first (or a stale one is in the way): keep theirs
    // when it is valid, else replace it.
    fs::remove_all(tmp, ec);
    if (auto hit = try_load(dir, inputs)) {
      hit->reused = false;
      hit->build_seconds = c.build_seconds;
      return std::move(*hit);
    }
    throw_runtime_error("cannot move the new cache into place at {}", dir.string());
  }
  return c;
}

}  // namespace tailor::data
