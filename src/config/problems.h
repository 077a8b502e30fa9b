// Locations of config values and the list of problems found in one config.
//
// Every value in the parsed tree carries a Location: a 1-based line:column in the config file, the
// file as a whole (line 0: used for keys that are missing or were filled in by default), or the
// N-th command-line override. Problems are collected instead of thrown so that one run of the
// loader reports everything that is wrong; raise() then throws them as one ConfigError.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tailor::config {

struct Location {
  std::string source;      // the config's file name, or "<override N>"
  int line = 0;            // 1-based; 0 when the location is the whole file or an override
  int column = 0;          // 1-based
  int override_index = 0;  // N >= 1 for "<override N>"; 0 for the file

  [[nodiscard]] static Location whole_file(std::string name);
  [[nodiscard]] static Location in_file(std::string name, int line, int column);
  [[nodiscard]] static Location of_override(int n);

  // "file:line:col", "file" or "<override N>": the prefix of a problem line.
  [[nodiscard]] std::string str() const;
};

class Problems {
 public:
  // One line "where: key_path: reason".
  void add(const Location& where, std::string_view key_path, std::string_view reason);
  // One line "where: reason", for problems that belong to no key (empty file, bad override).
  void add_unkeyed(const Location& where, std::string_view reason);

  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }

  // Throws ConfigError with every problem: those at a position in the file first (by line and
  // column), then those in overrides (by N), then those about the file as a whole; ties keep the
  // order in which they were found. Does nothing when there are none.
  void raise_if_any() const;

 private:
  struct Entry {
    Location where;
    std::string text;
  };
  std::vector<Entry> entries_;
};

}  // namespace tailor::config
