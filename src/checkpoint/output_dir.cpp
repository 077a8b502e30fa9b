#include "checkpoint/output_dir.h"

#include <filesystem>

#include "core/error.h"

namespace tailor::checkpoint {

namespace fs = std::filesystem;

std::string begin_output_dir(const std::string& out_dir) {
  const std::string tmp = out_dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw_runtime_error("{}: cannot create: {}", tmp, ec.message());
  return tmp;
}

void commit_output_dir(const std::string& tmp, const std::string& out_dir) {
  const std::string old = out_dir + ".old";
  std::error_code ec;
  fs::remove_all(old, ec);
  if (fs::exists(out_dir)) {
    fs::rename(out_dir, old, ec);
    if (ec) throw_runtime_error("{}: cannot move the previous version aside: {}", out_dir, ec.message());
  }
  fs::rename(tmp, out_dir, ec);
  if (ec) throw_runtime_error("{}: cannot rename into place: {}", out_dir, ec.message());
  fs::remove_all(old, ec);
}

}  // namespace tailor::checkpoint
