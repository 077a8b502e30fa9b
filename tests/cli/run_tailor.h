// Runs the built `tailor` executable from the source directory (where the bundled configs and
// datasets are), capturing its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "../trainer/test_dirs.h"

namespace tailor::testing {

struct TailorResult {
  int code = -1;
  std::string out, err;
};

inline TailorResult run_tailor(const std::string& args, const TempDir& tmp) {
  const std::string cmd = "cd " TAILOR_SOURCE_DIR " && " TAILOR_BINARY_DIR "/tailor " + args +
                          " >" + tmp / "stdout.txt" + " 2>" + tmp / "stderr.txt";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(tmp / "stdout.txt"),
          read_file(tmp / "stderr.txt")};
}

inline nlohmann::json last_json_line(const std::string& out) {
  const auto end = out.find_last_not_of('\n');
  const auto begin = out.rfind('\n', end);
  return nlohmann::json::parse(out.substr(begin == std::string::npos ? 0 : begin + 1, end + 1));
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace tailor::testing
