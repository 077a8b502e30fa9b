// Writing a directory of output files so that readers never see half of it: the files go into a
// fresh `out_dir.tmp`, which then replaces `out_dir` (the previous version, if any, is moved
// aside and removed only after the rename). A write that fails (a full disk) leaves nothing
// behind: the guard removes `out_dir.tmp` unless it was committed.
#pragma once

#include <string>

namespace tailor::checkpoint {

class OutputDir {
 public:
  // Creates an empty `out_dir.tmp` (removing a leftover one).
  explicit OutputDir(std::string out_dir);
  // Removes `out_dir.tmp` unless commit() moved it into place.
  ~OutputDir();
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  // Where the files go until commit().
  [[nodiscard]] const std::string& tmp() const noexcept { return tmp_; }
  // Moves the finished directory into place as `out_dir`.
  void commit();

 private:
  std::string out_dir_, tmp_;
  bool committed_ = false;
};

}  // namespace tailor::checkpoint
