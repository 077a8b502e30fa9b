// Encode throughput of Tailor's tokenizers: one tokenizer (tokenizer.json, tokenizer.model or a
// model directory), one UTF-8 text file encoded line by line on one thread, `repeats` timed passes
// after one warm-up pass (which also fills the BPE word cache, as the reference's does). Prints one
// JSON line: bytes, tokens, an FNV-1a hash of all ids (so a driver can check the ids against
// Hugging Face `tokenizers` without moving them), and the seconds of each pass. Driven by
// benchmarks/tokenizer_encode.py, which times `tokenizers` on the same text.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/hf_tokenizer.h"
#include "data/sentencepiece_tokenizer.h"
#include "data/tokenizer.h"

namespace {

std::unique_ptr<tailor::data::Tokenizer> open_tokenizer(const std::filesystem::path& p) {
  using namespace tailor::data;
  if (std::filesystem::is_directory(p)) return load_tokenizer(p);
  if (p.extension() == ".model")
    return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::load(p));
  return std::make_unique<HfTokenizer>(HfTokenizer::load(p));
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_path, text_path;
  int repeats = 5;
  CLI::App app{"Time tokenizer encoding (one thread, line by line)"};
  app.add_option("--tokenizer", tokenizer_path, "tokenizer.json, tokenizer.model or model dir")
      ->required();
  app.add_option("--text", text_path, "UTF-8 text file")->required();
  app.add_option("--repeats", repeats, "timed passes")->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::cerr << e.what() << "\n";
    return e.get_exit_code() == 0 ? 0 : 2;
  }
  try {
    const auto tok = open_tokenizer(tokenizer_path);
    std::ifstream in(text_path, std::ios::binary);
    if (!in) throw tailor::UserError(text_path, "cannot open file");
    std::vector<std::string> lines;
    std::size_t bytes = 0;
    for (std::string line; std::getline(in, line);) {
      bytes += line.size();
      lines.push_back(std::move(line));
    }

    std::uint64_t hash = 1469598103934665603ull;  // FNV-1a over the ids' little-endian bytes
    std::size_t tokens = 0;
    for (const std::string& line : lines) {
      for (std::int32_t id : tok->encode(line)) {
        auto v = static_cast<std::uint32_t>(id);
        for (int k = 0; k < 4; ++k, v >>= 8) hash = (hash ^ (v & 0xFF)) * 1099511628211ull;
        ++tokens;
      }
    }
    std::vector<double> seconds;
    std::size_t sink = 0;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const std::string& line : lines) sink += tok->encode(line).size();
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    nlohmann::json out = {{"system", "tailor"},
                          {"bytes", bytes},
                          {"lines", lines.size()},
                          {"tokens", tokens},
                          {"ids_fnv1a", hash},
                          {"seconds", seconds},
                          {"check", sink == tokens * static_cast<std::size_t>(repeats)}};
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const tailor::Error& e) {
    std::cerr << e.what() << "\n";
    return static_cast<int>(e.exit_code());
  }
}
