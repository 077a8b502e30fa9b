// A file mapped read-only into memory (POSIX mmap), owned: unmapped when destroyed.
//
// The tokenized cache is read through these, so a corpus of many GB costs no copy and no
// allocation: pages come from the OS page cache on first touch and are shared by every process
// on the node that maps the same files (the ranks of a job).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>

namespace tailor::data {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The whole file mapped; nullopt when it cannot be opened, read or mapped. An empty file maps
  // to an empty span.
  [[nodiscard]] static std::optional<MappedFile> open(const std::string& path);

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  // The contents as values of T (a trailing partial value is left out; the mapping is
  // page-aligned).
  template <typename T>
  [[nodiscard]] std::span<const T> as() const noexcept {
    return {reinterpret_cast<const T*>(data_), size_ / sizeof(T)};
  }

 private:
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace tailor::data
