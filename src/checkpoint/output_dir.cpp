#include "checkpoint/output_dir.h"

#include <filesystem>

#include "core/error.h"

namespace tailor::checkpoint {

namespace fs = std::filesystem;

OutputDir::OutputDir(std::string out_dir) : out_dir_(std::move(out_dir)), tmp_(out_dir_ + ".tmp") {
  std::error_code ec;
  fs::remove_all(tmp_, ec);
  fs::create_directories(tmp_, ec);
  if (ec) throw_runtime_error("{}: cannot create: {}", tmp_, ec.message());
}

OutputDir::~OutputDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);  // best effort: a destructor reports nothing
}

void OutputDir::commit() {
  const std::string old = out_dir_ + ".old";
  std::error_code ec;
  fs::remove_all(old, ec);
  if (fs::exists(out_dir_)) {
    fs::rename(out_dir_, old, ec);
    if (ec)
      throw_runtime_error("{}: cannot move the previous version aside: {}", out_dir_, ec.message());
  }
  fs::rename(tmp_, out_dir_, ec);
  if (ec) throw_runtime_error("{}: cannot rename into place: {}", out_dir_, ec.message());
  committed_ = true;
  fs::remove_all(old, ec);
}

}  // namespace tailor::checkpoint
