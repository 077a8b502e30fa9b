// Tokenized cache: key, binary files, manifest, tmp + rename (see token_cache.h).
#include "data/token_cache.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_reader.h"
#include "core/sha256.h"
#include "data/jsonl_dataset.h"
#include "data/mapped_file.h"

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

// The three files of a cache, mapped.
struct CacheFiles {
  MappedFile tokens, loss, docs;
};

// `path` mapped when it holds exactly `count` values of T.
template <typename T>
std::optional<MappedFile> map_exactly(const fs::path& path, std::size_t count) {
  std::optional<MappedFile> f = MappedFile::open(path.string());
  if (!f || f->size() != count * sizeof(T)) return std::nullopt;
  return f;
}

// Everything a chat format writes (a built-in preset and a template file with the same strings
// share a cache).
json chat_format_json(const ChatFormat& f) {
  const auto role = [](const ChatRole& r) {
    return json::array({r.prefix, r.suffix, r.separator, r.trim});
  };
  return {{"bos", f.bos},
          {"tokenizer_bos", f.tokenizer_bos},
          {"system_in_first_user", f.system_placement == SystemPlacement::kFirstUser},
          {"system", role(f.system)},
          {"user", role(f.user)},
          {"assistant", role(f.assistant)},
          {"assistant_final_prefix", f.assistant_final_prefix},
          {"assistant_final_lstrip", f.assistant_final_lstrip},
          {"assistant_final_suffix", f.assistant_final_suffix},
          {"end", f.end},
          {"records_as_text", f.records_as_text}};
}

// The cache in `dir` when it is complete and, unless `inputs` is null, matches `inputs`.
std::optional<CachedCorpus> try_load(const fs::path& dir, const json& inputs) {
  std::ifstream mf(dir / "manifest.json");
  if (!mf) return std::nullopt;
  const json m = json::parse(mf, nullptr, false);
  // Unparseable (torn) or of another format version: not this cache, it is rebuilt.
  if (m.is_discarded() || !m.is_object() || !m.contains("format_version") ||
      m["format_version"] != kFormatVersion ||
      (!inputs.is_null() && m.value("inputs", json()) != inputs))
    return std::nullopt;
  // A manifest of this version whose fields have the wrong type was edited: say where.
  const JsonValue jm(m, (dir / "manifest.json").string());
  CachedCorpus c;
  const auto n_tokens = static_cast<std::size_t>(jm.at("tokens").integer(0));
  const auto n_docs = static_cast<std::size_t>(jm.at("documents").integer(0));
  auto tokens = map_exactly<std::int32_t>(dir / "tokens.bin", n_tokens);
  auto loss = map_exactly<std::uint8_t>(dir / "loss.bin", n_tokens);
  auto docs = map_exactly<std::int64_t>(dir / "docs.bin", n_docs + 1);
  if (!tokens || !loss || !docs) return std::nullopt;
  auto files = std::make_shared<const CacheFiles>(
      CacheFiles{std::move(*tokens), std::move(*loss), std::move(*docs)});
  c.corpus = CorpusView(files->tokens.as<std::int32_t>(), files->loss.as<std::uint8_t>(),
                        files->docs.as<std::int64_t>());
  c.storage = std::move(files);
  c.stats.records = jm.integer_or("records", 0, 0);
  c.stats.bytes = jm.integer_or("source_bytes", 0, 0);
  c.stats.overlong = jm.integer_or("overlong", 0, 0);
  c.stats.overlong_tokens_removed = jm.integer_or("overlong_tokens_removed", 0, 0);
  if (const auto skipped = jm.find("skipped"))
    for (const auto& [k, v] : skipped->members()) c.stats.skipped[k] = v.integer(0);
  c.dir = dir.string();
  c.reused = true;
  return c;
}

}  // namespace

std::optional<CachedCorpus> open_cache(const std::string& dir) { return try_load(dir, json()); }

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
  if (spec.pairs) {  // (absent otherwise: the keys of other caches stay as they were)
    j["pairs_seq_len"] = spec.pairs->seq_len;
    j["pairs_max_prompt_tokens"] = spec.pairs->max_prompt_tokens;
  }
  if (spec.format == DataFormat::kText) {
    j["split"] = static_cast<int>(spec.split);
  } else {
    const TemplateSpec& t = spec.tmpl;
    json shots = json::array();
    for (const auto& ex : t.few_shot) shots.push_back({ex.prompt, ex.completion});
    j["template"] = {{"preset", chat_format_json(t.chat_format())}, {"system", t.system},
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
  CorpusStats stats;
  const TokenizedCorpus built = build_corpus(spec, tokenizer, stats);
  const double build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  fs::create_directories(cache_dir, ec);
  if (ec) throw_user_error(cache_dir, "data.cache_dir: cannot create: {}", ec.message());
  const fs::path tmp = dir.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw_user_error(tmp.string(), "cannot create: {}", ec.message());
  write_binary(tmp / "tokens.bin", built.tokens);
  write_binary(tmp / "loss.bin", built.loss);
  write_binary(tmp / "docs.bin", built.doc_start);
  json m;
  m["format_version"] = kFormatVersion;
  m["inputs"] = inputs;
  json paths = json::array();
  for (const DataSource& s : spec.sources) paths.push_back(s.path);
  m["source_paths"] = paths;  // informational: the key uses contents, not paths
  m["tokens"] = built.tokens.size();
  m["documents"] = built.num_documents();
  m["records"] = stats.records;
  m["source_bytes"] = stats.bytes;
  m["skipped"] = stats.skipped;
  m["overlong"] = stats.overlong;
  m["overlong_tokens_removed"] = stats.overlong_tokens_removed;
  {
    std::ofstream mf(tmp / "manifest.json");
    mf << m.dump(2) << "\n";
    if (!mf) throw_runtime_error("cannot write {}", (tmp / "manifest.json").string());
  }
  fs::rename(tmp, dir, ec);
  // Another process may have finished the same cache first (the rename then fails): theirs is
  // the same. Either way the corpus is read back from the files, mapped, and the vectors built
  // here are freed.
  if (ec) fs::remove_all(tmp, ec);
  std::optional<CachedCorpus> c = try_load(dir, inputs);
  if (!c) throw_runtime_error("cannot move the new cache into place at {}", dir.string());
  c->reused = false;
  c->build_seconds = build_seconds;
  return std::move(*c);
}

}  // namespace tailor::data
