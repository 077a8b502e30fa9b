// libFuzzer entry point for the safetensors header parser (checkpoint/safetensors_header.h).
//
// Contract under test: for ANY bytes, parse_header either throws tailor::UserError or returns a
// header whose invariants hold (every tensor inside the data section, sizes consistent, no two
// tensors sharing bytes, names valid and unique). Any other exception, a crash, a sanitizer report
// or a hang is a bug. A broken invariant throws std::logic_error, which libFuzzer reports as a crash
// (uncaught exception -> abort) and the replay test reports as a failure.
//
// This file is compiled twice: into safetensors_header_fuzz (Clang only, -fsanitize=fuzzer with
// ASan/UBSan; see tests/fuzz/CMakeLists.txt for how to run it) and into the g++-buildable
// safetensors_fuzz_replay_test, which calls LLVMFuzzerTestOneInput on the seed corpus and on
// deterministic mutations of it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "checkpoint/safetensors_header.h"
#include "core/error.h"

namespace {

using tailor::checkpoint::SafetensorsHeader;

void require(bool ok, const char* what) {
  if (!ok) throw std::logic_error(std::string("safetensors header invariant broken: ") + what);
}

void check_invariants(const SafetensorsHeader& h, std::size_t file_size) {
  namespace ck = tailor::checkpoint;
  require(h.data_start >= 8 && h.data_start <= file_size, "data_start inside the file");
  require(h.data_size == file_size - h.data_start, "data_size");
  std::unordered_set<std::string> names;
  std::vector<const ck::SafetensorsTensorInfo*> filled;
  for (const ck::SafetensorsTensorInfo& t : h.tensors) {
    require(ck::tensor_name_problem(t.name).empty(), "valid name");
    require(names.insert(t.name).second, "unique name");
    require(t.shape.size() <= static_cast<std::size_t>(ck::kMaxTensorRank), "rank");
    const ck::SafetensorsDType* dt = ck::find_safetensors_dtype(t.dtype);
    require(dt != nullptr, "known dtype");
    require(t.element == dt->tailor, "element type");
    std::int64_t numel = 1;
    for (std::int64_t d : t.shape) {
      require(d >= 0, "non-negative dimension");
      numel *= d;  // cannot overflow: the parser checked the product
    }
    require(numel == t.numel, "numel");
    require(t.data_begin <= t.data_end && t.data_end <= h.data_size, "offsets inside the data");
    const auto bits = static_cast<std::uint64_t>(numel) * static_cast<std::uint64_t>(dt->bits);
    require(bits % 8 == 0 && bits / 8 == t.bytes(), "byte size");
    if (t.bytes() > 0) filled.push_back(&t);
  }
  std::sort(filled.begin(), filled.end(), [](const auto* a, const auto* b) { return a->data_begin < b->data_begin; });
  for (std::size_t i = 1; i < filled.size(); ++i)
    require(filled[i - 1]->data_end <= filled[i]->data_begin, "no overlap");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    check_invariants(tailor::checkpoint::parse_header(bytes, "fuzz.safetensors"), size);
  } catch (const tailor::UserError&) {
    // Bad input, reported as it should be.
  }
  return 0;
}
