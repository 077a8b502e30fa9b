// The safetensors weights of a Hugging Face model directory, as one set of named tensors.
//
// A directory holds either `model.safetensors` (preferred when both exist, as transformers does) or
// `model.safetensors.index.json` whose `weight_map` maps each tensor name to a shard file. Shard
// names must be bare file names in the directory (no '/', '\', "." or "..", not empty): an index
// never reaches outside the directory by name. A shard may be a symlink (the Hub cache links
// snapshots/<rev>/x.safetensors to blobs/<sha>): it is followed, as any file would be.
//
// Invariants after construction: every shard is opened (mapped) once and validated; the index and
// the shards agree exactly: each tensor is in exactly one shard, the one the index names, and every
// tensor of every shard is in the index. Disagreements are UserErrors naming both files.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "checkpoint/safetensors.h"

namespace tailor::checkpoint {

inline constexpr const char* kSafetensorsFile = "model.safetensors";
inline constexpr const char* kSafetensorsIndexFile = "model.safetensors.index.json";

class ShardedSafetensors {
 public:
  explicit ShardedSafetensors(std::string dir);

  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }
  // File order for a single file; the index's (sorted) order for a sharded model.
  [[nodiscard]] const std::vector<std::string>& names() const noexcept { return names_; }
  [[nodiscard]] bool has(const std::string& name) const { return owner_.contains(name); }
  // The path of the file holding `name` (dir/shard).
  [[nodiscard]] const std::string& file_of(const std::string& name) const { return file(name).path(); }
  [[nodiscard]] const SafetensorsTensorInfo& info(const std::string& name) const {
    return file(name).info(name);
  }
  [[nodiscard]] std::span<const std::byte> raw(const std::string& name) const {
    return file(name).raw(name);
  }
  void read_f32(const std::string& name, std::span<float> out) const { file(name).read_f32(name, out); }
  void read_f64(const std::string& name, std::span<double> out) const { file(name).read_f64(name, out); }
  [[nodiscard]] std::size_t file_count() const noexcept { return files_.size(); }

 private:
  // UserError(dir, "tensor 'x': not in the model") for an unknown name.
  [[nodiscard]] const SafetensorsFile& file(const std::string& name) const;
  void open_index(const std::string& index_path);

  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::size_t> owner_;  // tensor -> files_ index
};

}  // namespace tailor::checkpoint
