#include "checkpoint/h5.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "core/error.h"

namespace tailor::checkpoint::h5 {
namespace {

std::mutex& lock() {
  static std::mutex m;
  return m;
}

// Silences HDF5's stderr error stacks once (errors are reported by return codes here).
void quiet() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// Closes an HDF5 id with the matching function when it goes out of scope.
class Id {
 public:
  using Closer = herr_t (*)(hid_t);
  Id(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  [[nodiscard]] hid_t get() const noexcept { return id_; }
  [[nodiscard]] bool ok() const noexcept { return id_ >= 0; }

 private:
  hid_t id_;
  Closer close_;
};

// bf16 as an HDF5 float type (sign 15, exponent 7..14, mantissa 0..6), so h5dump prints values.
hid_t bf16_type() {
  static const hid_t t = [] {
    const hid_t x = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(x, 15, 7, 8, 0, 7);
    H5Tset_offset(x, 0);
    H5Tset_precision(x, 16);
    H5Tset_size(x, 2);
    H5Tset_ebias(x, 127);
    return x;
  }();
  return t;
}

hid_t file_type(DType t) {
  switch (t) {
    case DType::kF32: return H5T_IEEE_F32LE;
    case DType::kF64: return H5T_IEEE_F64LE;
    case DType::kBF16: return bf16_type();
    default: break;
  }
  TAILOR_ASSERT(false, "checkpoint tensors are f32, f64 or bf16, not {}", dtype_name(t));
  return -1;
}

// The dtype of a stored float type, or nullopt-like kI32 for anything else.
DType dtype_of(hid_t type) {
  if (H5Tget_class(type) != H5T_FLOAT) return DType::kI32;
  const std::size_t size = H5Tget_size(type);
  if (size == 8) return DType::kF64;
  if (size == 4) return DType::kF32;
  if (size == 2) {
    std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
    if (esize == 8 && msize == 7) return DType::kBF16;
  }
  return DType::kI32;
}

void write_attr_ints(hid_t obj, const char* name, const std::vector<std::int64_t>& v,
                     const std::string& file) {
  const hsize_t n = v.size();
  Id space(n == 0 ? H5Screate(H5S_NULL) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  Id attr(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || (n > 0 && H5Awrite(attr.get(), H5T_NATIVE_INT64, v.data()) < 0))
    throw_runtime_error("{}: cannot write attribute {}", file, name);
}

std::vector<std::int64_t> read_attr_ints(hid_t obj, const char* name, const std::string& where) {
  if (H5Aexists(obj, name) <= 0) throw_user_error(where, "attribute {} is missing", name);
  Id attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  Id space(H5Aget_space(attr.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (!attr.ok() || n < 0 || n > 64) throw_user_error(where, "attribute {} is unreadable", name);
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  if (n > 0 && H5Aread(attr.get(), H5T_NATIVE_INT64, v.data()) < 0)
    throw_user_error(where, "attribute {} is unreadable", name);
  return v;
}

// Chunk dimensions of about 1 MiB: whole trailing dimensions, a block of leading rows.
std::vector<hsize_t> chunk_dims(const std::vector<hsize_t>& dims, std::size_t elem_bytes) {
  std::vector<hsize_t> c = dims;
  const hsize_t target = (1u << 20) / elem_bytes;
  hsize_t inner = 1;
  for (std::size_t i = 1; i < c.size(); ++i) inner *= c[i];
  if (c.size() == 1 || inner >= target) {
    // One dimension, or rows already large: chunk the last dimension too.
    for (std::size_t i = 0; i + 1 < c.size(); ++i) c[i] = 1;
    c.back() = std::max<hsize_t>(1, std::min<hsize_t>(c.back(), target));
  } else {
    c[0] = std::max<hsize_t>(1, std::min<hsize_t>(c[0], target / inner));
  }
  return c;
}

struct ListContext {
  const std::string* file;
  std::vector<std::string> names;
};

herr_t visit(hid_t, const char* name, const H5O_info_t* info, void* data) {
  auto* ctx = static_cast<ListContext*>(data);
  if (info->type == H5O_TYPE_DATASET) ctx->names.emplace_back(name);
  return 0;
}

}  // namespace

File File::create(const std::string& path) {
  std::lock_guard g(lock());
  quiet();
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) throw_runtime_error("{}: cannot create the HDF5 file", path);
  return File(id, path);
}

File File::open(const std::string& path) {
  std::lock_guard g(lock());
  quiet();
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw_user_error(path, "not a readable HDF5 file (truncated or damaged?)");
  // HDF5 reads a file in small scattered pieces, which defeats the kernel's read-ahead: ask for
  // the whole file up front (a cold load then runs near the disk's sequential speed).
  if (const int fd = ::open(path.c_str(), O_RDONLY); fd >= 0) {
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    ::close(fd);
  }
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw_user_error(path, "cannot open as HDF5 (truncated or damaged?)");
  return File(id, path);
}

File::~File() {
  if (id_ >= 0) {
    std::lock_guard g(lock());
    H5Fclose(id_);
  }
}

File::File(File&& o) noexcept : id_(o.id_), path_(std::move(o.path_)) { o.id_ = -1; }

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (id_ >= 0) {
      std::lock_guard g(lock());
      H5Fclose(id_);
    }
    id_ = o.id_;
    path_ = std::move(o.path_);
    o.id_ = -1;
  }
  return *this;
}

void File::close() {
  if (id_ < 0) return;
  std::lock_guard g(lock());
  const herr_t flushed = H5Fflush(id_, H5F_SCOPE_LOCAL);
  const herr_t closed = H5Fclose(id_);
  id_ = -1;
  if (flushed < 0 || closed < 0) throw_runtime_error("{}: cannot write (disk full?)", path_);
}

void File::set_attr(const std::string& name, const std::string& value) {
  std::lock_guard g(lock());
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<std::size_t>(1, value.size()));
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(id_, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose);
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  if (!attr.ok() || H5Awrite(attr.get(), type.get(), padded.data()) < 0)
    throw_runtime_error("{}: cannot write attribute {}", path_, name);
}

void File::set_attr(const std::string& name, std::int64_t value) {
  std::lock_guard g(lock());
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(id_, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    throw_runtime_error("{}: cannot write attribute {}", path_, name);
}

std::string File::attr_string(const std::string& name) const {
  std::lock_guard g(lock());
  if (H5Aexists(id_, name.c_str()) <= 0) throw_user_error(path_, "attribute {} is missing", name);
  Id attr(H5Aopen(id_, name.c_str(), H5P_DEFAULT), H5Aclose);
  Id type(H5Aget_type(attr.get()), H5Tclose);
  if (!type.ok() || H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0)
    throw_user_error(path_, "attribute {} is not a string", name);
  std::string s(H5Tget_size(type.get()), '\0');
  if (H5Aread(attr.get(), type.get(), s.data()) < 0)
    throw_user_error(path_, "attribute {} is unreadable", name);
  s.resize(s.find('\0') == std::string::npos ? s.size() : s.find('\0'));
  return s;
}

std::int64_t File::attr_int(const std::string& name) const {
  std::lock_guard g(lock());
  if (H5Aexists(id_, name.c_str()) <= 0) throw_user_error(path_, "attribute {} is missing", name);
  Id attr(H5Aopen(id_, name.c_str(), H5P_DEFAULT), H5Aclose);
  std::int64_t v = 0;
  if (!attr.ok() || H5Aread(attr.get(), H5T_NATIVE_INT64, &v) < 0)
    throw_user_error(path_, "attribute {} is unreadable", name);
  return v;
}

void File::write_tensor(const std::string& path, const backend::Tensor& data,
                        const Placement& placement) {
  std::lock_guard g(lock());
  const std::int64_t n = placement.flat_end - placement.flat_begin;
  TAILOR_ASSERT(n == data.numel() && n > 0, "{}: {} elements for range [{}, {})", path,
                data.numel(), placement.flat_begin, placement.flat_end);
  const bool whole = n == placement.local_shape.numel();
  std::vector<hsize_t> dims;
  if (whole) {
    for (std::int64_t d : placement.local_shape.dims()) dims.push_back(static_cast<hsize_t>(d));
  } else {
    dims.push_back(static_cast<hsize_t>(n));
  }
  const hid_t type = file_type(data.dtype);
  Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  const std::vector<hsize_t> chunk = chunk_dims(dims, dtype_size(data.dtype));
  H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
  H5Pset_fletcher32(dcpl.get());
  H5Pset_obj_track_times(dcpl.get(), 0);
  Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Id ds(H5Dcreate2(id_, path.c_str(), type, space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
        H5Dclose);
  if (!ds.ok()) throw_runtime_error("{}: cannot create dataset {}", path_, path);
  if (H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data) < 0)
    throw_runtime_error("{}: cannot write dataset {} (disk full?)", path_, path);
  write_attr_ints(ds.get(), "global_shape", placement.global_shape.dims(), path_);
  write_attr_ints(ds.get(), "local_shape", placement.local_shape.dims(), path_);
  write_attr_ints(ds.get(), "shard", {placement.shard_dim, placement.shard_offset}, path_);
  write_attr_ints(ds.get(), "flat_range", {placement.flat_begin, placement.flat_end}, path_);
}

std::vector<DatasetInfo> File::list() const {
  std::lock_guard g(lock());
  ListContext ctx{&path_, {}};
  if (H5Ovisit2(id_, H5_INDEX_NAME, H5_ITER_INC, visit, &ctx, H5O_INFO_BASIC) < 0)
    throw_user_error(path_, "cannot list the datasets (damaged file?)");
  std::vector<DatasetInfo> out;
  for (const std::string& name : ctx.names) {
    const std::string where = path_ + ": " + name;
    Id ds(H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) throw_user_error(path_, "dataset {} cannot be opened", name);
    DatasetInfo info;
    info.path = name;
    Id type(H5Dget_type(ds.get()), H5Tclose);
    info.dtype = dtype_of(type.get());
    if (info.dtype == DType::kI32) throw_user_error(path_, "dataset {}: not a float tensor", name);
    Id space(H5Dget_space(ds.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 1 || rank > Shape::kMaxRank) throw_user_error(path_, "dataset {}: rank {}", name, rank);
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    info.dims = Shape::of(dims);
    Placement& p = info.placement;
    const auto gs = read_attr_ints(ds.get(), "global_shape", where);
    const auto ls = read_attr_ints(ds.get(), "local_shape", where);
    const auto sh = read_attr_ints(ds.get(), "shard", where);
    const auto fr = read_attr_ints(ds.get(), "flat_range", where);
    const auto valid_dims = [](const std::vector<std::int64_t>& v) {
      return !v.empty() && v.size() <= static_cast<std::size_t>(Shape::kMaxRank) &&
             std::all_of(v.begin(), v.end(), [](std::int64_t d) { return d >= 0; });
    };
    if (!valid_dims(gs) || !valid_dims(ls) || gs.size() != ls.size() || sh.size() != 2 ||
        fr.size() != 2)
      throw_user_error(path_, "dataset {}: malformed placement attributes", name);
    p.global_shape = Shape::of(gs);
    p.local_shape = Shape::of(ls);
    p.shard_dim = static_cast<int>(sh[0]);
    p.shard_offset = sh[1];
    p.flat_begin = fr[0];
    p.flat_end = fr[1];
    const bool dim_ok = p.shard_dim >= -1 && p.shard_dim < p.local_shape.rank();
    const bool range_ok = p.flat_begin >= 0 && p.flat_begin < p.flat_end &&
                          p.flat_end <= p.local_shape.numel() &&
                          p.flat_end - p.flat_begin == info.dims.numel();
    bool slab_ok = dim_ok;
    for (int d = 0; slab_ok && d < p.local_shape.rank(); ++d) {
      const std::int64_t lo = d == p.shard_dim ? p.shard_offset : 0;
      slab_ok = lo >= 0 && lo + p.local_shape[d] <= p.global_shape[d];
    }
    if (!range_ok || !slab_ok)
      throw_user_error(path_, "dataset {}: placement does not fit its shape", name);
    out.push_back(std::move(info));
  }
  return out;
}

void File::read(const std::string& path, const backend::Tensor& out) const {
  std::lock_guard g(lock());
  Id ds(H5Dopen2(id_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) throw_user_error(path_, "dataset {} is missing", path);
  Id space(H5Dget_space(ds.get()), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != out.numel())
    throw_user_error(path_, "dataset {} has {} elements, expected {}", path,
                     H5Sget_simple_extent_npoints(space.get()), out.numel());
  if (H5Dread(ds.get(), file_type(out.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data) < 0)
    throw_user_error(path_, "dataset {} cannot be read (checksum mismatch: damaged file)", path);
}

}  // namespace tailor::checkpoint::h5
