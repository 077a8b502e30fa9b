#include "checkpoint/h5.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

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
  Id(hid_t id, Closer closer) : id_(id), close_(closer) {}
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  [[nodiscard]] hid_t get() const noexcept { return id_; }
  [[nodiscard]] bool ok() const noexcept { return id_ >= 0; }
  // Closes now and reports whether the close succeeded (closing a dataset flushes its chunks).
  [[nodiscard]] bool close() noexcept {
    const hid_t id = id_;
    id_ = -1;
    return id < 0 || close_(id) >= 0;
  }

 private:
  hid_t id_;
  Closer close_;
};

// ---- The write driver: HDF5's sec2 driver, made safe for a full disk ---------------------------
//
// HDF5 1.10 cannot recover from a failed write: a flush that fails leaves its metadata cache in
// a state where every later flush fails too ("slist already enabled?"), so the file can never be
// closed, and H5_term_library dereferences the half-destroyed file at process exit (SIGSEGV).
// Files Tailor writes therefore go through a copy of the sec2 driver whose write never fails
// towards HDF5: the first failed write of a file records the system's reason, and from then on
// that file's writes (and its final truncate) are skipped and reported as done. HDF5 stays
// consistent and closes the file normally; File checks the record after every step and throws
// RuntimeError with the reason (the caller removes the unfinished file). Every call here runs
// under the library lock, which also guards the record.

std::map<int, std::string>& write_failures() {  // descriptor -> the system's reason
  static std::map<int, std::string> failures;
  return failures;
}

// HDF5's sec2 driver (its class, as registered). The public API hands out a driver's class only
// through an open file (H5FD_t::cls), so one is opened read-only on /dev/null for the purpose.
const H5FD_class_t& sec2_driver() {
  static const H5FD_class_t sec2 = [] {
    const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    TAILOR_ASSERT(fapl >= 0 && H5Pset_fapl_sec2(fapl) >= 0, "cannot select HDF5's sec2 driver");
    H5FD_t* probe = H5FDopen("/dev/null", H5F_ACC_RDONLY, fapl, HADDR_UNDEF);
    H5Pclose(fapl);
    TAILOR_ASSERT(probe != nullptr && probe->cls != nullptr, "cannot open HDF5's sec2 driver");
    const H5FD_class_t copy = *probe->cls;
    H5FDclose(probe);
    return copy;
  }();
  return sec2;
}

int descriptor_of(H5FD_t* file) {
  void* handle = nullptr;
  if (sec2_driver().get_handle(file, H5P_DEFAULT, &handle) < 0 || handle == nullptr) return -1;
  return *static_cast<int*>(handle);
}

H5FD_t* guarded_open(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  H5FD_t* file = sec2_driver().open(name, flags, fapl, maxaddr);
  if (file != nullptr) write_failures().erase(descriptor_of(file));  // a new file on this fd
  return file;
}

herr_t guarded_write(H5FD_t* file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size,
                     const void* buffer) {
  const int fd = descriptor_of(file);
  if (write_failures().count(fd) > 0) return 0;  // lost already: nothing more reaches the disk
  errno = 0;
  if (sec2_driver().write(file, type, dxpl, addr, size, buffer) >= 0) return 0;
  const int err = errno;
  write_failures()[fd] = err != 0 ? std::strerror(err) : "write failed";
  H5Eclear2(H5E_DEFAULT);
  return 0;
}

herr_t guarded_truncate(H5FD_t* file, hid_t dxpl, hbool_t closing) {
  if (write_failures().count(descriptor_of(file)) > 0) return 0;
  return sec2_driver().truncate(file, dxpl, closing);
}

// A file access property list selecting the guarded driver.
hid_t guarded_fapl() {
  static const hid_t fapl = [] {
    static H5FD_class_t cls = sec2_driver();
    cls.name = "tailor-sec2-guarded";
    cls.terminate = nullptr;  // sec2's own terminate belongs to sec2
    cls.open = guarded_open;
    cls.write = guarded_write;
    cls.truncate = guarded_truncate;
    const hid_t driver = H5FDregister(&cls);
    TAILOR_ASSERT(driver >= 0, "cannot register the guarded HDF5 driver");
    const hid_t p = H5Pcreate(H5P_FILE_ACCESS);
    // Strong close: closing the file after a failure closes the objects still open in it.
    TAILOR_ASSERT(p >= 0 && H5Pset_driver(p, driver, nullptr) >= 0 &&
                      H5Pset_fclose_degree(p, H5F_CLOSE_STRONG) >= 0,
                  "cannot select the guarded HDF5 driver");
    return p;
  }();
  return fapl;
}

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

// False when the attribute cannot be written.
[[nodiscard]] bool write_attr_ints(hid_t obj, const char* name, const std::vector<std::int64_t>& v) {
  const hsize_t n = v.size();
  Id space(n == 0 ? H5Screate(H5S_NULL) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  Id attr(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  return attr.ok() && (n == 0 || H5Awrite(attr.get(), H5T_NATIVE_INT64, v.data()) >= 0) &&
         attr.close();
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

// The product of `dims` when every dim is >= 0 and the product stays within kMaxElements
// (checked before anything multiplies them: no overflow).
std::optional<std::int64_t> bounded_numel(const std::vector<std::int64_t>& dims) {
  std::int64_t n = 1;
  for (std::int64_t d : dims) {
    if (d < 0 || d > kMaxElements) return std::nullopt;
    if (d != 0 && n > kMaxElements / d) return std::nullopt;
    n *= d;
  }
  return n;
}

// The first link that is not a hard link (a soft link, or an external link into another file).
herr_t find_foreign_link(hid_t, const char* name, const H5L_info_t* info, void* data) {
  if (info->type == H5L_TYPE_HARD) return 0;
  *static_cast<std::string*>(data) = name;
  return 1;  // stop
}

// Refuses a dataset whose bytes would come from anywhere but this file (external raw storage,
// a virtual dataset mapping other files) or pass through a filter Tailor does not write, before
// any of its data is read: the manifest's SHA-256 covers this file only.
void check_storage(hid_t ds, const std::string& file, const std::string& name) {
  Id dcpl(H5Dget_create_plist(ds), H5Pclose);
  if (!dcpl.ok()) throw_user_error(file, "dataset {}: unreadable storage properties", name);
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  if (layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED)
    throw_user_error(file, "dataset {}: {} storage is refused (only data inside the file is read)",
                     name, layout == H5D_VIRTUAL ? "virtual" : layout == H5D_COMPACT ? "compact"
                                                                                      : "unknown");
  const int external = H5Pget_external_count(dcpl.get());
  if (external != 0)
    throw_user_error(file, "dataset {}: external raw storage is refused (only data inside the "
                           "file is read)", name);
  const int filters = H5Pget_nfilters(dcpl.get());
  if (filters < 0) throw_user_error(file, "dataset {}: unreadable filter list", name);
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0;
    std::size_t n_values = 0;
    unsigned config = 0;
    char filter_name[64] = {};
    const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &n_values,
                                           nullptr, sizeof filter_name, filter_name, &config);
    if (id != H5Z_FILTER_FLETCHER32)
      throw_user_error(file, "dataset {}: filter {} is refused (Tailor writes only fletcher32)",
                       name, static_cast<int>(id));
  }
}

}  // namespace

File File::create(const std::string& path) {
  std::lock_guard g(lock());
  quiet();
  errno = 0;
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, guarded_fapl());
  if (id < 0)
    throw_runtime_error("{}: cannot create the HDF5 file: {}", path,
                        errno != 0 ? std::strerror(errno) : "unknown reason");
  File f(id, path);
  void* handle = nullptr;
  if (H5Fget_vfd_handle(id, guarded_fapl(), &handle) >= 0 && handle != nullptr)
    f.fd_ = *static_cast<int*>(handle);
  return f;
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
  if (id_ < 0) return;
  std::lock_guard g(lock());
  close_locked();
}

File::File(File&& o) noexcept : id_(o.id_), fd_(o.fd_), path_(std::move(o.path_)) {
  o.id_ = -1;
  o.fd_ = -1;
}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (id_ >= 0) {
      std::lock_guard g(lock());
      close_locked();
    }
    id_ = o.id_;
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.id_ = -1;
    o.fd_ = -1;
  }
  return *this;
}

// Closes the file (the guarded driver lets every close succeed) and returns the reason a write
// failed, "" when none did.
std::string File::close_locked() noexcept {
  if (id_ < 0) return "";
  const herr_t closed = H5Fclose(id_);
  id_ = -1;
  std::string failure;
  if (const auto it = write_failures().find(fd_); fd_ >= 0 && it != write_failures().end()) {
    failure = it->second;
    write_failures().erase(it);
  } else if (closed < 0) {
    failure = "HDF5 could not close the file";
  }
  fd_ = -1;
  return failure;
}

void File::check_written_locked(const std::string& what, bool failed) {
  const auto it = write_failures().find(fd_);
  if (!failed && (fd_ < 0 || it == write_failures().end())) return;
  std::string reason = close_locked();
  if (reason.empty()) reason = "HDF5 call failed";
  throw_runtime_error("{}: {}: {}", path_, what, reason);
}

void File::close() {
  if (id_ < 0) return;
  std::lock_guard g(lock());
  const bool flushed = H5Fflush(id_, H5F_SCOPE_LOCAL) >= 0;
  const std::string failure = close_locked();
  if (!flushed || !failure.empty())
    throw_runtime_error("{}: cannot write: {}", path_, failure.empty() ? "flush failed" : failure);
}

void File::set_attr(const std::string& name, const std::string& value) {
  std::lock_guard g(lock());
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<std::size_t>(1, value.size()));
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(id_, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose);
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  const bool ok = attr.ok() && H5Awrite(attr.get(), type.get(), padded.data()) >= 0 && attr.close();
  check_written_locked("cannot write attribute " + name, !ok);
}

void File::set_attr(const std::string& name, std::int64_t value) {
  std::lock_guard g(lock());
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(id_, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose);
  const bool ok = attr.ok() && H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) >= 0 && attr.close();
  check_written_locked("cannot write attribute " + name, !ok);
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
  errno = 0;
  check_written_locked("cannot create dataset " + path, !ds.ok());
  // Every step is checked, the close too: closing a dataset writes its cached chunks.
  const bool written =
      H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data) >= 0 &&
      write_attr_ints(ds.get(), "global_shape", placement.global_shape.dims()) &&
      write_attr_ints(ds.get(), "local_shape", placement.local_shape.dims()) &&
      write_attr_ints(ds.get(), "shard", {placement.shard_dim, placement.shard_offset}) &&
      write_attr_ints(ds.get(), "flat_range", {placement.flat_begin, placement.flat_end}) &&
      ds.close();
  if (!written) (void)ds.close();
  check_written_locked("cannot write dataset " + path, !written);
}

std::vector<DatasetInfo> File::list() const {
  std::lock_guard g(lock());
  // Only hard links: a soft link could alias a dataset, an external link open another file.
  std::string foreign;
  if (H5Lvisit(id_, H5_INDEX_NAME, H5_ITER_INC, find_foreign_link, &foreign) < 0)
    throw_user_error(path_, "cannot list the links (damaged file?)");
  if (!foreign.empty())
    throw_user_error(path_, "{}: soft and external links are refused (a checkpoint holds its "
                            "datasets itself)", foreign);
  ListContext ctx{&path_, {}};
  if (H5Ovisit2(id_, H5_INDEX_NAME, H5_ITER_INC, visit, &ctx, H5O_INFO_BASIC) < 0)
    throw_user_error(path_, "cannot list the datasets (damaged file?)");
  std::vector<DatasetInfo> out;
  for (const std::string& name : ctx.names) {
    const std::string where = path_ + ": " + name;
    Id ds(H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) throw_user_error(path_, "dataset {} cannot be opened", name);
    check_storage(ds.get(), path_, name);
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
    std::vector<std::int64_t> stored;
    for (hsize_t d : dims)
      stored.push_back(d > static_cast<hsize_t>(kMaxElements) ? -1 : static_cast<std::int64_t>(d));
    if (!bounded_numel(stored))
      throw_user_error(path_, "dataset {}: more than 2^40 elements (refused)", name);
    info.dims = Shape::of(stored);
    Placement& p = info.placement;
    const auto gs = read_attr_ints(ds.get(), "global_shape", where);
    const auto ls = read_attr_ints(ds.get(), "local_shape", where);
    const auto sh = read_attr_ints(ds.get(), "shard", where);
    const auto fr = read_attr_ints(ds.get(), "flat_range", where);
    const auto valid_dims = [](const std::vector<std::int64_t>& v) {
      return !v.empty() && v.size() <= static_cast<std::size_t>(Shape::kMaxRank) &&
             bounded_numel(v).has_value();
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
    const bool dim_ok = sh[0] >= -1 && sh[0] < p.local_shape.rank();
    const bool range_ok = p.flat_begin >= 0 && p.flat_begin < p.flat_end &&
                          p.flat_end <= p.local_shape.numel() &&
                          p.flat_end - p.flat_begin == info.dims.numel();
    bool slab_ok = dim_ok;
    for (int d = 0; slab_ok && d < p.local_shape.rank(); ++d) {
      const std::int64_t lo = d == p.shard_dim ? p.shard_offset : 0;
      slab_ok = lo >= 0 && lo <= p.global_shape[d] && p.local_shape[d] <= p.global_shape[d] - lo;
    }
    if (!range_ok || !slab_ok)
      throw_user_error(path_, "dataset {}: placement does not fit its shape", name);
    // The dataset is the whole shard with the shard's own dims, or a 1-D range of it: a
    // transposed or reshaped dataset under the original attributes is refused.
    const bool whole = p.flat_begin == 0 && p.flat_end == p.local_shape.numel();
    if (whole ? !(info.dims == p.local_shape) : info.dims.rank() != 1)
      throw_user_error(path_, "dataset {}: stored as {}, its local_shape attribute says {}", name,
                       info.dims.str(), whole ? p.local_shape.str() : "a 1-D range");
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
