// FLORES-200 language codes (ISO 639-3 language + ISO 15924 script, e.g. `eng_Latn`) and their
// English names: translation records name their languages by these codes, and translation
// templates print the names ("Translate from English to German").
#pragma once

#include <optional>
#include <string_view>

namespace tailor::data {

// The English name of a FLORES-200 code, or nullopt when the code is not one of the 204.
[[nodiscard]] std::optional<std::string_view> flores_language_name(std::string_view code);

// Number of codes in the table (204: FLORES-200's languages, several in two scripts).
[[nodiscard]] std::size_t flores_language_count();

}  // namespace tailor::data
