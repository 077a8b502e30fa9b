// Reading and writing one safetensors file (the Hugging Face weight format).
//
// SafetensorsFile maps the file read-only (the descriptor is closed right after mmap; the mapping
// stays valid until the object dies) and validates its header completely on open
// (safetensors_header.h), so every later access is in bounds. Data may be unaligned: values are
// copied out with memcpy, never read through a cast pointer. The host is little-endian, as the format.
// If another process truncates the file while it is mapped, reads fault (SIGBUS): files under a
// model directory are treated as immutable, as the Hub cache treats them.
//
// write_safetensors writes tensors in the order given, each right after the previous one (as HF's
// reader requires: no gaps), after a compact JSON header padded with spaces to a multiple of 8 bytes,
// so the data section starts 8-aligned; given the same tensors in the same order its bytes equal
// those of HF's writer. HF orders tensors by element size (largest first), then name, which keeps
// each tensor naturally aligned: callers mixing dtypes should do the same. The file appears
// atomically (tmp file, fsync, rename, fsync of the directory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "checkpoint/safetensors_header.h"
#include "core/dtype.h"

namespace tailor::checkpoint {

class SafetensorsFile {
 public:
  // UserError(path, ...) when the file cannot be opened or its header is invalid.
  explicit SafetensorsFile(std::string path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::vector<std::string> names() const;  // in file order
  [[nodiscard]] bool has(const std::string& name) const { return index_.contains(name); }
  [[nodiscard]] const std::vector<SafetensorsTensorInfo>& tensors() const noexcept {
    return header_.tensors;
  }
  // UserError(path, "tensor 'x': not in this file") for an unknown name.
  [[nodiscard]] const SafetensorsTensorInfo& info(const std::string& name) const;
  // The tensor's bytes as stored (little-endian, any alignment); valid while this object lives.
  [[nodiscard]] std::span<const std::byte> raw(const std::string& name) const;
  // Converts F32 / F16 / BF16 into `out`, which must hold exactly numel values; any other dtype,
  // or another element count, is a UserError naming the file and the tensor.
  void read_f32(const std::string& name, std::span<float> out) const;
  void read_f64(const std::string& name, std::span<double> out) const;
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept {
    return header_.metadata;
  }

 private:
  void release() noexcept;
  template <typename T>
  void read_as(const std::string& name, std::span<T> out) const;

  std::string path_;
  const std::byte* map_ = nullptr;  // the whole file, read-only
  std::size_t map_bytes_ = 0;
  SafetensorsHeader header_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> header_.tensors index
};

// One tensor to write: `data` holds numel * dtype_size(dtype) bytes (may be null when numel is 0).
struct SafetensorsWriteTensor {
  std::string name;
  DType dtype = DType::kF32;  // F32, F16 or BF16
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
};

// Writes `path` atomically. Invalid or duplicate names, or metadata that is not UTF-8, are a
// UserError(path, ...); I/O failures a RuntimeError.
void write_safetensors(const std::string& path, std::span<const SafetensorsWriteTensor> tensors,
                       const std::map<std::string, std::string>& metadata = {});

// f32 values as the little-endian bytes of `dtype` (F32, F16 or BF16; rounding to nearest even),
// ready to be a SafetensorsWriteTensor's data.
[[nodiscard]] std::vector<std::byte> encode_f32(std::span<const float> values, DType dtype);

}  // namespace tailor::checkpoint
