// The schema as tables: one table per config section, one row (Field) per key.
//
// A row names the key, the member of the section's struct it fills, its type (with its range, its
// choices or whether it is required), whether a resumed run may change it, and a one-line doc;
// optionally a check run once the value has been read and found valid (rules about this value,
// perhaps against keys read before it), and a condition under which to_yaml writes it. The same
// rows drive load_config (keys read and checked in table order; any other key is unknown),
// to_yaml (keys written in table order), resume_conflicts (the resume rule) and the test that
// docs/config-reference.md documents every key.
//
// Defaults are the members' initializers in config.h: `S{}` is the default of every row, so a
// config built in code is valid as it stands, and there is no second list of defaults to drift
// (schema_keys() reads them from there for the docs test).
//
// Keys whose value has a structure of its own (data.train, data.template, optimizer.betas,
// peft.target_modules, prompt_search.candidates) are rows of a custom type whose read and write
// are explicit code beside the table; so are rules across sections (cross_field_rules.h).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "config/config.h"
#include "config/enum_names.h"
#include "config/schema_reader.h"
#include "config/yaml_writer.h"

namespace tailor::config {

// Whether a resumed run may give the key another value than its checkpoint's config.
enum class Resume { kFixed, kMayChange };

// What a custom read needs besides the reader of its section.
struct ReadContext {
  SchemaReader& reader;
  Problems& problems;
  const std::string& file;
  const ExperimentConfig& config;  // the sections read before this one are filled in
};

// How one key of section struct S is read and written.
template <typename S>
struct KeyType {
  std::string_view name;  // as in the reference's Type column
  Presence presence = Presence::kOptional;
  std::vector<std::string_view> choices;  // the names a choice accepts
  // Reads the key into S when given; true when it was given and valid.
  std::function<bool(ReadContext&, std::string_view key, S&)> read;
  // Writes "  key: value" (and any block below it).
  std::function<void(YamlWriter&, std::string_view key, const S&)> write;
};

template <typename S>
struct Field {
  using Check = void (*)(SchemaReader&, const std::string& path, const S&);
  using Condition = bool (*)(const S&);
  using Note = std::string (*)(const S&);

  std::string_view key;
  KeyType<S> type;
  Resume resume = Resume::kFixed;
  std::string_view doc;
  Check check = nullptr;        // after a valid read
  Condition written = nullptr;  // to_yaml writes the key only when this holds (null: always)
  Note omitted_note = nullptr;  // a comment to_yaml writes in its place when it does not

  [[nodiscard]] Field checked_by(Check c) && {
    check = c;
    return std::move(*this);
  }
  [[nodiscard]] Field written_if(Condition when, Note note = nullptr) && {
    written = when;
    omitted_note = note;
    return std::move(*this);
  }
};

template <typename S>
class SectionReader;

template <typename S>
struct Section {
  std::string_view name;
  S ExperimentConfig::*member;
  std::vector<Field<S>> fields;
  // Explicit code where the order of reading matters (model.path, model.family); null: every row
  // in table order.
  void (*read)(SectionReader<S>&) = nullptr;
  // Which keys to_yaml writes when that depends on the section as a whole (model.path); null:
  // every row whose own condition holds.
  bool (*writes_key)(const S&, std::string_view key) = nullptr;
  // to_yaml writes the section only when this holds (null: always).
  bool (*written)(const S&) = nullptr;
};

// ---- key types ----

template <typename S, std::signed_integral T>
[[nodiscard]] KeyType<S> integer(T S::*member, IntRange range,
                                 Presence presence = Presence::kOptional) {
  return {"int",
          presence,
          {},
          [=](ReadContext& c, std::string_view key, S& s) {
            std::int64_t v = s.*member;
            if (!c.reader.read_int(key, v, range, presence)) return false;
            s.*member = static_cast<T>(v);
            return true;
          },
          [=](YamlWriter& w, std::string_view key, const S& s) {
            w.line(key, fmt::format("{}", s.*member));
          }};
}

// An integer or the word `auto`, held as 0.
template <typename S>
[[nodiscard]] KeyType<S> integer_or_auto(std::int64_t S::*member, IntRange range) {
  return {"int or `auto`",
          Presence::kOptional,
          {},
          [=](ReadContext& c, std::string_view key, S& s) {
            return c.reader.read_int_or_auto(key, s.*member, range);
          },
          [=](YamlWriter& w, std::string_view key, const S& s) {
            w.line(key, s.*member == 0 ? std::string("auto") : fmt::format("{}", s.*member));
          }};
}

template <typename S>
[[nodiscard]] KeyType<S> unsigned_integer(std::uint64_t S::*member) {
  return {"int",
          Presence::kOptional,
          {},
          [=](ReadContext& c, std::string_view key, S& s) {
            return c.reader.read_uint(key, s.*member);
          },
          [=](YamlWriter& w, std::string_view key, const S& s) {
            w.line(key, fmt::format("{}", s.*member));
          }};
}

template <typename S>
[[nodiscard]] KeyType<S> real(double S::*member, FloatRange range,
                              Presence presence = Presence::kOptional) {
  return {
      "float",
      presence,
      {},
      [=](ReadContext& c, std::string_view key, S& s) {
        return c.reader.read_float(key, s.*member, range, presence);
      },
      [=](YamlWriter& w, std::string_view key, const S& s) { w.line(key, yaml_float(s.*member)); }};
}

template <typename S>
[[nodiscard]] KeyType<S> boolean(bool S::*member) {
  return {"bool",
          Presence::kOptional,
          {},
          [=](ReadContext& c, std::string_view key, S& s) {
            return c.reader.read_bool(key, s.*member);
          },
          [=](YamlWriter& w, std::string_view key, const S& s) {
            w.line(key, s.*member ? "true" : "false");
          }};
}

// Required strings must also be non-empty.
template <typename S>
[[nodiscard]] KeyType<S> text(std::string S::*member, Presence presence = Presence::kOptional) {
  return {"string",
          presence,
          {},
          [=](ReadContext& c, std::string_view key, S& s) {
            return c.reader.read_string(key, s.*member, presence);
          },
          [=](YamlWriter& w, std::string_view key, const S& s) {
            w.line(key, yaml_string(s.*member));
          }};
}

// One of the names of E's table (choices.h).
template <typename S, NamedEnum E>
[[nodiscard]] KeyType<S> choice(E S::*member) {
  return {"choice", Presence::kOptional, names_of<E>(),
          [=](ReadContext& c, std::string_view key, S& s) {
            std::size_t index = 0;
            if (!c.reader.read_choice(key, names_of<E>(), index)) return false;
            s.*member = value_at<E>(index);
            return true;
          },
          [=](YamlWriter& w, std::string_view key, const S& s) {
            w.line(key, yaml_string(name_of(s.*member)));
          }};
}

// A key with a structure of its own: `read` looks the key up, checks it and reports its problems
// itself (the row's read then counts as valid); `write` writes its line and any block below it.
template <typename S>
[[nodiscard]] KeyType<S> custom(std::string_view type_name, Presence presence,
                                void (*read)(ReadContext&, S&),
                                void (*write)(YamlWriter&, const S&)) {
  return {type_name,
          presence,
          {},
          [=](ReadContext& c, std::string_view, S& s) {
            read(c, s);
            return true;
          },
          [=](YamlWriter& w, std::string_view, const S& s) { write(w, s); }};
}

// ---- reading a section ----

template <typename S>
class SectionReader {
 public:
  SectionReader(const Section<S>& section, ReadContext& ctx, S& out)
      : section_(section), ctx_(ctx), out_(out), done_(section.fields.size(), false) {}

  [[nodiscard]] S& value() { return out_; }
  [[nodiscard]] SchemaReader& reader() { return ctx_.reader; }

  // Reads the row of `key`, then runs its check if the value is valid. True when the key was
  // given and valid.
  bool read(std::string_view key) { return read_row(index_of(key)); }

  // Reads every row not read yet, in table order, except `skip`.
  void read_rest(std::initializer_list<std::string_view> skip = {}) {
    for (std::size_t i = 0; i < done_.size(); ++i)
      if (!done_[i] && !contains(skip, section_.fields[i].key)) read_row(i);
  }

  // The rows not read yet, except `skip`, must not be given: each one that is is reported with
  // `reason` (they are still keys of the schema, so not "unknown").
  void refuse_rest(std::initializer_list<std::string_view> skip, std::string_view reason) {
    for (std::size_t i = 0; i < done_.size(); ++i) {
      const std::string_view key = section_.fields[i].key;
      if (done_[i] || contains(skip, key)) continue;
      done_[i] = true;
      if (ctx_.reader.read_node(key) != nullptr) ctx_.reader.problem(path(key), reason);
    }
  }

 private:
  static bool contains(std::initializer_list<std::string_view> keys, std::string_view key) {
    for (std::string_view k : keys)
      if (k == key) return true;
    return false;
  }

  std::size_t index_of(std::string_view key) const {
    for (std::size_t i = 0; i < section_.fields.size(); ++i)
      if (section_.fields[i].key == key) return i;
    TAILOR_ASSERT(false, "{} has no key {}", section_.name, key);
    return 0;
  }

  std::string path(std::string_view key) const { return fmt::format("{}.{}", section_.name, key); }

  bool read_row(std::size_t i) {
    done_[i] = true;
    const Field<S>& f = section_.fields[i];
    const bool ok = f.type.read(ctx_, f.key, out_);
    if (ok && f.check != nullptr) f.check(ctx_.reader, path(f.key), out_);
    return ok;
  }

  const Section<S>& section_;
  ReadContext& ctx_;
  S& out_;
  std::vector<bool> done_;
};

}  // namespace tailor::config
