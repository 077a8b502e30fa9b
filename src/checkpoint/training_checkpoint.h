// Training checkpoints: the directory layout of ARCHITECTURE.md (Contracts), written atomically by
// all ranks together, verified before use, loadable under another TP/DP layout.
//
//   checkpoints/step_<N>/
//     model-tp<t>-of-<T>.h5            this TP rank's parameter shards (written by DP rank 0)
//     optim-tp<t>-dp<d>-of-<T>x<D>.h5  optimizer state: one group per kind (exp_avg, exp_avg_sq,
//                                      momentum); the whole trainable shard per TP rank, or each
//                                      DP rank's ZeRO range of it (flat ranges)
//     state-rank<r>.json               per-rank counters: step, data cursor, skipped steps, RNG
//     config.yaml                      the resolved config the run was trained with
//     manifest.json                    format version, step, layout, config hash, determinism
//                                      record, PEFT base identity, SHA-256 and size of every file
//   checkpoints/latest -> step_<N>     a symlink, replaced atomically after the directory is whole
//   checkpoints/best -> step_<N>       the same for the best evaluation (checkpoint.keep_best)
//
// A tensor replicated over TP ranks (norms, replicated KV heads, replicated LoRA factors) is saved
// once, by the first rank of its replica group (tp rank % replicas == 0). A PEFT run saves only
// its trainable tensors; the frozen base is named in the manifest.
//
// Save sequence (every step of it survives a crash at any point; see docs/checkpoints.md): rank 0
// creates step_<N>.tmp/; every rank writes and fsyncs its files and a list of their hashes; the
// ranks agree that all writes succeeded; rank 0 writes manifest.json, fsyncs, renames
// step_<N>.tmp -> step_<N>, fsyncs checkpoints/, replaces `latest`, then prunes. A failed write on
// any rank (disk full) fails the save on every rank: the .tmp directory is removed and `latest`
// still names the previous checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include "backend/tensor.h"
#include "checkpoint/h5.h"
#include "comm/communicator.h"

namespace tailor::checkpoint {

inline constexpr int kCheckpointFormatVersion = 1;
// Ranges a manifest's numbers must lie in (larger ones are refused, so no arithmetic on them
// overflows): steps, and ranks per layout dimension and in the world.
inline constexpr std::int64_t kMaxCheckpointStep = 1'000'000'000'000'000;  // 10^15
inline constexpr std::int64_t kMaxLayoutRanks = 1 << 20;

// A contiguous run of one parameter's local (TP-shard) elements and its host values.
struct TensorPiece {
  std::string name;          // dataset path: canonical name, or "<kind>/<name>" for optimizer state
  h5::Placement placement;
  backend::Tensor data;      // placement.flat_end - placement.flat_begin elements
};

struct ManifestFile {
  std::string name;          // bare file name inside the checkpoint directory
  std::uint64_t bytes = 0;
  std::string sha256;
};

struct Manifest {
  int format_version = kCheckpointFormatVersion;
  std::int64_t step = 0;
  int tensor = 1, data = 1, world = 1;
  bool zero = false;
  std::string dtype;                         // f32 | f64 | bf16: model tensors as trained
  std::string optimizer;                     // adamw | sgd
  std::int64_t optimizer_steps = 0;          // updates applied (skipped steps excluded)
  std::string config_sha256;                 // of config.yaml
  std::map<std::string, std::string> determinism;  // backend, threads, build, host ...
  std::string peft_method = "none";
  std::string base_model;                    // PEFT: the frozen base's directory ("" = seeded init)
  std::string base_identity;                 // PEFT: hash identifying the base
  std::string data_fingerprint;              // the tokenized corpus' cache key
  std::vector<ManifestFile> files;

  [[nodiscard]] bool lists(const std::string& name) const {
    for (const ManifestFile& f : files)
      if (f.name == name) return true;
    return false;
  }
};

// Per-rank counters (state-rank<r>.json).
struct RankState {
  int rank = 0, tp_rank = 0, dp_rank = 0;
  std::int64_t step = 0;
  std::int64_t data_cursor = 0;              // global sequence index of the next batch
  std::int64_t skipped_steps = 0;            // non-finite steps skipped so far
  std::int64_t consecutive_skips = 0;
  std::uint64_t seed = 0;                    // the counter-based RNG's key (its counters derive
                                             // from step and element indices: no other state)
  // checkpoint.keep_best: the best evaluation so far (written only once there is one).
  std::int64_t best_step = 0;                // 0: none yet
  std::string best_metric;                   // the metric compared (checkpoint.keep_best's name)
  double best_value = 0.0;
  std::int64_t evals_since_best = 0;         // evaluations since, for early stopping
};

// Everything one rank contributes to a save.
struct SaveRequest {
  std::string checkpoints_dir;               // <output.dir>/checkpoints
  std::int64_t step = 0;
  int tp_rank = 0, tp_size = 1, dp_rank = 0, dp_size = 1;
  bool write_model = false;                  // DP rank 0 of each TP group
  std::vector<TensorPiece> model;
  bool write_optimizer = false;
  std::vector<TensorPiece> optimizer;        // names "<kind>/<param name>"
  RankState state;
  // World rank 0 only:
  Manifest manifest;                         // files and step are filled in by save
  std::string config_yaml;
  std::int64_t keep_last = 0;                // retention (0: keep all)
  std::int64_t keep_every = 0;               // also keep steps that are multiples of this
  bool best = false;                         // this step is the best evaluation: `best` names it
};

// A save whose files are written (the tensors are copied out: training may change them) while
// fsync, hashing and rank 0's commit (manifest, rename, latest, retention) run on a background
// thread of each rank. finish() (collective) waits for it and agrees on the outcome.
class PendingSave {
 public:
  PendingSave() = default;
  PendingSave(PendingSave&&) noexcept = default;
  PendingSave& operator=(PendingSave&& o) noexcept;  // finishes nothing: joins a running thread
  PendingSave(const PendingSave&) = delete;
  PendingSave& operator=(const PendingSave&) = delete;
  ~PendingSave();  // joins without reporting

  // Every rank calls it: waits, then returns the committed directory, or throws RuntimeError on
  // every rank when any rank failed (the .tmp directory is removed, `latest` is unchanged).
  // A no-op returning "" when nothing is pending.
  std::string finish(comm::Communicator& world);
  [[nodiscard]] bool active() const noexcept { return active_; }

 private:
  friend PendingSave begin_save(const SaveRequest& request, comm::Communicator& world);
  struct Outcome {
    std::string error, warning;
  };
  std::shared_ptr<Outcome> outcome_;
  std::thread thread_;
  bool active_ = false;
  std::string tmp_, final_dir_;
};

// Collectively (every rank of `world`): creates step_<N>.tmp, writes every rank's files, agrees
// that the writes succeeded (RuntimeError on every rank otherwise), and returns the pending rest.
[[nodiscard]] PendingSave begin_save(const SaveRequest& request, comm::Communicator& world);

// begin_save + finish: returns the committed directory.
std::string save_checkpoint(const SaveRequest& request, comm::Communicator& world);

// Committed checkpoint directories (step_<N>, no suffix) under `checkpoints_dir`, by step.
struct CheckpointRef {
  std::string dir;
  std::int64_t step = 0;
};
[[nodiscard]] std::vector<CheckpointRef> list_checkpoints(const std::string& checkpoints_dir);
// The directory `latest` names, if it exists.
[[nodiscard]] std::optional<std::string> latest_checkpoint(const std::string& checkpoints_dir);
// The directory `best` names (checkpoint.keep_best), if it exists.
[[nodiscard]] std::optional<std::string> best_checkpoint(const std::string& checkpoints_dir);

// Reads and checks manifest.json (format, version, file names inside the directory, every number
// in its range, config.yaml and state-rank0.json listed). UserError "dir/manifest.json: key:
// reason".
[[nodiscard]] Manifest read_manifest(const std::string& dir);
// Checks every file of the manifest: present, its size, its SHA-256. UserError "dir/file: reason".
void verify_checkpoint(const std::string& dir, const Manifest& manifest);

// Every check of checkpoint `dir` that needs no model, stopping at the first problem (UserError
// naming the file and the reason): the manifest (format, bare file names, every number in its
// range, config.yaml and state-rank0.json listed), each listed file's size and SHA-256, the
// numbers of every listed state file against the manifest, and the structure of every HDF5 file
// (hard links only, data inside the file, fletcher32 only, dims equal to local_shape, placements
// that fit; no tensor data is read). What needs the model (global shapes, dtypes, finite values)
// is checked as tensors are read (CheckpointReader::read). The one entry point for tools and the
// checkpoint fuzz target.
Manifest validate_checkpoint(const std::string& dir);

// The same checks, file by file, without stopping at the first bad one (`tailor inspect`).
struct FileCheck {
  std::string name;          // as in the manifest
  std::uint64_t bytes = 0;   // on disk (0 when missing)
  std::string problem;       // "" when the file verifies, else the reason
};
[[nodiscard]] std::vector<FileCheck> check_checkpoint_files(const std::string& dir,
                                                            const Manifest& manifest);

// The checkpoint `train.resume: auto` continues from: `latest` when it verifies, else the newest
// committed one that does. Each rejected candidate is described in `rejected` (one line each).
[[nodiscard]] std::optional<CheckpointRef> find_resumable(const std::string& checkpoints_dir,
                                                          std::vector<std::string>* rejected);

// Removes committed checkpoints beyond the newest `keep_last` (0: none removed), except multiples
// of `keep_every` and the ones `latest` and `best` name; leftover .tmp directories of steps other
// than `in_progress` go too.
void prune_checkpoints(const std::string& checkpoints_dir, std::int64_t keep_last,
                       std::int64_t keep_every);

// Reads state-rank<rank>.json, which the manifest must list (verify_checkpoint hashed it), with
// every number range-checked against the manifest (its step, layout and optimizer updates).
[[nodiscard]] RankState read_rank_state(const std::string& dir, const Manifest& manifest, int rank);

// Reads tensors of a checkpoint under any layout: for a target placement (this rank's shard and
// flat range), the pieces of every file that overlap it are copied in. Elements the checkpoint
// holds in no file are an error, except vocabulary padding rows (a global dim 0 larger than the
// stored one, as the caller expects it), which stay zero.
class CheckpointReader {
 public:
  // Opens the files of `manifest` whose name starts with `prefix` ("model-" or "optim-").
  CheckpointReader(const std::string& dir, const Manifest& manifest, const std::string& prefix);
  [[nodiscard]] bool has(const std::string& name) const { return index_.count(name) > 0; }
  // The stored dtype of a tensor (UserError when it is missing).
  [[nodiscard]] DType dtype(const std::string& name) const;
  // Fills `out` (host, target.flat_end - target.flat_begin elements, the stored dtype). The stored
  // global shape must be `expected_stored` (default: target.global_shape) in every dim, checked
  // before any piece is read or allocated; a vocabulary table saved under another TP degree has
  // another padding (rows past the real vocabulary), which the caller expects by passing it.
  void read(const std::string& name, const h5::Placement& target, const backend::Tensor& out,
            const Shape* expected_stored = nullptr);
  [[nodiscard]] std::vector<std::string> names() const;

 private:
  struct Source {
    std::size_t file;
    h5::DatasetInfo info;
  };
  std::string dir_;
  std::vector<h5::File> files_;
  std::map<std::string, std::vector<Source>> index_;
};

// Copies the elements of piece `src` (placement ps) that fall in target placement pt's flat range
// into `dst` (laid out as pt's range). Returns the number of elements copied. Exposed for tests.
std::int64_t copy_overlap(const h5::Placement& ps, const void* src, const h5::Placement& pt,
                          void* dst, std::size_t elem_bytes);

// Fault injection for tests (TAILOR_FAULT_SAVE=<point>[:rank]): the process kills itself with
// SIGKILL at that point of the save sequence; "enospc" makes the rank's shard write fail as if the
// disk were full. Points: shard, fsync, manifest, rename, latest, prune.
void fault_point(const char* point, int rank);

}  // namespace tailor::checkpoint
