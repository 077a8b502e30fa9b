// Throughput of data preparation (what `tailor prepare` does before writing the cache): read a
// JSONL or text file, render every record through a template, tokenize, with 1, 2, 4, ... threads.
// Prints a table (MB/s of source bytes, tokens/s) and, with --json, writes the same as JSON.
//   build/benchmarks/tailor_bench_prepare --data datasets/gettext-translations/train.sample.jsonl
//       --repeat 20 --json prepare.json
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/corpus_builder.h"

int main(int argc, char** argv) {
  std::string data_path, model_dir, preset = "plain", json_path;
  int repeat = 1;
  int max_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CLI::App app{"Time data preparation (parse, template, tokenize)"};
  app.add_option("--data", data_path, "JSONL (.jsonl) or text file")->required();
  app.add_option("--model", model_dir, "model directory whose tokenizer to use (default: bytes)");
  app.add_option("--preset", preset, "template preset")->check(CLI::IsMember({"plain", "llama3", "chatml", "mistral", "qwen3", "phi3", "gemma"}));
  app.add_option("--repeat", repeat, "the file is used this many times as sources")->check(CLI::PositiveNumber);
  app.add_option("--max-threads", max_threads, "largest thread count")->check(CLI::PositiveNumber);
  app.add_option("--json", json_path, "write results as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return e.get_exit_code() == 0 ? 0 : 2;
  }
  try {
    using namespace tailor::data;
    std::unique_ptr<Tokenizer> tok;
    if (model_dir.empty()) tok = std::make_unique<ByteTokenizer>();
    else tok = load_tokenizer(model_dir);
    CorpusSpec spec;
    spec.format = data_path.ends_with(".jsonl") ? DataFormat::kJsonl : DataFormat::kText;
    spec.split = TextSplit::kLine;
    spec.tmpl.preset = *parse_chat_preset(preset);
    for (int i = 0; i < repeat; ++i) spec.sources.push_back({data_path, 1.0});
    nlohmann::json results = nlohmann::json::array();
    std::printf("%8s %10s %12s %10s %12s\n", "threads", "MB", "tokens", "MB/s", "Mtokens/s");
    for (int t = 1; t <= max_threads; t *= 2) {
      spec.threads = t;
      CorpusStats stats;
      const auto t0 = std::chrono::steady_clock::now();
      const TokenizedCorpus c = build_corpus(spec, *tok, stats);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double mb = static_cast<double>(stats.bytes) / 1e6;
      const double tokens = static_cast<double>(c.tokens.size());
      std::printf("%8d %10.2f %12.0f %10.1f %12.2f\n", t, mb, tokens, mb / s, tokens / s / 1e6);
      results.push_back({{"threads", t}, {"bytes", stats.bytes}, {"tokens", c.tokens.size()},
                         {"seconds", s}, {"mb_per_s", mb / s}});
    }
    if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << "\n";
  } catch (const tailor::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return static_cast<int>(e.exit_code());
  }
  return 0;
}
