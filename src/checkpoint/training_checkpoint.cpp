#include "checkpoint/training_checkpoint.h"
#include "core/environment.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <chrono>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/tensor.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/json_reader.h"
#include "core/sha256.h"

namespace tailor::checkpoint {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) throw_runtime_error("{}: cannot open to sync: {}", path, std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw_runtime_error("{}: fsync failed: {}", path, std::strerror(err));
}

void write_text_synced(const std::string& path, const std::string& text) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    errno = 0;
    f << text;
    f.close();  // the data reaches the file here: a full disk shows now
    if (!f)
      throw_runtime_error("{}: cannot write: {}", path,
                          errno != 0 ? std::strerror(errno) : "disk full?");
  }
  fsync_path(path, false);
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_user_error(path, "cannot read");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string step_name(std::int64_t step) { return "step_" + std::to_string(step); }

// step_<N> -> N; nullopt for other names (step_<N>.tmp, latest, ...).
std::optional<std::int64_t> parse_step_dir(const std::string& name) {
  if (name.rfind("step_", 0) != 0 || name.size() == 5) return std::nullopt;
  std::int64_t v = 0;
  for (std::size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + (name[i] - '0');
    if (v > kMaxCheckpointStep) return std::nullopt;  // not a step Tailor writes (no overflow)
  }
  return v;
}

bool bare_file_name(const std::string& n) {
  return !n.empty() && n.size() < 256 && n.find('/') == std::string::npos &&
         n.find('\\') == std::string::npos && n.front() != '.' && n.find('\0') == std::string::npos;
}

ManifestFile describe_file(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  return {name, static_cast<std::uint64_t>(fs::file_size(path)), sha256_file(path)};
}

// Writes one HDF5 file of pieces with its root attributes, then fsyncs it.
// Writes one HDF5 file of pieces with its root attributes (into the page cache; the background
// part of the save fsyncs and hashes it).
void write_h5(const std::string& path, const std::vector<TensorPiece>& pieces,
              const std::vector<std::pair<std::string, std::int64_t>>& attrs,
              const std::string& kind, int rank) {
  h5::File f = h5::File::create(path);
  f.set_attr("format", std::string("tailor-checkpoint"));
  f.set_attr("kind", kind);
  for (const auto& [k, v] : attrs) f.set_attr(k, v);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (i == pieces.size() / 2) {
      fault_point("shard", rank);
      if (env::get("TAILOR_FAULT_SAVE") == "enospc:" + std::to_string(rank))
        throw_runtime_error("{}: cannot write dataset {}: No space left on device", path,
                            pieces[i].name);
    }
    f.write_tensor(pieces[i].name, pieces[i].data, pieces[i].placement);
  }
  f.close();
}

json manifest_to_json(const Manifest& m) {
  json files = json::array();
  for (const ManifestFile& f : m.files)
    files.push_back({{"name", f.name}, {"bytes", f.bytes}, {"sha256", f.sha256}});
  return {{"format", "tailor-checkpoint"},
          {"format_version", m.format_version},
          {"step", m.step},
          {"layout", {{"tensor", m.tensor}, {"data", m.data}, {"world", m.world}, {"zero", m.zero}}},
          {"dtype", m.dtype},
          {"optimizer", {{"name", m.optimizer}, {"steps", m.optimizer_steps}}},
          {"config", {{"file", "config.yaml"}, {"sha256", m.config_sha256}}},
          {"determinism", m.determinism},
          {"peft", {{"method", m.peft_method}, {"base_model", m.base_model},
                    {"base_identity", m.base_identity}}},
          {"data", {{"fingerprint", m.data_fingerprint}}},
          {"files", files}};
}

json rank_state_to_json(const RankState& s) {
  json j = {{"rank", s.rank},
            {"tp_rank", s.tp_rank},
            {"dp_rank", s.dp_rank},
            {"step", s.step},
            {"data_cursor", s.data_cursor},
            {"skipped_steps", s.skipped_steps},
            {"consecutive_skips", s.consecutive_skips},
            {"rng", {{"generator", "philox4x32-10"}, {"seed", s.seed}}}};
  if (s.best_step > 0)  // checkpoint.keep_best (absent from runs without it)
    j["best"] = {{"step", s.best_step},
                 {"metric", s.best_metric},
                 {"value", s.best_value},
                 {"evals_since", s.evals_since_best}};
  return j;
}

// Points checkpoints/<link> at step directory `name`, atomically (a new link renamed over it).
void replace_link(const std::string& checkpoints_dir, const std::string& link,
                  const std::string& name) {
  std::error_code ec;
  const std::string link_tmp = checkpoints_dir + "/." + link + ".tmp";
  fs::remove(link_tmp, ec);
  fs::create_directory_symlink(name, link_tmp, ec);
  if (ec) throw_runtime_error("{}: cannot create: {}", link_tmp, ec.message());
  fs::rename(link_tmp, checkpoints_dir + "/" + link, ec);
  if (ec) throw_runtime_error("{}/{}: cannot replace: {}", checkpoints_dir, link, ec.message());
  fsync_path(checkpoints_dir, true);
}

// The first element of host tensor t that is NaN or infinite (or negative, with non_negative),
// with its value.
std::optional<std::pair<std::int64_t, double>> first_bad_value(const backend::Tensor& t,
                                                               bool non_negative) {
  const auto bad = [&](double x) { return !std::isfinite(x) || (non_negative && x < 0.0); };
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    double x = 0.0;
    switch (t.dtype) {
      case DType::kF32: x = static_cast<const float*>(t.data)[i]; break;
      case DType::kF64: x = static_cast<const double*>(t.data)[i]; break;
      case DType::kBF16: x = bf16_to_float(static_cast<const BF16*>(t.data)[i]); break;
      default: return std::nullopt;
    }
    if (bad(x)) return std::make_pair(i, x);
  }
  return std::nullopt;
}

// Elements of target placement pt's flat range whose global index lies inside `stored` (the
// stored tensor's global shape): what the checkpoint must supply.
std::int64_t covered_elements(const h5::Placement& pt, const Shape& stored) {
  const int r = pt.local_shape.rank();
  const std::int64_t cols = pt.local_shape[r - 1];
  const auto off = [&](int d) { return pt.shard_dim == d ? pt.shard_offset : 0; };
  std::int64_t n = 0;
  for (std::int64_t row = pt.flat_begin / cols; row * cols < pt.flat_end; ++row) {
    std::int64_t rem = row;
    bool inside = true;
    for (int d = r - 2; d >= 0; --d) {
      const std::int64_t i = rem % pt.local_shape[d];
      rem /= pt.local_shape[d];
      if (i + off(d) >= stored[d]) inside = false;
    }
    if (!inside) continue;
    const std::int64_t c1 = std::min(cols, stored[r - 1] - off(r - 1));
    const std::int64_t lo = std::max(pt.flat_begin, row * cols);
    const std::int64_t hi = std::min(pt.flat_end, row * cols + c1);
    n += std::max<std::int64_t>(0, hi - lo);
  }
  return n;
}

}  // namespace

void fault_point(const char* point, int rank) {
  std::optional<std::string> e = env::get("TAILOR_FAULT_SAVE");
  if (!e) return;
  std::string& spec = *e;
  int target = 0;
  if (const auto colon = spec.find(':'); colon != std::string::npos) {
    target = std::atoi(spec.c_str() + colon + 1);
    spec.resize(colon);
  }
  if (spec == point && target == rank) {
    log::warn("TAILOR_FAULT_SAVE: killing rank {} at save point '{}'", rank, point);
    std::raise(SIGKILL);
  }
}

std::int64_t copy_overlap(const h5::Placement& ps, const void* src, const h5::Placement& pt,
                          void* dst, std::size_t elem_bytes) {
  const int r = ps.local_shape.rank();
  TAILOR_ASSERT(r == pt.local_shape.rank() && r >= 1, "rank {} vs {}", r, pt.local_shape.rank());
  const std::int64_t ls = ps.local_shape[r - 1], lt = pt.local_shape[r - 1];
  const auto off = [](const h5::Placement& p, int d) { return p.shard_dim == d ? p.shard_offset : 0; };
  const std::int64_t shift = off(ps, r - 1) - off(pt, r - 1);  // target col = source col + shift
  const auto* s = static_cast<const char*>(src);
  auto* d = static_cast<char*>(dst);
  std::int64_t copied = 0;
  for (std::int64_t row = ps.flat_begin / ls; row * ls < ps.flat_end; ++row) {
    std::int64_t rem = row, trow = 0, stride = 1;
    bool inside = true;
    for (int k = r - 2; k >= 0 && inside; --k) {
      const std::int64_t i = rem % ps.local_shape[k];
      rem /= ps.local_shape[k];
      const std::int64_t t = i + off(ps, k) - off(pt, k);
      inside = t >= 0 && t < pt.local_shape[k];
      trow += t * stride;
      stride *= pt.local_shape[k];
    }
    if (!inside) continue;
    const std::int64_t c0 = std::max(ps.flat_begin, row * ls) - row * ls;
    const std::int64_t c1 = std::min(ps.flat_end, (row + 1) * ls) - row * ls;
    const std::int64_t t0 = std::max<std::int64_t>(c0 + shift, 0);
    const std::int64_t t1 = std::min(c1 + shift, lt);
    const std::int64_t f0 = std::max(trow * lt + t0, pt.flat_begin);
    const std::int64_t f1 = std::min(trow * lt + t1, pt.flat_end);
    if (f1 <= f0) continue;
    const std::int64_t s0 = row * ls + (f0 - trow * lt - shift) - ps.flat_begin;
    std::memcpy(d + static_cast<std::size_t>(f0 - pt.flat_begin) * elem_bytes,
                s + static_cast<std::size_t>(s0) * elem_bytes,
                static_cast<std::size_t>(f1 - f0) * elem_bytes);
    copied += f1 - f0;
  }
  return copied;
}

namespace {

// Rank 0's commit, once every rank's file list is in tmp: manifest, rename, latest, retention.
// Returns a warning (a failed prune) or throws.
std::string commit(const SaveRequest& req, int world_size, const std::string& tmp,
                   const std::string& final_dir, const std::string& name) {
  Manifest m = req.manifest;
  m.step = req.step;
  m.config_sha256 = sha256_hex(req.config_yaml);
  for (int r = 0; r < world_size; ++r) {
    const std::string lf = tmp + fmt::format("/.files-rank{}.json", r);
    for (const json& e : json::parse(read_text(lf)))
      m.files.push_back({e.at("name").get<std::string>(), e.at("bytes").get<std::uint64_t>(),
                         e.at("sha256").get<std::string>()});
    fs::remove(lf);
  }
  std::sort(m.files.begin(), m.files.end(),
            [](const ManifestFile& a, const ManifestFile& b) { return a.name < b.name; });
  fault_point("manifest", 0);
  write_text_synced(tmp + "/manifest.json", manifest_to_json(m).dump(2) + "\n");
  fsync_path(tmp, true);
  fault_point("rename", 0);
  std::error_code ec;
  if (fs::exists(final_dir)) {  // the same step saved before (an earlier attempt): replace it
    fs::remove_all(final_dir + ".old", ec);
    fs::rename(final_dir, final_dir + ".old", ec);
    if (ec) throw_runtime_error("{}: cannot move aside: {}", final_dir, ec.message());
  }
  fs::rename(tmp, final_dir, ec);
  if (ec) throw_runtime_error("{}: cannot rename into place: {}", final_dir, ec.message());
  fs::remove_all(final_dir + ".old", ec);
  fsync_path(req.checkpoints_dir, true);
  fault_point("latest", 0);
  replace_link(req.checkpoints_dir, "latest", name);
  if (req.best) replace_link(req.checkpoints_dir, "best", name);
  try {
    prune_checkpoints(req.checkpoints_dir, req.keep_last, req.keep_every);
  } catch (const Error& e) {
    return e.what();  // the checkpoint is committed; a failed prune only costs disk
  }
  return "";
}

}  // namespace

PendingSave::~PendingSave() {
  if (thread_.joinable()) thread_.join();
}

PendingSave& PendingSave::operator=(PendingSave&& o) noexcept {
  if (this != &o) {
    if (thread_.joinable()) thread_.join();
    outcome_ = std::move(o.outcome_);
    thread_ = std::move(o.thread_);
    active_ = o.active_;
    tmp_ = std::move(o.tmp_);
    final_dir_ = std::move(o.final_dir_);
    o.active_ = false;
  }
  return *this;
}

std::string PendingSave::finish(comm::Communicator& world) {
  if (!active_) return "";
  if (thread_.joinable()) thread_.join();
  active_ = false;
  const std::string error = outcome_->error, warning = outcome_->warning;
  if (world.any(!error.empty())) {
    if (world.rank() == 0) {
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
    throw_runtime_error("checkpoint {} failed (committing): {}", fs::path(final_dir_).filename().string(),
                        error.empty() ? std::string("on another rank") : error);
  }
  if (!warning.empty()) log::warn("checkpoint retention: {}", warning);
  return final_dir_;
}

PendingSave begin_save(const SaveRequest& req, comm::Communicator& world) {
  const int rank = world.rank();
  const std::string name = step_name(req.step);
  const std::string final_dir = req.checkpoints_dir + "/" + name;
  const std::string tmp = final_dir + ".tmp";
  std::string error;
  const auto agree = [&](const char* what) {
    if (world.any(!error.empty())) {
      if (rank == 0) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
      }
      throw_runtime_error("checkpoint {} failed ({}): {}", name, what,
                          error.empty() ? std::string("on another rank") : error);
    }
  };
  // 1. A fresh step_<N>.tmp/.
  if (rank == 0) {
    try {
      std::error_code ec;
      fs::create_directories(req.checkpoints_dir, ec);
      fs::remove_all(tmp, ec);
      if (!fs::create_directory(tmp, ec) || ec)
        throw_runtime_error("{}: cannot create: {}", tmp, ec.message());
    } catch (const Error& e) {
      error = e.what();
    }
  }
  agree("creating the directory");
  // 2. Every rank writes its files (the tensors are copied out here: training may go on).
  std::vector<std::string> mine;
  try {
    if (req.write_model) {
      const std::string f = fmt::format("model-tp{}-of-{}.h5", req.tp_rank, req.tp_size);
      write_h5(tmp + "/" + f, req.model,
               {{"step", req.step}, {"tp_rank", req.tp_rank}, {"tp_size", req.tp_size}}, "model",
               rank);
      mine.push_back(f);
    }
    if (req.write_optimizer) {
      const std::string f = fmt::format("optim-tp{}-dp{}-of-{}x{}.h5", req.tp_rank, req.dp_rank,
                                        req.tp_size, req.dp_size);
      write_h5(tmp + "/" + f, req.optimizer,
               {{"step", req.step}, {"tp_rank", req.tp_rank}, {"tp_size", req.tp_size},
                {"dp_rank", req.dp_rank}, {"dp_size", req.dp_size}},
               "optimizer", rank);
      mine.push_back(f);
    }
    const std::string sf = fmt::format("state-rank{}.json", rank);
    write_text_synced(tmp + "/" + sf, rank_state_to_json(req.state).dump(2) + "\n");
    mine.push_back(sf);
    if (rank == 0) {
      write_text_synced(tmp + "/config.yaml", req.config_yaml);
      mine.push_back("config.yaml");
    }
  } catch (const Error& e) {
    error = e.what();
  }
  agree("writing");
  // 3. In the background: every rank fsyncs and hashes its files and publishes their list; rank 0
  // waits for all lists (or a failure marker), then commits. No collectives here: finish()
  // agrees on the outcome.
  PendingSave p;
  p.active_ = true;
  p.tmp_ = tmp;
  p.final_dir_ = final_dir;
  p.outcome_ = std::make_shared<PendingSave::Outcome>();
  const int world_size = world.size();
  // The request's tensors are not read here (the files hold them), so only what the commit needs
  // is copied into the thread.
  SaveRequest commit_req;
  commit_req.checkpoints_dir = req.checkpoints_dir;
  commit_req.step = req.step;
  commit_req.manifest = req.manifest;
  commit_req.config_yaml = req.config_yaml;
  commit_req.keep_last = req.keep_last;
  commit_req.keep_every = req.keep_every;
  commit_req.best = req.best;
  p.thread_ = std::thread([out = p.outcome_, req = std::move(commit_req), rank, world_size, tmp,
                           final_dir, name, mine] {
    try {
      json list = json::array();
      for (const std::string& f : mine) {
        if (f.ends_with(".h5")) {
          fault_point("fsync", rank);
          fsync_path(tmp + "/" + f, false);
        }
        const ManifestFile mf = describe_file(tmp, f);
        list.push_back({{"name", mf.name}, {"bytes", mf.bytes}, {"sha256", mf.sha256}});
      }
      const std::string lf = tmp + fmt::format("/.files-rank{}.json", rank);
      write_text_synced(lf + ".part", list.dump() + "\n");
      fs::rename(lf + ".part", lf);
      if (rank != 0) return;
      // Rank 0: every rank's list, or a failure marker.
      for (;;) {
        int present = 0;
        for (int r = 0; r < world_size; ++r) {
          std::error_code ec;
          if (fs::exists(tmp + fmt::format("/.failed-rank{}", r), ec))
            throw_runtime_error("rank {} could not finish its files", r);
          present += fs::exists(tmp + fmt::format("/.files-rank{}.json", r), ec) ? 1 : 0;
        }
        if (present == world_size) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      out->warning = commit(req, world_size, tmp, final_dir, name);
    } catch (const std::exception& e) {
      out->error = e.what();
      if (rank != 0) {  // tell rank 0, which waits for this rank's list
        std::ofstream(tmp + fmt::format("/.failed-rank{}", rank)) << out->error << "\n";
      }
    }
  });
  return p;
}

std::string save_checkpoint(const SaveRequest& request, comm::Communicator& world) {
  PendingSave pending = begin_save(request, world);
  return pending.finish(world);
}

std::vector<CheckpointRef> list_checkpoints(const std::string& checkpoints_dir) {
  std::vector<CheckpointRef> out;
  std::error_code ec;
  if (!fs::is_directory(checkpoints_dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(checkpoints_dir, ec)) {
    if (!e.is_directory() || e.is_symlink()) continue;
    if (const auto step = parse_step_dir(e.path().filename().string()))
      out.push_back({e.path().string(), *step});
  }
  std::sort(out.begin(), out.end(),
            [](const CheckpointRef& a, const CheckpointRef& b) { return a.step < b.step; });
  return out;
}

namespace {

std::optional<std::string> linked_checkpoint(const std::string& checkpoints_dir, const char* name) {
  std::error_code ec;
  const fs::path link = fs::path(checkpoints_dir) / name;
  if (!fs::is_symlink(link, ec)) return std::nullopt;
  const fs::path target = fs::read_symlink(link, ec);
  if (ec || !parse_step_dir(target.filename().string())) return std::nullopt;
  return (fs::path(checkpoints_dir) / target.filename()).string();
}

}  // namespace

std::optional<std::string> latest_checkpoint(const std::string& checkpoints_dir) {
  return linked_checkpoint(checkpoints_dir, "latest");
}

std::optional<std::string> best_checkpoint(const std::string& checkpoints_dir) {
  return linked_checkpoint(checkpoints_dir, "best");
}

Manifest read_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) throw_user_error(path, "missing (not a committed checkpoint)");
  const json doc = read_json_file(path);
  const JsonValue j(doc, path);
  j.expect_object();
  if (j.string_or("format", "") != "tailor-checkpoint")
    throw_user_error(path, "not a Tailor checkpoint manifest");
  Manifest m;
  m.format_version = static_cast<int>(j.at("format_version").integer(0, 1 << 20));
  if (m.format_version != kCheckpointFormatVersion)
    throw_user_error(path, "format version {} is not supported by this build (it reads {})",
                     m.format_version, kCheckpointFormatVersion);
  m.step = j.at("step").integer(0, kMaxCheckpointStep);
  const JsonValue l = j.at("layout");
  m.tensor = static_cast<int>(l.at("tensor").integer(1, kMaxLayoutRanks));
  m.data = static_cast<int>(l.at("data").integer(1, kMaxLayoutRanks));
  const std::int64_t world = l.at("world").integer(1, kMaxLayoutRanks);
  if (world != std::int64_t{m.tensor} * m.data)
    l.fail(fmt::format("world {} is not tensor {} x data {}", world, m.tensor, m.data));
  m.world = static_cast<int>(world);
  m.zero = l.at("zero").boolean();
  m.dtype = j.at("dtype").string();
  if (m.dtype != "f32" && m.dtype != "f64" && m.dtype != "bf16")
    j.at("dtype").fail(fmt::format("'{}' is not f32, f64 or bf16", m.dtype));
  const JsonValue opt = j.at("optimizer");
  m.optimizer = opt.at("name").string();
  // Updates applied: at most one per step (skipped steps apply none).
  m.optimizer_steps = opt.at("steps").integer(0, m.step);
  m.config_sha256 = j.at("config").at("sha256").string();
  for (const auto& [k, v] : j.at("determinism").members()) m.determinism[k] = v.string();
  const JsonValue peft = j.at("peft");
  m.peft_method = peft.at("method").string();
  m.base_model = peft.at("base_model").string();
  m.base_identity = peft.at("base_identity").string();
  m.data_fingerprint = j.at("data").at("fingerprint").string();
  for (const JsonValue& f : j.at("files").elements()) {
    ManifestFile mf{f.at("name").string(), f.at("bytes").unsigned_integer(),
                    f.at("sha256").string()};
    if (!bare_file_name(mf.name))
      throw_user_error(path, "names a file outside the checkpoint directory: '{}'", mf.name);
    if (mf.sha256.size() != 64) throw_user_error(path, "file {}: malformed sha256", mf.name);
    if (std::any_of(m.files.begin(), m.files.end(),
                    [&](const ManifestFile& o) { return o.name == mf.name; }))
      throw_user_error(path, "lists file {} twice", mf.name);
    m.files.push_back(std::move(mf));
  }
  for (const std::string& needed : {std::string("config.yaml"), std::string("state-rank0.json")})
    if (!m.lists(needed)) throw_user_error(path, "lists no {}", needed);
  return m;
}

namespace {

// One manifest file against the disk: "" when it verifies, else why not; `bytes` gets its size.
std::string file_problem(const std::string& dir, const ManifestFile& f, std::uint64_t& bytes) {
  const std::string path = dir + "/" + f.name;
  std::error_code ec;
  bytes = 0;
  if (fs::is_symlink(path, ec)) return "is a symbolic link (refused)";
  if (!fs::is_regular_file(path, ec)) return "missing";
  bytes = static_cast<std::uint64_t>(fs::file_size(path, ec));
  if (bytes != f.bytes)
    return fmt::format("{} bytes, the manifest says {} (truncated or replaced)", bytes, f.bytes);
  if (sha256_file(path) != f.sha256) return "SHA-256 differs from the manifest (the file is damaged)";
  return "";
}

}  // namespace

void verify_checkpoint(const std::string& dir, const Manifest& manifest) {
  for (const ManifestFile& f : manifest.files) {
    std::uint64_t bytes = 0;
    const std::string problem = file_problem(dir, f, bytes);
    if (!problem.empty()) throw UserError(dir + "/" + f.name, problem);
  }
}

Manifest validate_checkpoint(const std::string& dir) {
  Manifest m = read_manifest(dir);
  verify_checkpoint(dir, m);
  for (int r = 0; r < m.world; ++r)
    if (r == 0 || m.lists(fmt::format("state-rank{}.json", r))) (void)read_rank_state(dir, m, r);
  for (const ManifestFile& f : m.files)
    if (f.name.ends_with(".h5")) (void)h5::File::open(dir + "/" + f.name).list();
  return m;
}

std::vector<FileCheck> check_checkpoint_files(const std::string& dir, const Manifest& manifest) {
  std::vector<FileCheck> out;
  for (const ManifestFile& f : manifest.files) {
    FileCheck c;
    c.name = f.name;
    try {
      c.problem = file_problem(dir, f, c.bytes);
    } catch (const UserError& e) {  // unreadable (sha256_file): a problem of this file only
      c.problem = e.reason();
    } catch (const Error& e) {
      c.problem = e.what();
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<CheckpointRef> find_resumable(const std::string& checkpoints_dir,
                                            std::vector<std::string>* rejected) {
  std::vector<CheckpointRef> candidates = list_checkpoints(checkpoints_dir);
  std::reverse(candidates.begin(), candidates.end());
  if (const auto latest = latest_checkpoint(checkpoints_dir)) {
    const auto it = std::find_if(candidates.begin(), candidates.end(),
                                 [&](const CheckpointRef& c) { return c.dir == *latest; });
    if (it != candidates.end()) std::rotate(candidates.begin(), it, it + 1);
  }
  for (const CheckpointRef& c : candidates) {
    try {
      const Manifest m = read_manifest(c.dir);
      if (m.step != c.step)
        throw_user_error(c.dir + "/manifest.json", "says step {}, the directory step {}", m.step,
                         c.step);
      verify_checkpoint(c.dir, m);
      return c;
    } catch (const UserError& e) {
      if (rejected) rejected->push_back(e.what());
    }
  }
  return std::nullopt;
}

void prune_checkpoints(const std::string& checkpoints_dir, std::int64_t keep_last,
                       std::int64_t keep_every) {
  std::error_code ec;
  // Leftovers of interrupted saves and prunes.
  for (const auto& e : fs::directory_iterator(checkpoints_dir, ec)) {
    const std::string n = e.path().filename().string();
    const auto ends = [&](const std::string& s) {
      return n.size() > s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
    };
    if (n.rfind("step_", 0) == 0 && (ends(".tmp") || ends(".deleting") || ends(".old")))
      fs::remove_all(e.path(), ec);
  }
  if (keep_last <= 0) return;
  const std::vector<CheckpointRef> all = list_checkpoints(checkpoints_dir);
  const std::optional<std::string> latest = latest_checkpoint(checkpoints_dir);
  const std::optional<std::string> best = best_checkpoint(checkpoints_dir);
  const std::size_t n = all.size();
  for (std::size_t i = 0; i < n; ++i) {
    const CheckpointRef& c = all[i];
    const bool recent = i + static_cast<std::size_t>(keep_last) >= n;
    const bool milestone = keep_every > 0 && c.step % keep_every == 0;
    if (recent || milestone || (latest && *latest == c.dir) || (best && *best == c.dir)) continue;
    const std::string doomed = c.dir + ".deleting";
    fs::rename(c.dir, doomed, ec);
    if (ec) throw_runtime_error("{}: cannot remove: {}", c.dir, ec.message());
    fault_point("prune", 0);
    fs::remove_all(doomed, ec);
  }
}

RankState read_rank_state(const std::string& dir, const Manifest& manifest, int rank) {
  const std::string name = fmt::format("state-rank{}.json", rank);
  const std::string path = dir + "/" + name;
  // Only files the manifest lists (and verify_checkpoint hashed) are read.
  if (!manifest.lists(name))
    throw_user_error(dir + "/manifest.json", "does not list {} (the resume reads it)", name);
  const json doc = read_json_file(path);
  const JsonValue j(doc, path);
  j.expect_object();
  RankState s;
  s.rank = static_cast<int>(j.at("rank").integer(rank, rank));
  s.tp_rank = static_cast<int>(j.at("tp_rank").integer(0, manifest.tensor - 1));
  s.dp_rank = static_cast<int>(j.at("dp_rank").integer(0, manifest.data - 1));
  s.step = j.at("step").integer(manifest.step, manifest.step);
  s.data_cursor = j.at("data_cursor").integer(0, std::numeric_limits<std::int64_t>::max());
  s.skipped_steps = j.at("skipped_steps").integer(0, s.step);
  s.consecutive_skips = j.at("consecutive_skips").integer(0, s.skipped_steps);
  s.seed = j.at("rng").at("seed").unsigned_integer();
  // Every step either applied one update or was skipped.
  if (manifest.optimizer_steps != s.step - s.skipped_steps)
    throw_user_error(dir + "/manifest.json",
                     "optimizer.steps: {} updates, but {} steps with {} skipped leave {}",
                     manifest.optimizer_steps, s.step, s.skipped_steps, s.step - s.skipped_steps);
  if (const std::optional<JsonValue> best = j.find("best")) {  // checkpoint.keep_best
    s.best_step = best->at("step").integer(1, s.step);
    s.best_metric = best->at("metric").string();
    s.best_value = best->at("value").number();
    s.evals_since_best = best->at("evals_since").integer(0, s.step);
  }
  return s;
}

CheckpointReader::CheckpointReader(const std::string& dir, const Manifest& manifest,
                                   const std::string& prefix)
    : dir_(dir) {
  for (const ManifestFile& mf : manifest.files) {
    if (mf.name.rfind(prefix, 0) != 0) continue;
    files_.push_back(h5::File::open(dir + "/" + mf.name));
    for (h5::DatasetInfo& info : files_.back().list())
      index_[info.path].push_back({files_.size() - 1, std::move(info)});
  }
}

std::vector<std::string> CheckpointReader::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : index_) out.push_back(k);
  return out;
}

DType CheckpointReader::dtype(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) throw_user_error(dir_, "tensor {} is missing from the checkpoint", name);
  return it->second.front().info.dtype;
}

void CheckpointReader::read(const std::string& name, const h5::Placement& target,
                            const backend::Tensor& out, const Shape* expected_stored) {
  const auto it = index_.find(name);
  if (it == index_.end()) throw_user_error(dir_, "tensor {} is missing from the checkpoint", name);
  const Shape& stored = it->second.front().info.placement.global_shape;
  // Every dim against the model, before anything is allocated for the pieces.
  const Shape& want = expected_stored != nullptr ? *expected_stored : target.global_shape;
  if (!(stored == want))
    throw_user_error(dir_, "tensor {}: shape {} in the checkpoint, {} in the model", name,
                     stored.str(), want.str());
  std::memset(out.data, 0, out.bytes());
  std::int64_t copied = 0;
  for (const Source& s : it->second) {
    const h5::Placement& ps = s.info.placement;
    if (!(ps.global_shape == stored))
      throw_user_error(files_[s.file].path(), "tensor {}: global shape {} differs from {}", name,
                       ps.global_shape.str(), stored.str());
    if (s.info.dtype != out.dtype)
      throw_user_error(files_[s.file].path(), "tensor {} is {}, the run trains in {}", name,
                       dtype_name(s.info.dtype), dtype_name(out.dtype));
    // Skip pieces whose slab cannot meet the target's (both split on the same dimension).
    if (ps.shard_dim >= 0 && ps.shard_dim == target.shard_dim) {
      const std::int64_t a0 = ps.shard_offset, a1 = a0 + ps.local_shape[ps.shard_dim];
      const std::int64_t b0 = target.shard_offset, b1 = b0 + target.local_shape[target.shard_dim];
      if (a1 <= b0 || b1 <= a0) continue;
    }
    backend::Buffer buf(s.info.dtype, Shape{ps.flat_end - ps.flat_begin});
    files_[s.file].read(s.info.path, buf.tensor());
    copied += copy_overlap(ps, buf.tensor().data, target, out.data, dtype_size(out.dtype));
  }
  const std::int64_t expected = covered_elements(target, stored);
  if (copied != expected)
    throw_user_error(dir_, "tensor {}: the checkpoint holds {} of the {} elements this rank needs",
                     name, copied, expected);
  // Training never stores a non-finite value (a non-finite step is skipped), and a second moment
  // is a running mean of squares: anything else is damage or forgery.
  const bool non_negative = name.rfind("exp_avg_sq/", 0) == 0;
  if (const auto bad = first_bad_value(out, non_negative))
    throw_user_error(dir_, "tensor {}: element {} is {:g} (a checkpoint holds only finite values{})",
                     name, target.flat_begin + bad->first, bad->second,
                     non_negative ? ", and second moments >= 0" : "");
}

}  // namespace tailor::checkpoint
