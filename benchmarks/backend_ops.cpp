// Perf mode of the op registry (tests/backend/op_registry.h): every op of the table at its perf
// shapes (a ~1B-parameter model's layer, cut to what two CPU cores run in seconds), on every
// backend mode this build has (or those named), timed after a warm-up. Prints a table of time per
// call, achieved GB/s (the bytes of every tensor the op touches, read or written once, in-place
// ones twice: a lower bound on its traffic) and TFLOP/s for the ops that are mostly arithmetic,
// then one JSON line. The reference measured in the same run is the machine's own memory
// bandwidth: one large host memcpy; on a GPU, copy_widen in cuda_f32 (an f32 -> f32 copy) is a
// plain device-to-device copy.
//
//   tailor_bench_backend_ops [--op gemm_nn --op rmsnorm_forward] [--backend cpu_f32,cuda_bf16]
//                            [--threads 2] [--min-time 0.3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "op_registry.h"

namespace {

using namespace tailor;
using namespace tailor::backend;
using namespace tailor::backend::test;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Host memcpy of 256 MiB, best of 5: GB/s counting the bytes read and written.
double memcpy_gbps() {
  const std::size_t bytes = std::size_t{256} << 20;
  std::vector<char> a(bytes, 1), b(bytes, 0);
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * static_cast<double>(bytes) / best / 1e9;
}

struct Timing {
  double seconds = 0.0;  // per call
  int calls = 0;
};

// One warm-up call, one timed call to size the loop, then enough calls for `min_time`.
Timing time_case(Ops& ops, PlacedCase& p, double min_time) {
  p.setup();
  (void)p.run();
  ops.synchronize();
  auto t0 = Clock::now();
  (void)p.run();
  ops.synchronize();
  const double once = seconds_since(t0);
  const int calls = std::clamp(static_cast<int>(min_time / std::max(once, 1e-9)), 1, 1000);
  t0 = Clock::now();
  for (int i = 0; i < calls; ++i) (void)p.run();
  ops.synchronize();
  return {seconds_since(t0) / calls, calls};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> ops_wanted, backends_wanted;
  int threads = 2;
  double min_time = 0.3;
  CLI::App app{"Time every op of the registry on every backend (perf mode of backend_ops_test)"};
  app.add_option("--op", ops_wanted, "ops to time (default: all)");
  app.add_option("--backend", backends_wanted,
                 "modes to time: cpu_f32, emulated_f32, "
                 "emulated_bf16, cuda_f32, cuda_bf16, cpu_f64 (default: all but cpu_f64)")
      ->delimiter(',');
  app.add_option("--threads", threads, "CPU threads of the CPU and emulated backends");
  app.add_option("--min-time", min_time, "seconds of timed calls per op and backend");
  CLI11_PARSE(app, argc, argv);

  std::vector<const BackendMode*> modes;
  for (const BackendMode& m : backend_modes())
    if (backends_wanted.empty() ||
        std::count(backends_wanted.begin(), backends_wanted.end(), m.name))
      modes.push_back(&m);
  if (std::count(backends_wanted.begin(), backends_wanted.end(), reference_mode().name))
    modes.push_back(&reference_mode());

  nlohmann::ordered_json j;
  j["benchmark"] = "backend_ops";
  j["threads"] = threads;
  j["memcpy_gbps"] = memcpy_gbps();
  std::printf("reference: host memcpy of 256 MiB, %.1f GB/s (read + write)\n\n",
              j["memcpy_gbps"].get<double>());
  std::printf("%-22s %-14s %-34s %12s %9s %9s\n", "op", "backend", "shape", "us/call", "GB/s",
              "TFLOP/s");
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const BackendMode* mode : modes) {
    std::string why;
    const std::unique_ptr<Ops> ops = mode->make(threads, why);
    if (!ops) {
      std::printf("%-22s %-14s skipped: %s\n", "*", mode->name.c_str(), why.c_str());
      continue;
    }
    j["backends"][mode->name] = ops->describe();
    for (const OpEntry& e : op_table()) {
      if (!ops_wanted.empty() && !std::count(ops_wanted.begin(), ops_wanted.end(), e.name))
        continue;
      const OpCase c = e.make(Scale::kPerf);
      PlacedCase placed(c, *ops, make_inputs(c, mode->storage));
      const Timing t = time_case(*ops, placed, min_time);
      const double gbps = bytes_moved(c, mode->storage) / t.seconds / 1e9;
      const double tflops = c.flops / t.seconds / 1e12;
      std::printf("%-22s %-14s %-34s %12.1f %9.2f %9s\n", e.name, mode->name.c_str(),
                  c.dims.c_str(), t.seconds * 1e6, gbps,
                  c.flops > 0 ? fmt::format("{:.3f}", tflops).c_str() : "-");
      std::fflush(stdout);
      nlohmann::ordered_json row;
      row["op"] = e.name;
      row["backend"] = mode->name;
      row["shape"] = c.dims;
      row["us_per_call"] = t.seconds * 1e6;
      row["calls"] = t.calls;
      row["gbps"] = gbps;
      if (c.flops > 0) row["tflops"] = tflops;
      rows.push_back(row);
    }
  }
  j["results"] = rows;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
