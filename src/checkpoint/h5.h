// A small RAII layer over the HDF5 C library for checkpoint files.
//
// Tensors are datasets in the root group, named by their canonical parameter name (optimizer
// files put them in one group per state kind: `exp_avg/<name>`). Every dataset is chunked (about
// 1 MiB per chunk) with the Fletcher32 filter, and object modification times are not recorded, so
// the same tensors written in the same order give byte-identical files (tests compare hashes).
// Each tensor dataset carries the attributes that make a checkpoint loadable under another
// layout:
//   global_shape  i64[rank of the full tensor]
//   shard_dim     i64 (-1: not split), shard_offset i64: the slab this file's shard covers
//   local_shape   i64[]: the shard's shape
//   flat_range    i64[2]: elements [begin, end) of the shard (row-major) held here (ZeRO pieces)
// The dataset itself is the shard (N-D) when it holds all of it, else the 1-D range.
//
// The library is not thread-safe: every call here takes one process-wide lock. HDF5's own error
// printing is switched off; failures become RuntimeError (I/O) naming the file, or UserError
// for files that are not what they claim to be.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/tensor.h"
#include "core/dtype.h"

namespace tailor::checkpoint::h5 {

// The most elements a stored tensor (or its global shape) may have: 2^40, far above any model
// Tailor trains and low enough that no size computed from it overflows.
inline constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;

// One tensor's placement (attributes above).
struct Placement {
  Shape global_shape;
  Shape local_shape;
  int shard_dim = -1;
  std::int64_t shard_offset = 0;
  std::int64_t flat_begin = 0, flat_end = 0;  // within the local shard
};

struct DatasetInfo {
  std::string path;   // dataset path in the file ("name" or "group/name")
  DType dtype = DType::kF32;
  Shape dims;         // as stored
  Placement placement;
};

class File {
 public:
  // Creates (truncates) a file for writing.
  [[nodiscard]] static File create(const std::string& path);
  // Opens an existing file read-only; UserError "path: not an HDF5 file" when it is not one.
  [[nodiscard]] static File open(const std::string& path);
  File() = default;
  ~File();
  File(File&& o) noexcept;
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Flushes and closes; RuntimeError "path: cannot write: <the system's reason>" when the data
  // cannot be written (disk full). A write that fails at any step (dataset, attribute, flush)
  // closes the file at once, every HDF5 object released, and throws the same way; the caller
  // removes the unfinished file. The destructor closes without reporting.
  void close();

  // A string / i64 attribute of the root group.
  void set_attr(const std::string& name, const std::string& value);
  void set_attr(const std::string& name, std::int64_t value);
  [[nodiscard]] std::string attr_string(const std::string& name) const;
  [[nodiscard]] std::int64_t attr_int(const std::string& name) const;

  // Writes `data` (host, f32/f64/bf16) as dataset `path` (intermediate groups are created) with
  // the placement attributes. The dataset's shape is placement.local_shape when the range covers
  // the shard, else 1-D.
  void write_tensor(const std::string& path, const backend::Tensor& data, const Placement& placement);

  // Every tensor dataset of the file (any depth), in name order. Before reading any tensor
  // data it refuses (UserError naming the file and dataset) links other than hard links, datasets
  // stored outside the file (external raw storage, virtual datasets), filters other than
  // fletcher32, dims that differ from the `local_shape` attribute (or from the flat range's
  // length for a 1-D range), and placement attributes that do not fit together.
  [[nodiscard]] std::vector<DatasetInfo> list() const;
  // Reads a whole dataset into `out` (host, its dtype and element count must match).
  void read(const std::string& path, const backend::Tensor& out) const;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  explicit File(std::int64_t id, std::string path) : id_(id), path_(std::move(path)) {}
  // With the library lock held: closes, returning why a write failed ("" when none did); throws
  // RuntimeError "path: what: reason" (the file closed) when `failed` or a write has failed.
  std::string close_locked() noexcept;
  void check_written_locked(const std::string& what, bool failed);
  std::int64_t id_ = -1;
  int fd_ = -1;  // a file being written: its descriptor (the guarded driver's failure record)
  std::string path_;
};

}  // namespace tailor::checkpoint::h5
