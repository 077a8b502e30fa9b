// The environment Tailor reads is one declared, documented list (core/environment.h): no source
// file under src/ reads a variable around it, every declared variable has a row in
// docs/troubleshooting.md, and the accessors read what is set.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/environment.h"
#include "core/error.h"

namespace tailor::env {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(Environment, OnlyCoreEnvironmentCallsGetenv) {
  int scanned = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(TAILOR_SOURCE_DIR) / "src")) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".cpp" && ext != ".h" && ext != ".cu" && ext != ".cuh"))
      continue;
    ++scanned;
    if (e.path().filename() == "environment.cpp") continue;
    EXPECT_EQ(read(e.path()).find("getenv("), std::string::npos)
        << e.path() << " reads the environment around core/environment.h";
  }
  EXPECT_GT(scanned, 100);
}

TEST(Environment, EveryVariableIsDocumented) {
  const std::string doc = read(fs::path(TAILOR_SOURCE_DIR) / "docs" / "troubleshooting.md");
  ASSERT_FALSE(doc.empty());
  for (const Variable& v : variables()) {
    std::string quoted = "`";  // built by append: GCC 12 warns falsely on "`" + std::string
    quoted.append(v.name).append("`");
    EXPECT_NE(doc.find(quoted), std::string::npos)
        << v.name << " has no row in docs/troubleshooting.md";
  }
}

TEST(Environment, AccessorsReadWhatIsSet) {
  ::unsetenv("TAILOR_NO_NCCL");
  EXPECT_FALSE(is_set("TAILOR_NO_NCCL"));
  ::setenv("TAILOR_NO_NCCL", "", 1);
  EXPECT_TRUE(is_set("TAILOR_NO_NCCL"));
  EXPECT_EQ(get("TAILOR_NO_NCCL"), std::nullopt);  // empty counts as unset for values
  ::unsetenv("TAILOR_NO_NCCL");

  ::setenv("TAILOR_CUDA_SYNC", "1", 1);
  EXPECT_TRUE(is_one("TAILOR_CUDA_SYNC"));
  ::setenv("TAILOR_CUDA_SYNC", "yes", 1);
  EXPECT_FALSE(is_one("TAILOR_CUDA_SYNC"));
  EXPECT_EQ(get("TAILOR_CUDA_SYNC"), "yes");
  ::unsetenv("TAILOR_CUDA_SYNC");

  // The first variable that is set wins, clamped at the minimum.
  ::unsetenv("SLURM_LOCALID");
  ::unsetenv("LOCAL_RANK");
  ::unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  EXPECT_EQ(first_integer({"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}, 0),
            std::nullopt);
  ::setenv("LOCAL_RANK", "3", 1);
  ::setenv("SLURM_LOCALID", "-2", 1);
  EXPECT_EQ(first_integer({"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}, 0), 0);
  ::unsetenv("SLURM_LOCALID");
  EXPECT_EQ(first_integer({"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}, 0), 3);
  ::unsetenv("LOCAL_RANK");
}

TEST(Environment, AnUndeclaredVariableIsABug) {
  EXPECT_THROW((void)get("TAILOR_NOT_DECLARED"), InternalError);
}

}  // namespace
}  // namespace tailor::env
