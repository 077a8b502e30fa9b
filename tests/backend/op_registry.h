// The op registry: every operation of backend::Ops as one small case, run on every backend this
// build has and compared with the CPU computing in f64 (ggml's tests/test-backend-ops.cpp is the
// model). backend_ops_test.cpp runs each case on each backend mode; benchmarks/backend_ops.cpp
// times the same cases at larger shapes.
//
// A case lists its tensors (name, dtype kind, role, shape, how to fill it) and calls the op on
// them. The runner gives every tensor its dtype for the storage mode under test (ops.h,
// "Conventions": activations in the storage dtype, accumulators in accum_dtype), rounds the
// inputs to it, places each tensor in the backend's memory between guard bands and runs the op.
// The reference is CpuOps in f64 on exactly those rounded inputs, so the error measured is the
// op's own, not the inputs' rounding.
//
// Adding an op: one row in op_table.cpp (the tests and the benchmark pick it up).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "ops_test_util.h"

namespace tailor::backend::test {

// How a tensor's dtype follows the storage dtype under test.
enum class Kind : std::uint8_t {
  kStore,  // activations, weights, activation gradients: the storage dtype (f64, f32 or bf16)
  kAccum,  // statistics, losses, parameter gradients, optimizer state: accum_dtype(storage)
  kF32,    // f32 whatever the storage (RoPE's inv_freq)
  kI32,    // ids, positions, targets
};

enum class Role : std::uint8_t {
  kIn,     // read only: filled by `init`, must come back unchanged
  kOut,    // written (=): starts as NaN, so an element the op fails to write is caught; compared
  kInOut,  // read and written (+=, in place): filled by `init`, compared
  kSaved,  // written by the case's setup (what a forward pass saves for backward), then read
};

struct TensorSpec {
  std::string name;
  Kind kind = Kind::kStore;
  Role role = Role::kIn;
  Shape shape;
  // Fills the host image (HostTensor::set rounds to its dtype); `stream` is the tensor's position
  // in the case. Absent: N(0, 1).
  std::function<void(HostTensor&, std::uint64_t stream)> init;
  // The fraction of the tensor one run reads or writes (an embedding's rows), for GB/s.
  double touched = 1.0;
};

// The tensors of one run, in the order of OpCase::tensors.
using Args = std::vector<Tensor>;
// Runs the op; ops that return a value (sum_squares) return it, the others nullopt.
using OpFn = std::function<std::optional<double>(Ops&, const Args&)>;

struct OpCase {
  std::string dims{};  // "N5 D33": the shape parameters, for tables
  std::vector<TensorSpec> tensors{};
  OpFn run{};
  OpFn setup{};        // optional: fills the kSaved tensors (not timed)
  double flops = 0.0;  // per run; 0 for memory-bound ops (perf mode prints GB/s)
};

// Small shapes for the tests (odd sizes, 1s), larger ones for the benchmark.
enum class Scale : std::uint8_t { kTest, kPerf };

struct OpEntry {
  const char* name;
  OpCase (*make)(Scale);
};
// The table: one entry per op (op_table.cpp).
[[nodiscard]] const std::vector<OpEntry>& op_table();
[[nodiscard]] OpCase make_case(const std::string& name, Scale scale);

// ---- backends ----------------------------------------------------------------------------------

// One backend in one storage mode: "cpu_f32", "emulated_bf16", "cuda_bf16", ...
struct BackendMode {
  std::string name;
  DType storage = DType::kF32;
  // The backend (CPU ones with `threads`), or nullptr when it cannot run here; `why` says why.
  std::function<std::unique_ptr<Ops>(int threads, std::string& why)> make;
  bool gpu = false;  // a CUDA mode (TAILOR_REQUIRE_GPU=1 turns its skip into a failure)
};
// Every mode this build has (the CUDA ones only in a CUDA build), reference excluded.
[[nodiscard]] const std::vector<BackendMode>& backend_modes();
// CpuOps in f64: what every mode is compared with.
[[nodiscard]] const BackendMode& reference_mode();
// TAILOR_REQUIRE_GPU=1: a CUDA mode that cannot run fails instead of skipping.
[[nodiscard]] bool gpu_required();
// The normwise relative error a mode must stay under against the f64 reference.
[[nodiscard]] double tolerance(DType storage);

// ---- running a case ----------------------------------------------------------------------------

[[nodiscard]] DType dtype_of(Kind kind, DType storage);

// Host images of a case's tensors in the dtypes of one storage mode: inputs filled by their
// `init` (deterministic), outputs and saved tensors NaN.
[[nodiscard]] std::vector<HostTensor> make_inputs(const OpCase& c, DType storage);
// The same values in f64 (kF32 and kI32 tensors keep their dtype): the reference's inputs.
[[nodiscard]] std::vector<HostTensor> widen_to_f64(const OpCase& c,
                                                   const std::vector<HostTensor>& inputs);

// What a run left behind, read back to the host.
struct RunResult {
  std::vector<std::vector<double>> values;  // every tensor's elements, widened to double
  std::optional<double> value;              // the op's return value
  std::vector<std::string> broken_guards;   // tensors whose guard bands were overwritten
  std::vector<std::string> changed_inputs;  // kIn tensors whose bytes changed
};

// A case's tensors in one backend's memory, each between guard bands (kGuardBytes of a known
// pattern on either side, as ops_test_util's HostTensor keeps them on the host).
class PlacedCase {
 public:
  // Uploads `images` (from make_inputs or widen_to_f64) through Ops::copy; `c` and `ops` must
  // outlive this.
  PlacedCase(const OpCase& c, Ops& ops, const std::vector<HostTensor>& images);
  void setup();                 // the case's setup, if any
  std::optional<double> run();  // the op, once; queued work is not waited for
  [[nodiscard]] RunResult read_back() const;

 private:
  const OpCase* case_;
  Ops* ops_;
  std::vector<HostTensor> frames_;  // what was uploaded: guard | image | guard
  std::vector<Buffer> buffers_;
  Args args_;
};

// Setup, one run and the read-back.
[[nodiscard]] RunResult run_case(const OpCase& c, Ops& ops, const std::vector<HostTensor>& images);

// Bytes an op run moves at least: each tensor's touched part read or written once (in-place
// ones twice).
[[nodiscard]] double bytes_moved(const OpCase& c, DType storage);

}  // namespace tailor::backend::test
