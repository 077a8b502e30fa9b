// Checkpoint I/O throughput against the disk's own: saves ~1 GB of f32 tensors with
// checkpoint::save_checkpoint (HDF5, chunked + Fletcher32, SHA-256 of every file, fsync, rename)
// and loads them back with CheckpointReader, and in the same run writes the same bytes to one file
// with write() + fsync and reads them back with read(), in the same directory (so on the same
// disk). Reads are cold: each file's pages are dropped from the page cache first
// (posix_fadvise(DONTNEED) after fsync; no root needed). Prints a table and one JSON line
// (also written to --json FILE).
//   build/benchmarks/tailor_bench_checkpoint_io --gb 1 --repeats 3 [--dir /path/on/the/disk]
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/tensor.h"
#include "checkpoint/training_checkpoint.h"
#include "comm/communicator.h"
#include "core/error.h"
#include "core/sha256.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using tailor::DType;
using tailor::Shape;
namespace ck = tailor::checkpoint;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr std::size_t kIoChunk = 8u << 20;  // bytes per write()/read() call

// Drops a clean (fsynced) file's pages from the page cache.
void drop_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) tailor::throw_runtime_error("{}: cannot open: {}", path, std::strerror(errno));
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

void drop_cache_dir(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) drop_cache(e.path().string());
}

// The disk's own sequential write: the tensors' bytes into one file, write() then fsync.
double raw_write(const std::string& path, const std::vector<tailor::backend::Buffer>& tensors) {
  const auto t0 = Clock::now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) tailor::throw_runtime_error("{}: cannot create: {}", path, std::strerror(errno));
  for (const auto& b : tensors) {
    const char* p = static_cast<const char*>(b.data());
    std::size_t left = static_cast<std::size_t>(b.numel()) * sizeof(float);
    while (left > 0) {
      const ssize_t n = ::write(fd, p, std::min(left, kIoChunk));
      if (n <= 0) tailor::throw_runtime_error("{}: write failed: {}", path, std::strerror(errno));
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  if (::fsync(fd) != 0) tailor::throw_runtime_error("{}: fsync failed", path);
  ::close(fd);
  return since(t0);
}

// The disk's own sequential read of that file (cold) into the tensors' buffers.
double raw_read(const std::string& path, const std::vector<tailor::backend::Buffer>& into) {
  drop_cache(path);
  const auto t0 = Clock::now();
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) tailor::throw_runtime_error("{}: cannot open: {}", path, std::strerror(errno));
  for (const auto& b : into) {
    char* p = static_cast<char*>(b.data());
    std::size_t left = static_cast<std::size_t>(b.numel()) * sizeof(float);
    while (left > 0) {
      const ssize_t n = ::read(fd, p, std::min(left, kIoChunk));
      if (n <= 0) tailor::throw_runtime_error("{}: read failed", path);
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  return since(t0);
}

ck::h5::Placement whole(const Shape& s) {
  ck::h5::Placement p;
  p.global_shape = s;
  p.local_shape = s;
  p.flat_end = s.numel();
  return p;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  double gb = 1.0;
  int n_tensors = 32, repeats = 3;
  std::string dir, json_path;
  CLI::App app{"Checkpoint save/load throughput vs the disk's sequential write/read"};
  app.add_option("--gb", gb, "gigabytes (1e9 bytes) of f32 tensors (default 1)")
      ->check(CLI::PositiveNumber);
  app.add_option("--tensors", n_tensors, "number of tensors (default 32)")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "measurements of each (median reported; default 3)")
      ->check(CLI::PositiveNumber);
  app.add_option("--dir", dir, "scratch directory on the disk to measure (default: the temp dir)");
  app.add_option("--json", json_path, "also write the JSON line to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const std::string parent = dir.empty() ? fs::temp_directory_path().string() : dir;
  const std::string scratch = parent + "/tailor-bench-checkpoint-io-" + std::to_string(::getpid());
  try {
    fs::create_directories(scratch);
    // Tensors [rows, 4096] f32 holding non-repeating values (no compression in play anyway).
    const std::int64_t cols = 4096;
    const auto total_elems = static_cast<std::int64_t>(gb * 1e9 / sizeof(float));
    const std::int64_t rows = std::max<std::int64_t>(1, total_elems / n_tensors / cols);
    std::vector<tailor::backend::Buffer> tensors, loaded;
    std::uint32_t x = 12345;
    for (int i = 0; i < n_tensors; ++i) {
      tensors.emplace_back(DType::kF32, Shape{rows, cols});
      loaded.emplace_back(DType::kF32, Shape{rows, cols});
      float* p = tensors.back().ptr<float>();
      for (std::int64_t k = 0; k < rows * cols; ++k) {
        x = x * 1664525u + 1013904223u;
        p[k] = static_cast<float>(x >> 8) * 0x1p-24f - 0.5f;
      }
      std::memset(loaded.back().data(), 0, static_cast<std::size_t>(rows * cols) * sizeof(float));
    }
    const double bytes = static_cast<double>(n_tensors) * static_cast<double>(rows * cols) * 4.0;
    tailor::comm::SelfCommunicator world;
    std::vector<double> t_wr, t_rd, t_save, t_stall, t_load, t_load_warm, t_verify;
    std::vector<double> t_part_h5, t_part_sync, t_part_sha, t_load_prefetch;
    std::uint64_t ckpt_bytes = 0;
    for (int r = 0; r < repeats; ++r) {
      // Disk: write + fsync, then a cold read.
      const std::string raw = scratch + "/raw.bin";
      t_wr.push_back(raw_write(raw, tensors));
      t_rd.push_back(raw_read(raw, loaded));
      fs::remove(raw);
      // Checkpoint save (collective protocol on one rank: tmp dir, HDF5, SHA-256, fsync, rename).
      ck::SaveRequest req;
      req.checkpoints_dir = scratch + "/checkpoints";
      req.step = r + 1;
      req.write_model = true;
      for (int i = 0; i < n_tensors; ++i)
        req.model.push_back({"model.layers." + std::to_string(i) + ".weight",
                             whole(tensors[static_cast<std::size_t>(i)].shape()),
                             tensors[static_cast<std::size_t>(i)].tensor()});
      req.state.step = r + 1;
      req.manifest.dtype = "f32";
      req.manifest.optimizer = "adamw";
      req.config_yaml = "bench: checkpoint_io\n";
      auto t0 = Clock::now();
      ck::PendingSave pending = ck::begin_save(req, world);
      t_stall.push_back(since(t0));  // what training waits for
      const std::string saved = pending.finish(world);
      t_save.push_back(since(t0));
      ckpt_bytes = 0;
      for (const auto& e : fs::directory_iterator(saved)) ckpt_bytes += fs::file_size(e.path());
      // Cold load: manifest, open, read every tensor into its place.
      drop_cache_dir(saved);
      const auto load = [&] {
        const auto t = Clock::now();
        const ck::Manifest m = ck::read_manifest(saved);
        ck::CheckpointReader reader(saved, m, "model-");
        for (int i = 0; i < n_tensors; ++i)
          reader.read("model.layers." + std::to_string(i) + ".weight",
                      whole(tensors[static_cast<std::size_t>(i)].shape()),
                      loaded[static_cast<std::size_t>(i)].tensor());
        return since(t);
      };
      t_load.push_back(load());
      t_load_warm.push_back(load());
      // What-if: the same cold load with every file's read-ahead requested up front
      // (posix_fadvise WILLNEED, counted in the time), as a reader could do on open.
      drop_cache_dir(saved);
      {
        const auto t = Clock::now();
        std::vector<int> fds;
        for (const auto& e : fs::directory_iterator(saved)) {
          const int fd = ::open(e.path().c_str(), O_RDONLY);
          if (fd >= 0) {
            ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
            fds.push_back(fd);
          }
        }
        const double opened = since(t);
        t_load_prefetch.push_back(opened + load());
        for (const int fd : fds) ::close(fd);
      }
      for (int i = 0; i < n_tensors; ++i)
        if (std::memcmp(tensors[static_cast<std::size_t>(i)].data(),
                        loaded[static_cast<std::size_t>(i)].data(),
                        static_cast<std::size_t>(rows * cols) * sizeof(float)) != 0)
          tailor::throw_runtime_error("tensor {} did not round-trip", i);
      // Verification as resume does it (SHA-256 of every file), cold.
      drop_cache_dir(saved);
      t0 = Clock::now();
      ck::verify_checkpoint(saved, ck::read_manifest(saved));
      t_verify.push_back(since(t0));
      fs::remove_all(req.checkpoints_dir);
      // The save's parts, one after the other as save_checkpoint does them for the model file:
      // HDF5 writes (into the page cache), fsync, SHA-256 of the written file (from the cache).
      const std::string h5_path = scratch + "/parts.h5";
      t0 = Clock::now();
      {
        ck::h5::File f = ck::h5::File::create(h5_path);
        for (int i = 0; i < n_tensors; ++i)
          f.write_tensor("model.layers." + std::to_string(i) + ".weight",
                         tensors[static_cast<std::size_t>(i)].tensor(),
                         whole(tensors[static_cast<std::size_t>(i)].shape()));
        f.close();
      }
      t_part_h5.push_back(since(t0));
      t0 = Clock::now();
      {
        const int fd = ::open(h5_path.c_str(), O_RDONLY);
        if (fd < 0 || ::fsync(fd) != 0) tailor::throw_runtime_error("{}: fsync failed", h5_path);
        ::close(fd);
      }
      t_part_sync.push_back(since(t0));
      t0 = Clock::now();
      (void)tailor::sha256_file(h5_path);
      t_part_sha.push_back(since(t0));
      fs::remove(h5_path);
    }
    const double wr = bytes / median(t_wr) / 1e9, rd = bytes / median(t_rd) / 1e9;
    const double sv = bytes / median(t_save) / 1e9, ld = bytes / median(t_load) / 1e9;
    const double ldw = bytes / median(t_load_warm) / 1e9, vf = bytes / median(t_verify) / 1e9;
    std::printf("checkpoint I/O: %.3f GB of f32 in %d tensors [%lld, %lld], %d repeats (median), "
                "scratch %s\n",
                bytes / 1e9, n_tensors, static_cast<long long>(rows),
                static_cast<long long>(cols), repeats, scratch.c_str());
    std::printf("checkpoint files: %.3f GB (HDF5 overhead %.2f%%)\n",
                static_cast<double>(ckpt_bytes) / 1e9,
                100.0 * (static_cast<double>(ckpt_bytes) - bytes) / bytes);
    std::printf("%-52s %9s %8s %9s\n", "operation", "seconds", "GB/s", "vs disk");
    const auto row = [&](const char* what, const std::vector<double>& t, double gbps, double disk) {
      std::printf("%-52s %9.3f %8.3f %9s\n", what, median(t), gbps,
                  disk > 0 ? fmt::format("{:.2f}x", gbps / disk).c_str() : "");
    };
    row("disk write: write() + fsync, one file", t_wr, wr, 0);
    row("checkpoint save: HDF5 + Fletcher32 + SHA-256 + fsync", t_save, sv, wr);
    row("  training stalls for: begin_save (files written)", t_stall,
        bytes / median(t_stall) / 1e9, wr);
    row("  its parts: HDF5 write_tensor (to the page cache)", t_part_h5,
        bytes / median(t_part_h5) / 1e9, wr);
    row("  its parts: fsync of that file", t_part_sync, bytes / median(t_part_sync) / 1e9, wr);
    row("  its parts: SHA-256 of that file (page cache)", t_part_sha,
        bytes / median(t_part_sha) / 1e9, wr);
    row("disk read (cold): read(), one file", t_rd, rd, 0);
    row("checkpoint load (cold): manifest + CheckpointReader", t_load, ld, rd);
    row("  what-if: cold load after fadvise(WILLNEED) per file", t_load_prefetch,
        bytes / median(t_load_prefetch) / 1e9, rd);
    row("checkpoint verify (cold): SHA-256 of every file", t_verify, vf, rd);
    row("checkpoint load (warm page cache)", t_load_warm, ldw, rd);
    nlohmann::ordered_json j;
    j["bench"] = "checkpoint_io";
    j["bytes"] = bytes;
    j["checkpoint_bytes"] = ckpt_bytes;
    j["tensors"] = n_tensors;
    j["repeats"] = repeats;
    j["disk_write_gbps"] = wr;
    j["save_gbps"] = sv;
    j["save_stall_gbps"] = bytes / median(t_stall) / 1e9;
    j["save_stall_vs_disk_write"] = (bytes / median(t_stall) / 1e9) / wr;
    j["disk_read_cold_gbps"] = rd;
    j["load_cold_gbps"] = ld;
    j["verify_cold_gbps"] = vf;
    j["load_warm_gbps"] = ldw;
    j["load_cold_prefetched_gbps"] = bytes / median(t_load_prefetch) / 1e9;
    j["save_part_h5_write_gbps"] = bytes / median(t_part_h5) / 1e9;
    j["save_part_fsync_gbps"] = bytes / median(t_part_sync) / 1e9;
    j["save_part_sha256_gbps"] = bytes / median(t_part_sha) / 1e9;
    j["save_vs_disk_write"] = sv / wr;
    j["load_vs_disk_read"] = ld / rd;
    const std::string line = j.dump();
    std::printf("%s\n", line.c_str());
    if (!json_path.empty()) std::ofstream(json_path) << line << "\n";
    fs::remove_all(scratch);
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(scratch, ec);
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
