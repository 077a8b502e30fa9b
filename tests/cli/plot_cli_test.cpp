// `tailor plot RUN_DIR [--out FILE.svg]` through the executable: prints the SVG path, exits 2 with
// one line "RUN_DIR/metrics.jsonl: cannot read" when there is nothing to plot, and 2 for --out
// that is not an .svg.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>

#include <gtest/gtest.h>

#include "../trainer/test_dirs.h"

namespace {

using tailor::testing::read_file;
using tailor::testing::TempDir;

struct Result {
  int code = -1;
  std::string out, err;
};

Result run(const std::string& args, const TempDir& tmp) {
  const std::string out = tmp / "stdout.txt", err = tmp / "stderr.txt";
  const std::string cmd =
      std::string(TAILOR_BINARY_DIR "/tailor ") + args + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

TEST(CliPlot, WritesSvgAndPrintsItsPath) {
  TempDir tmp;
  std::ofstream(tmp / "metrics.jsonl")
      << "{\"step\":1,\"loss\":3.0,\"lr\":0.001,\"grad_norm\":1.0}\n"
         "{\"step\":2,\"loss\":2.5,\"lr\":0.001,\"grad_norm\":0.9}\n";
  Result r = run("plot " + tmp.str(), tmp);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, tmp / "plot.svg" + "\n");
  EXPECT_NE(read_file(tmp / "plot.svg").find("</svg>"), std::string::npos);
  r = run("plot " + tmp.str() + " --out " + (tmp / "curves.svg"), tmp);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(tmp / "curves.svg"));
  r = run("plot " + tmp.str() + " --out " + (tmp / "curves.png"), tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("only SVG"), std::string::npos) << r.err;
}

TEST(CliPlot, MissingMetricsIsAUserError) {
  TempDir tmp;
  const Result r = run("plot " + (tmp / "no-run"), tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "no-run" + "/metrics.jsonl: cannot read\n");
  EXPECT_EQ(run("plot", tmp).code, 2);  // RUN_DIR is required
}

}  // namespace
