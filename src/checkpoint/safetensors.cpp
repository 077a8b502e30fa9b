// SafetensorsFile (mmap + validated header) and the atomic writer. See safetensors.h.
#include "checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "checkpoint/f16.h"
#include "core/error.h"

namespace tailor::checkpoint {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// Closes a POSIX file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  // Closes now, reporting the error (close can report a failed delayed write).
  int close() noexcept {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

void write_all(int fd, const void* data, std::size_t bytes, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_runtime_error("{}: cannot write: {}", path, errno_text(errno));
    }
    p += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

std::string json_string(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

// The header JSON, compact and in the order given, as HF writes it: metadata first, then
// {"dtype":"F32","shape":[2,3],"data_offsets":[0,24]} per tensor. Padded with spaces so that
// 8 + size is a multiple of 8.
std::string header_text(const std::string& path, std::span<const SafetensorsWriteTensor> tensors,
                        const std::map<std::string, std::string>& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h += ',';
      first = false;
      try {
        h += json_string(k) + ":" + json_string(v);
      } catch (const nlohmann::json::type_error&) {
        throw UserError(path, fmt::format("metadata '{}': not valid UTF-8", printable_name(k)));
      }
    }
    h += '}';
  }
  std::unordered_set<std::string_view> seen;
  std::uint64_t offset = 0;
  for (const SafetensorsWriteTensor& t : tensors) {
    if (const std::string problem = tensor_name_problem(t.name); !problem.empty())
      throw UserError(path, fmt::format("tensor '{}': {}", printable_name(t.name), problem));
    if (t.name == "__metadata__" || !seen.insert(t.name).second)
      throw UserError(path, fmt::format("tensor '{}': name used twice", printable_name(t.name)));
    TAILOR_ASSERT(t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16,
                  "tensor '{}': cannot write dtype {}", t.name, dtype_name(t.dtype));
    TAILOR_ASSERT(t.shape.size() <= static_cast<std::size_t>(kMaxTensorRank), "tensor '{}': rank {}",
                  t.name, t.shape.size());
    std::uint64_t numel = 1;
    for (std::int64_t d : t.shape) {
      TAILOR_ASSERT(d >= 0, "tensor '{}': negative dimension", t.name);
      numel *= static_cast<std::uint64_t>(d);
    }
    const std::uint64_t bytes = numel * dtype_size(t.dtype);
    TAILOR_ASSERT(bytes == 0 || t.data != nullptr, "tensor '{}': no data", t.name);
    if (h.size() > 1) h += ',';
    h += fmt::format("{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                     json_string(t.name), safetensors_dtype_name(t.dtype), fmt::join(t.shape, ","),
                     offset, offset + bytes);
    offset += bytes;
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

}  // namespace

// ---- reading -----------------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(std::string path) : path_(std::move(path)) {
  // O_NONBLOCK: opening a FIFO must not hang; fstat below refuses anything but a regular file.
  Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) throw UserError(path_, fmt::format("cannot open: {}", errno_text(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw UserError(path_, fmt::format("cannot stat: {}", errno_text(errno)));
  if (!S_ISREG(st.st_mode)) throw UserError(path_, "not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) throw_runtime_error("{}: cannot map: {}", path_, errno_text(errno));
    map_ = static_cast<const std::byte*>(p);
    map_bytes_ = size;
  }
  try {
    header_ = parse_header(std::span<const std::byte>(map_, map_bytes_), path_);
  } catch (...) {
    release();
    throw;
  }
  index_.reserve(header_.tensors.size());
  for (std::size_t i = 0; i < header_.tensors.size(); ++i) index_.emplace(header_.tensors[i].name, i);
}

SafetensorsFile::~SafetensorsFile() { release(); }

void SafetensorsFile::release() noexcept {
  if (map_ != nullptr) ::munmap(const_cast<std::byte*>(map_), map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      header_(std::move(other.header_)),
      index_(std::move(other.index_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    header_ = std::move(other.header_);
    index_ = std::move(other.index_);
  }
  return *this;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(header_.tensors.size());
  for (const SafetensorsTensorInfo& t : header_.tensors) out.push_back(t.name);
  return out;
}

const SafetensorsTensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end())
    throw UserError(path_, fmt::format("tensor '{}': not in this file", printable_name(name)));
  return header_.tensors[it->second];
}

std::span<const std::byte> SafetensorsFile::raw(const std::string& name) const {
  const SafetensorsTensorInfo& t = info(name);
  return {map_ + header_.data_start + t.data_begin, static_cast<std::size_t>(t.bytes())};
}

template <typename T>
void SafetensorsFile::read_as(const std::string& name, std::span<T> out) const {
  const SafetensorsTensorInfo& t = info(name);
  if (!t.element)
    throw UserError(path_, fmt::format("tensor '{}': dtype {} is not supported (Tailor reads F32, "
                                       "F16 and BF16)", printable_name(name), t.dtype));
  if (out.size() != static_cast<std::size_t>(t.numel))
    throw UserError(path_, fmt::format("tensor '{}': has {} elements {}, expected {}",
                                       printable_name(name), t.numel, shape_string(t.shape),
                                       out.size()));
  const std::byte* src = map_ + header_.data_start + t.data_begin;
  const std::size_t n = out.size();
  switch (*t.element) {
    case DType::kF32:
      if constexpr (std::is_same_v<T, float>) {
        if (n > 0) std::memcpy(out.data(), src, n * sizeof(float));
      } else {
        for (std::size_t i = 0; i < n; ++i) {
          float v;
          std::memcpy(&v, src + 4 * i, 4);
          out[i] = static_cast<T>(v);
        }
      }
      return;
    case DType::kF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        out[i] = static_cast<T>(f16_to_float(bits));
      }
      return;
    case DType::kBF16:
      for (std::size_t i = 0; i < n; ++i) {
        BF16 b;
        std::memcpy(&b.bits, src + 2 * i, 2);
        out[i] = static_cast<T>(bf16_to_float(b));
      }
      return;
    case DType::kF64:
    case DType::kI32:
      break;
  }
  TAILOR_ASSERT(false, "tensor '{}': unexpected element type", name);
}

void SafetensorsFile::read_f32(const std::string& name, std::span<float> out) const {
  read_as(name, out);
}
void SafetensorsFile::read_f64(const std::string& name, std::span<double> out) const {
  read_as(name, out);
}

// ---- writing -----------------------------------------------------------------------------------

std::vector<std::byte> encode_f32(std::span<const float> values, DType dtype) {
  TAILOR_ASSERT(dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16,
                "cannot encode f32 as {}", dtype_name(dtype));
  std::vector<std::byte> out(values.size() * dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(out.data() + 4 * i, &values[i], 4);
    } else {
      const std::uint16_t bits =
          dtype == DType::kF16 ? float_to_f16(values[i]) : float_to_bf16(values[i]).bits;
      std::memcpy(out.data() + 2 * i, &bits, 2);
    }
  }
  return out;
}

void write_safetensors(const std::string& path, std::span<const SafetensorsWriteTensor> tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string header = header_text(path, tensors, metadata);
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw_runtime_error("{}: cannot create: {}", tmp, errno_text(errno));
  try {
    std::array<unsigned char, 8> length{};
    for (std::size_t i = 0; i < 8; ++i)
      length[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(header.size()) >> (8 * i));
    write_all(fd.get(), length.data(), length.size(), tmp);
    write_all(fd.get(), header.data(), header.size(), tmp);
    for (const SafetensorsWriteTensor& t : tensors) {
      std::size_t bytes = dtype_size(t.dtype);
      for (std::int64_t d : t.shape) bytes *= static_cast<std::size_t>(d);
      if (bytes > 0) write_all(fd.get(), t.data, bytes, tmp);
    }
    if (::fsync(fd.get()) != 0) throw_runtime_error("{}: cannot sync: {}", tmp, errno_text(errno));
    if (fd.close() != 0) throw_runtime_error("{}: cannot close: {}", tmp, errno_text(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw_runtime_error("{}: cannot rename to {}: {}", tmp, path, errno_text(errno));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0 || ::fsync(dfd.get()) != 0)
    throw_runtime_error("{}: cannot sync directory: {}", dir, errno_text(errno));
}

}  // namespace tailor::checkpoint
