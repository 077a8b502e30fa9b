// The run directory (ARCHITECTURE.md, Contracts): config.resolved.yaml, metrics.jsonl, tb/,
// checkpoints/, export/. Created only after the config and data validated.
#pragma once

#include <string>

namespace tailor::trainer {

// Creates `dir` (and parents). RuntimeError naming the path on failure.
void create_run_dir(const std::string& dir);

// Writes `content` to `path` atomically: a temporary file in the same directory, fsync, rename.
// A reader sees the old file or the new one, never half of one.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace tailor::trainer
