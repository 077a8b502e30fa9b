// Fuzz entry point for PEFT adapter directories (`--adapter`, peft/registry.h method_from_adapter):
// any bytes as adapter_config.json beside a real adapter_model.safetensors (Tailor's prompt-tuning
// export), for the tiny golden LLaMA's model spec. The method its peft_type names reads the
// config and must refuse what it does not support with a UserError, or return the method.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "checkpoint/hf_model.h"
#include "core/error.h"
#include "fuzz_util.h"
#include "peft/registry.h"

namespace {

const std::string kGolden = TAILOR_SOURCE_DIR "/tests/golden";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  static const tailor::model::ModelSpec spec =
      tailor::checkpoint::read_hf_config(kGolden + "/models/llama").spec;
  const std::string dir = tailor::fuzz::scratch_dir() + "/adapter";
  if (!fs::exists(dir + "/adapter_model.safetensors")) {
    fs::create_directories(dir);
    fs::copy_file(kGolden + "/peft/tailor_prompt/adapter_model.safetensors",
                  dir + "/adapter_model.safetensors");
  }
  tailor::fuzz::write_file(dir + "/adapter_config.json", tailor::fuzz::as_text(data, size));
  try {
    (void)tailor::peft::method_from_adapter(dir, spec);
  } catch (const tailor::UserError&) {
  }
  return 0;
}
