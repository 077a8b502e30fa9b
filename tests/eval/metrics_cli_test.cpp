// `tailor metrics --hyp FILE --ref FILE [--ref FILE ...]` through the executable: the last stdout
// line is a JSON object whose values equal what sacreBLEU / rouge-score computed on the same files
// (tests/golden/metrics/cli_*.txt, read as sacreBLEU's command line reads them); unreadable files
// and line-count mismatches are one line `path: reason` and exit 2.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "trainer/test_dirs.h"

namespace {

using nlohmann::json;
using tailor::testing::read_file;
using tailor::testing::TempDir;

const std::string kDir = TAILOR_SOURCE_DIR "/tests/golden/metrics/";

struct Result {
  int code = -1;
  std::string out, err;
};

Result run(const std::string& args, const TempDir& tmp) {
  const std::string out = tmp / "stdout.txt", err = tmp / "stderr.txt";
  const std::string cmd = std::string(TAILOR_BINARY_DIR "/tailor ") + args + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

json last_line_json(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const std::size_t nl = s.rfind('\n');
  return json::parse(nl == std::string::npos ? s : s.substr(nl + 1));
}

const json& cli_fixture() {
  static const json j = [] {
    std::ifstream f(kDir + "cases.json");
    return json::parse(f).at("cli");
  }();
  return j;
}

void expect_equal_to_reference(const json& got, const json& want) {
  constexpr double kTol = 1e-9;
  EXPECT_NEAR(got.at("bleu").get<double>(), want.at("bleu").at("score").get<double>(), kTol);
  EXPECT_NEAR(got.at("chrf").get<double>(), want.at("chrf").at("score").get<double>(), kTol);
  EXPECT_NEAR(got.at("chrf_pp").get<double>(), want.at("chrf_pp").at("score").get<double>(), kTol);
  EXPECT_NEAR(got.at("rouge_l").get<double>(), want.at("rouge_l").get<double>(), kTol);
  EXPECT_NEAR(got.at("exact_match").get<double>(), want.at("exact_match").get<double>(), kTol);
  EXPECT_NEAR(got.at("exact_match_squad").get<double>(), want.at("exact_match_squad").get<double>(),
              kTol);
  EXPECT_EQ(got.at("bleu_signature"), want.at("bleu").at("signature"));
  EXPECT_EQ(got.at("chrf_signature"), want.at("chrf").at("signature"));
  EXPECT_EQ(got.at("chrf_pp_signature"), want.at("chrf_pp").at("signature"));
}

TEST(CliMetrics, OneReferenceEqualsSacrebleu) {
  TempDir tmp;
  const Result r = run("metrics --hyp " + kDir + "cli_hyp.txt --ref " + kDir + "cli_ref_a.txt", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = last_line_json(r.out);
  EXPECT_EQ(j.at("sentences").get<int>(), 6);
  expect_equal_to_reference(j, cli_fixture().at("one_ref"));
  EXPECT_NE(r.out.find("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:"), std::string::npos)
      << r.out;
}

TEST(CliMetrics, SeveralReferences) {
  TempDir tmp;
  const std::string hyp = kDir + "cli_hyp.txt", a = kDir + "cli_ref_a.txt", b = kDir + "cli_ref_b.txt";
  Result r = run("metrics --hyp " + hyp + " --ref " + a + " --ref " + b, tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_equal_to_reference(last_line_json(r.out), cli_fixture().at("two_refs"));
  r = run("metrics --hyp " + hyp + " --ref " + a + " " + b, tmp);  // one --ref, two files
  ASSERT_EQ(r.code, 0) << r.err;
  expect_equal_to_reference(last_line_json(r.out), cli_fixture().at("two_refs"));
}

TEST(CliMetrics, LineCountMismatchIsOneLineExitTwo) {
  TempDir tmp;
  std::ofstream(tmp / "hyp.txt") << "one\ntwo\nthree\n";
  std::ofstream(tmp / "ref.txt") << "one\ntwo\n";
  const Result r = run("metrics --hyp " + (tmp / "hyp.txt") + " --ref " + (tmp / "ref.txt"), tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "ref.txt" + ": 2 lines, but " + (tmp / "hyp.txt") + " has 3\n");
  EXPECT_EQ(r.out, "");
}

TEST(CliMetrics, UnreadableFilesAreOneLineExitTwo) {
  TempDir tmp;
  std::ofstream(tmp / "ref.txt") << "one\n";
  Result r = run("metrics --hyp " + (tmp / "missing.txt") + " --ref " + (tmp / "ref.txt"), tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "missing.txt" + ": cannot read: No such file or directory\n");

  r = run("metrics --hyp " + (tmp / "ref.txt") + " --ref " + tmp.str(), tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp.str() + ": is a directory, not a text file\n");

  std::ofstream(tmp / "bad.txt") << "fine\nbad \xC3(\n";
  std::ofstream(tmp / "two.txt") << "a\nb\n";
  r = run("metrics --hyp " + (tmp / "two.txt") + " --ref " + (tmp / "bad.txt"), tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "bad.txt" + ":2: invalid UTF-8 (byte 0xc3 at column 5)\n");

  std::ofstream(tmp / "empty.txt") << "";
  r = run("metrics --hyp " + (tmp / "empty.txt") + " --ref " + (tmp / "empty.txt"), tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, tmp / "empty.txt" + ": no lines to score\n");
}

TEST(CliMetrics, MissingOptionsAreUsageErrors) {
  TempDir tmp;
  for (const std::string args : {"metrics", "metrics --hyp x.txt", "metrics --ref x.txt"}) {
    const Result r = run(args, tmp);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_EQ(r.err.rfind("tailor: ", 0), 0u) << r.err;
  }
}

}  // namespace
