// Fuzz entry point for reading a training checkpoint: a small committed checkpoint
// (tests/golden/peft/tailor_prompt/checkpoint: manifest.json, config.yaml, state-rank0.json and
// one HDF5 model shard) with one of its files replaced by the fuzzer's bytes, then the public
// inspection entry point (`tailor inspect`: manifest, SHA-256 of every file, rank state, the HDF5
// shards' tensors and hyperslabs) and its report.
//
// Input: byte 0 picks the file (mod 4: manifest.json, model-tp0-of-1.h5, state-rank0.json,
// config.yaml), the rest is its new content. When a file other than the manifest is replaced, the
// manifest is rewritten with its true size and SHA-256, so the bytes get past verification into
// the HDF5, JSON and YAML readers behind it (a checkpoint damaged after it was written is the
// other case, covered by the manifest's own mutations). Success or a UserError are acceptable;
// problems found after the manifest are reported in the inspection, not thrown.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "checkpoint/inspect.h"
#include "core/error.h"
#include "core/sha256.h"
#include "fuzz_util.h"

namespace {

const char* const kFiles[] = {"manifest.json", "model-tp0-of-1.h5", "state-rank0.json", "config.yaml"};
const std::string kSource = TAILOR_SOURCE_DIR "/tests/golden/peft/tailor_prompt/checkpoint";

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  if (size == 0) return 0;
  const std::string dir = tailor::fuzz::scratch_dir() + "/step_10";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* name : kFiles) fs::copy_file(kSource + "/" + name, dir + "/" + name);
  const std::string target = kFiles[data[0] % 4];
  const std::string_view bytes = tailor::fuzz::as_text(data + 1, size - 1);
  tailor::fuzz::write_file(dir + "/" + target, bytes);
  if (target != "manifest.json") {
    nlohmann::json m = nlohmann::json::parse(read_bytes(kSource + "/manifest.json"));
    for (nlohmann::json& f : m["files"])
      if (f["name"] == target) {
        f["bytes"] = bytes.size();
        f["sha256"] = tailor::sha256_hex(bytes);
      }
    tailor::fuzz::write_file(dir + "/manifest.json", m.dump(2));
  }
  try {
    const tailor::checkpoint::Inspection inspection = tailor::checkpoint::inspect_checkpoint(dir);
    (void)tailor::checkpoint::format_inspection(inspection);
  } catch (const tailor::UserError&) {
  }
  return 0;
}
