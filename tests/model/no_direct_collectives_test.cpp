// Model code reaches the tensor-parallel group only through the named mappings
// (model/tp_mappings.h): no other file under src/model calls a collective.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tailor::model {
namespace {

namespace fs = std::filesystem;

TEST(TpMappings, NoCollectiveOutsideTheMappings) {
  int scanned = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(TAILOR_SOURCE_DIR) / "src" / "model")) {
    if (!e.is_regular_file() || e.path().extension() != ".cpp") continue;
    ++scanned;
    if (e.path().filename() == "tp_mappings.cpp") continue;
    std::ifstream f(e.path());
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    for (const char* call : {"all_reduce(", "all_gather(", "reduce_scatter(", "broadcast("})
      EXPECT_EQ(text.find(call), std::string::npos)
          << e.path() << " calls " << call << " directly; use model/tp_mappings.h";
  }
  EXPECT_GT(scanned, 5);
}

}  // namespace
}  // namespace tailor::model
