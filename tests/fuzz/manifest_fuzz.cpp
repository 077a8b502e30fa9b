// Fuzz entry point for the checkpoint manifest (checkpoint/training_checkpoint.h read_manifest):
// any bytes as manifest.json in an otherwise empty checkpoint directory. A UserError naming the
// file, or a manifest; a manifest's listed files are then checked (all missing here), which must
// report problems rather than fail.
#include <cstddef>
#include <cstdint>
#include <string>

#include "checkpoint/training_checkpoint.h"
#include "core/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace ck = tailor::checkpoint;
  const std::string dir = tailor::fuzz::scratch_dir() + "/step_1";
  std::filesystem::create_directories(dir);
  tailor::fuzz::write_file(dir + "/manifest.json", tailor::fuzz::as_text(data, size));
  try {
    const ck::Manifest m = ck::read_manifest(dir);
    (void)ck::check_checkpoint_files(dir, m);
    ck::verify_checkpoint(dir, m);
  } catch (const tailor::UserError&) {
  }
  return 0;
}
