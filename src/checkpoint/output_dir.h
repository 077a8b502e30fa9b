// Writing a directory of output files so that readers never see half of it: the files go into a
// fresh `out_dir.tmp`, which then replaces `out_dir` (the previous version, if any, is moved
// aside and removed only after the rename).
#pragma once

#include <string>

namespace tailor::checkpoint {

// Creates an empty `out_dir.tmp` (removing a leftover one) and returns its path.
[[nodiscard]] std::string begin_output_dir(const std::string& out_dir);

// Moves the finished `tmp` (from begin_output_dir) into place as `out_dir`.
void commit_output_dir(const std::string& tmp, const std::string& out_dir);

}  // namespace tailor::checkpoint
