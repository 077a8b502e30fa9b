// Replays the JSONL fuzz target without libFuzzer, so every build exercises it: seed files of each
// record kind and each kind of bad line, then 20000 deterministic mutations (byte flips, JSON-aware
// insertions, deletions, truncations) from a fixed SplitMix64 stream.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

const std::vector<std::string> kSeeds = {
    "{\"text\": \"hello world\"}\n",
    "{\"prompt\": \"Q: 1+1?\\n\", \"completion\": \"2\", \"rationale\": \"one and one\"}\n",
    "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": "
    "\"u\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n",
    "{\"src\": \"Open\", \"tgt\": \"Öffnen\", \"src_lang\": \"eng_Latn\", \"tgt_lang\": \"deu_Latn\"}\n",
    "{\"text\": \"a\"}\n[1]\n{\"text\": 3}\n{bad\n{\"text\": \"\\u00e9\\ud83d\\ude00\"}\n{\"text\": \"cut",
};

const char* const kTokens[] = {"{", "}", "[", "]", "\"", ":", ",", "\n", "\\", "\\u", "\\ud800",
                               "null", "true", "1e999", "-0", "\"text\"", "\"messages\"",
                               "\"role\"", "\"assistant\"", "\"src_lang\"", "\"zho_Hans\"",
                               "\xEF\xBB\xBF", "\xff", "\xc3", "\xe2\x82", "\0"};

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

void run(const std::string& s) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

TEST(JsonlFuzzReplay, SeedsAndMutations) {
  std::string all;
  for (const auto& s : kSeeds) {
    run(s);
    all += s;
  }
  run(all);
  SplitMix64 rng(20261126);
  for (int i = 0; i < 20000; ++i) {
    std::string s = kSeeds[rng.below(kSeeds.size())];
    const int edits = 1 + static_cast<int>(rng.below(4));
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = rng.below(s.size() + 1);
      switch (rng.below(4)) {
        case 0:
          if (!s.empty()) s[rng.below(s.size())] = static_cast<char>(rng.next() & 0xff);
          break;
        case 1: {
          const std::string t = kTokens[rng.below(std::size(kTokens))];
          s.insert(pos, t.empty() ? std::string(1, '\0') : t);
          break;
        }
        case 2:
          s.erase(pos, rng.below(8));
          break;
        default:
          s.resize(pos);
      }
    }
    SCOPED_TRACE(i);
    ASSERT_NO_THROW(run(s));
  }
}

}  // namespace
