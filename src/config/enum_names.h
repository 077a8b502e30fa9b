// Names of the values of a config choice (an enum class), in one table per enum.
//
// A key that takes one of a fixed set of words (peft.method, runtime.device, ...) is an enum class
// with a specialisation of EnumNames listing each value with its name. That one table is what the
// parser accepts, what to_yaml writes, what "must be one of ..." lists (in the table's order) and
// what fmt prints, so the words live in one place and the rest of Tailor compares enum values.
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"

namespace tailor::config {

// Specialised beside each enum: `static constexpr std::pair<E, std::string_view> kNames[]`.
template <typename E>
struct EnumNames;

template <typename E>
concept NamedEnum = std::is_enum_v<E> && requires {
  EnumNames<E>::kNames;
};

template <NamedEnum E>
[[nodiscard]] std::string_view name_of(E value) {
  for (const auto& [e, name] : EnumNames<E>::kNames)
    if (e == value) return name;
  TAILOR_ASSERT(false, "enum value {} has no name", static_cast<int>(value));
  return {};
}

template <NamedEnum E>
[[nodiscard]] constexpr std::optional<E> from_name(std::string_view name) {
  for (const auto& [e, n] : EnumNames<E>::kNames)
    if (n == name) return e;
  return std::nullopt;
}

// The names in table order (what messages list).
template <NamedEnum E>
[[nodiscard]] std::vector<std::string_view> names_of() {
  std::vector<std::string_view> out;
  for (const auto& entry : EnumNames<E>::kNames) out.push_back(entry.second);
  return out;
}

// The value at `index` of the table (the index read_choice returns).
template <NamedEnum E>
[[nodiscard]] E value_at(std::size_t index) {
  return std::span(EnumNames<E>::kNames)[index].first;
}

// gtest and streams print the name (gtest finds this by argument-dependent lookup).
template <NamedEnum E>
std::ostream& operator<<(std::ostream& os, E value) {
  return os << name_of(value);
}

}  // namespace tailor::config

// fmt prints the name, so messages such as "runtime.device {}" read as the config does.
template <tailor::config::NamedEnum E>
struct fmt::formatter<E> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(E value, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(tailor::config::name_of(value), ctx);
  }
};
