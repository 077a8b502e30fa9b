// The environment variables Tailor reads, in one table. Everything a run depends on belongs in
// its config; the few inputs that come from the environment instead (what the MPI / Slurm
// launcher says about this process, testing hooks, debugging switches) are declared here, each
// with its meaning, and read only through this header, so none is a hidden input: the table is
// the complete list (docs/troubleshooting.md prints it, and a test checks that no other source
// file calls getenv and that every variable is documented).
#pragma once

#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tailor::env {

struct Variable {
  std::string_view name;
  std::string_view meaning;
};

// Every variable read by src/, in the order of docs/troubleshooting.md's table.
[[nodiscard]] std::span<const Variable> variables();

// The value of a declared variable; nullopt when it is unset or empty. Asserts that `name` is in
// the table.
[[nodiscard]] std::optional<std::string> get(std::string_view name);
// Whether a declared variable is exactly "1".
[[nodiscard]] bool is_one(std::string_view name);
// Whether a declared variable is set at all (even empty).
[[nodiscard]] bool is_set(std::string_view name);
// The first of `names` that is set, as a non-negative integer (atoi, clamped at `min`); nullopt
// when none is.
[[nodiscard]] std::optional<int> first_integer(std::initializer_list<std::string_view> names,
                                               int min);

}  // namespace tailor::env
