// Replays the safetensors fuzz target without libFuzzer, so every build (g++ included) exercises it:
// the committed seed corpus (tests/fuzz/corpus/safetensors_header: valid_* must parse, invalid_* must be
// refused with a UserError), then 20000 deterministic mutations of it. The only acceptable outcomes
// are success with the header's invariants intact or a UserError (checked inside the entry point).
// A failing input is written to <build>/fuzz-failures/ so it can be replayed by the real fuzzer and
// added to the corpus.
//
// The mutator knows the format: besides byte flips, insertions, deletions and truncation, it edits
// the JSON text with format-specific tokens (dtypes, field names, huge and negative numbers, deep
// nesting, bad escapes) and then rewrites the length prefix, so mutants get past the length check.
// Randomness is a fixed SplitMix64 stream, identical on every platform and standard library.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/safetensors_header.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace tailor::checkpoint {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

constexpr int kMutations = 20000;

struct Seed {
  std::string name;
  Bytes bytes;
};

std::vector<Seed> load_corpus() {
  const fs::path dir = fs::path(TAILOR_SOURCE_DIR) / "tests/fuzz/corpus/safetensors_header";
  std::vector<Seed> seeds;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream f(e.path(), std::ios::binary);
    Bytes b(static_cast<std::size_t>(fs::file_size(e.path())));
    f.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()));
    seeds.push_back({e.path().filename().string(), std::move(b)});
  }
  std::sort(seeds.begin(), seeds.end(), [](const Seed& a, const Seed& b) { return a.name < b.name; });
  return seeds;
}

class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

constexpr std::array<std::string_view, 44> kTokens = {
    "\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"BOOL\"", "\"F4\"", "\"F6_E2M3\"", "\"Q\"",
    "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "null", "true", "[]", "{}",
    "[0,0]", "[0,4]", "[1,2,3,4,5,6,7]", "-1", "0", "1", "7", "4294967296", "9223372036854775807",
    "9223372036854775808", "18446744073709551615", "18446744073709551616", "1e400", "0.5", "-0",
    "\"\\u0000\"", "\"\\ud800\"", "\"a\\nb\"", "\"\\\"\"", ",", ":", "\"", "[[[[[[[[", "}}}}", "{\"a\":",
    "\xff", "\xc2\x85"};

// Header text of `b` when its length prefix is plausible, else empty.
bool split(const Bytes& b, std::string& header, Bytes& data) {
  if (b.size() < 8) return false;
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[static_cast<std::size_t>(i)];
  if (n > b.size() - 8) return false;
  header.assign(b.begin() + 8, b.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  data.assign(b.begin() + 8 + static_cast<std::ptrdiff_t>(n), b.end());
  return true;
}

Bytes join(const std::string& header, const Bytes& data, std::uint64_t length) {
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(length >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void mutate(Bytes& b, const std::vector<Seed>& seeds, SplitMix64& rng) {
  std::string header;
  Bytes data;
  const bool structured = split(b, header, data);
  switch (rng.below(9)) {
    case 0:  // flip one bit
      if (!b.empty()) b[rng.below(b.size())] ^= static_cast<std::uint8_t>(1u << rng.below(8));
      return;
    case 1: {  // overwrite one byte with a JSON-significant one
      static constexpr std::string_view kBytes = "{}[]\",:-0123456789\\ eE.\x00\x7f\x80\xc2\xff";
      if (!b.empty()) b[rng.below(b.size())] = static_cast<std::uint8_t>(kBytes[rng.below(kBytes.size())]);
      return;
    }
    case 2: {  // delete a range
      if (b.empty()) return;
      const std::size_t at = rng.below(b.size());
      const std::size_t n = 1 + rng.below(std::min<std::size_t>(16, b.size() - at));
      b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
      return;
    }
    case 3: {  // insert random bytes
      const std::size_t at = rng.below(b.size() + 1);
      const std::size_t n = 1 + rng.below(8);
      for (std::size_t i = 0; i < n; ++i)
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng.next()));
      return;
    }
    case 4:  // truncate
      b.resize(rng.below(b.size() + 1));
      return;
    case 5: {  // an interesting length prefix
      const std::uint64_t n = header.size();
      const std::array<std::uint64_t, 10> lengths = {0, 1, n - 1, n + 1, b.size() - 8, b.size() - 7,
                                                     100'000'000, 100'000'001, ~0ull, 1ull << 63};
      b = join(header, data, structured ? lengths[rng.below(lengths.size())] : rng.next());
      if (!structured && b.size() > 8) b.resize(8);
      return;
    }
    case 6:    // replace a piece of the JSON with a token, fix the length
    case 7: {  // insert a token, fix the length
      if (!structured) return;
      const std::string_view token = kTokens[rng.below(kTokens.size())];
      const std::size_t at = rng.below(header.size() + 1);
      const std::size_t cut = rng.below(std::min<std::size_t>(12, header.size() - at) + 1);
      header.replace(at, rng.below(2) == 0 ? cut : 0, token);
      b = join(header, data, header.size());
      return;
    }
    default: {  // duplicate a piece of the JSON elsewhere, or splice another seed's data
      if (!structured) return;
      if (rng.below(2) == 0 && !header.empty()) {
        const std::size_t from = rng.below(header.size());
        const std::size_t n = 1 + rng.below(std::min<std::size_t>(64, header.size() - from));
        header.insert(rng.below(header.size() + 1), header.substr(from, n));
      } else {
        std::string other_header;
        Bytes other_data;
        if (split(seeds[rng.below(seeds.size())].bytes, other_header, other_data)) data = other_data;
      }
      b = join(header, data, header.size());
      return;
    }
  }
}

// Runs the fuzz entry point; on anything it lets escape, saves the input and fails.
bool run_one(const Bytes& input, const std::string& label) {
  try {
    LLVMFuzzerTestOneInput(input.data(), input.size());
    return true;
  } catch (const std::exception& e) {
    const fs::path dir = fs::path(TAILOR_BINARY_DIR) / "fuzz-failures";
    fs::create_directories(dir);
    const fs::path file = dir / (label + ".safetensors");
    std::ofstream(file, std::ios::binary)
        .write(reinterpret_cast<const char*>(input.data()), static_cast<std::streamsize>(input.size()));
    ADD_FAILURE() << label << ": " << e.what() << " (input saved to " << file.string() << ")";
    return false;
  }
}

TEST(SafetensorsFuzzReplay, SeedCorpus) {
  const auto seeds = load_corpus();
  ASSERT_GE(seeds.size(), 10u);
  for (const Seed& s : seeds) {
    SCOPED_TRACE(s.name);
    EXPECT_TRUE(run_one(s.bytes, "seed-" + s.name));
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(s.bytes.data()), s.bytes.size());
    if (s.name.starts_with("valid_")) {
      EXPECT_NO_THROW((void)parse_header(bytes, s.name));
    } else {
      EXPECT_THROW((void)parse_header(bytes, s.name), UserError);
    }
  }
}

TEST(SafetensorsFuzzReplay, DeterministicMutations) {
  const auto seeds = load_corpus();
  ASSERT_FALSE(seeds.empty());
  SplitMix64 rng(0x5afe7e5050ull);
  int accepted = 0, refused = 0, failures = 0;
  for (int i = 0; i < kMutations && failures < 10; ++i) {
    const Seed& seed = seeds[rng.below(seeds.size())];
    Bytes input = seed.bytes;
    const std::size_t rounds = 1 + rng.below(3);
    for (std::size_t r = 0; r < rounds; ++r) mutate(input, seeds, rng);
    if (!run_one(input, "mutant-" + std::to_string(i))) {
      ++failures;
      continue;
    }
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(input.data()), input.size());
    try {
      (void)parse_header(bytes, "m");
      ++accepted;
    } catch (const UserError&) {
      ++refused;
    }
  }
  EXPECT_EQ(failures, 0);
  // The mutations must reach both outcomes often, or they test little.
  EXPECT_GT(accepted, kMutations / 100);
  EXPECT_GT(refused, kMutations / 2);
  std::cout << "mutants: " << accepted << " accepted, " << refused << " refused\n";
}

}  // namespace
}  // namespace tailor::checkpoint
