// `tailor inspect`: what a training checkpoint holds and whether it is whole. Reads the manifest,
// checks every file against it (size, SHA-256; all of them, not stopping at the first bad one),
// reads the tensor index of every model and optimizer file that verifies (placement attributes
// only: no tensor data), and checks that each tensor's pieces together cover its global shape.
// Files that do not verify are not opened (a damaged HDF5 file is not parsed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/h5.h"
#include "checkpoint/training_checkpoint.h"

namespace tailor::checkpoint {

// The checkpoint directory PATH names: PATH itself when it holds manifest.json (step_<N>, or the
// `latest` link), else PATH/latest (a checkpoints/ directory), else PATH/checkpoints/latest (a
// run directory). UserError "PATH: reason" when none of them exists.
[[nodiscard]] std::string resolve_checkpoint_dir(const std::string& path);

// One stored piece of a tensor: the file and the dataset's placement.
struct StoredPiece {
  std::string file;          // bare file name
  h5::DatasetInfo info;
};

struct TensorSummary {
  std::string name;          // dataset path: canonical name, or "<kind>/<name>" (optimizer state)
  Shape global_shape;
  DType dtype = DType::kF32;
  std::vector<StoredPiece> pieces;   // in file order
  std::int64_t held = 0;     // elements the pieces hold together
};

struct Problem {
  std::string where;         // a path
  std::string reason;
};

struct Inspection {
  std::string dir;
  Manifest manifest;
  std::vector<FileCheck> files;              // manifest order
  std::vector<std::string> unlisted;         // files in dir the manifest does not name (ignored)
  std::optional<RankState> state;            // state-rank0.json, when it verifies
  std::vector<TensorSummary> model;          // model-*.h5, by name
  std::vector<TensorSummary> optimizer;      // optim-*.h5, by name
  std::vector<Problem> problems;             // empty: the checkpoint verifies
};

// Inspects the checkpoint directory `dir` (see resolve_checkpoint_dir). A missing or malformed
// manifest is a UserError; everything after it is collected in `problems`.
[[nodiscard]] Inspection inspect_checkpoint(const std::string& dir);

// The human report: header, determinism record, files, tensors with the files and hyperslabs
// that hold them, and a summary line.
[[nodiscard]] std::string format_inspection(const Inspection& inspection);

// "model-tp1-of-2.h5 [0:64, 128:256]" (+ " elements [a, b)" for a ZeRO range of that slab).
[[nodiscard]] std::string describe_piece(const StoredPiece& piece);

}  // namespace tailor::checkpoint
