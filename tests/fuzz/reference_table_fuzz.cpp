// Fuzz entry point for DPO's cached reference log-probabilities (objective/reference.h
// ReferenceTable::load): any bytes as a reference-<key>.bin beside the tokenized data. A
// UserError naming the file, or a table whose every stored key is found again with its value;
// never a crash, a hang or an allocation the file's size does not justify.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "fuzz_util.h"
#include "objective/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = tailor::fuzz::scratch_dir() + "/reference-fuzz.bin";
  tailor::fuzz::write_file(path, tailor::fuzz::as_text(data, size));
  try {
    const std::optional<tailor::objective::ReferenceTable> t =
        tailor::objective::ReferenceTable::load(path);
    if (!t) throw std::logic_error("an existing file read as no table");
    // A loaded table holds the file's entries: 16 bytes of magic, a count, 16 bytes per entry.
    if (size != 24 + 16 * t->size()) throw std::logic_error("a table of the wrong size loaded");
    for (std::size_t i = 0; i < t->size(); ++i) {
      std::uint64_t key = 0;
      double value = 0.0;
      std::memcpy(&key, data + 24 + 16 * i, sizeof key);
      std::memcpy(&value, data + 32 + 16 * i, sizeof value);
      const std::optional<double> got = t->find(key);
      if (!got || (std::memcmp(&*got, &value, sizeof value) != 0 && !std::isnan(value)))
        throw std::logic_error("a stored entry is not found with its value");
    }
  } catch (const tailor::UserError&) {
  }
  return 0;
}
