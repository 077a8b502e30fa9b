// Replays a fuzz entry point without libFuzzer, so every build (g++ included) runs it: every file
// of its corpus directory (TAILOR_FUZZ_CORPUS: the seeds, and inputs that once failed, kept as
// regressions) goes through LLVMFuzzerTestOneInput, which throws on a broken contract. Under the
// fuzzing build (tests/fuzz/run_fuzzers.sh) the same inputs start the coverage-guided search.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

TEST(FuzzCorpus, EveryInputIsAcceptedOrRefusedWithAUserError) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(TAILOR_FUZZ_CORPUS))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 3u) << TAILOR_FUZZ_CORPUS << ": too few seeds";
  for (const fs::path& p : files) {
    SCOPED_TRACE(p.string());
    std::ifstream f(p, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_NO_THROW(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                           bytes.size()));
  }
}

}  // namespace
