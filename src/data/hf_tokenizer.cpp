// Loading and running Hugging Face tokenizer.json pipelines (see hf_tokenizer.h for the order of
// the stages and docs/tokenizers.md for what is supported). Every component is parsed into a small
// value type at load time, so encode/decode never look at JSON; anything not understood is refused
// at load time with UserError(path, "<component>: reason").
#include "data/hf_tokenizer.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_reader.h"
#include "data/hf_tokenizer_bpe.h"
#include "data/pretokenizer.h"
#include "data/unicode.h"

namespace tailor::data {

using nlohmann::json;

namespace {

constexpr std::string_view kMetaspaceChar = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// ---- pipeline components ----------------------------------------------------------------------

struct Normalizer {
  enum class Kind { kNfc, kPrepend, kReplace };
  Kind kind;
  std::string a;  // Prepend: the prefix; Replace: the pattern
  std::string b;  // Replace: the replacement
};

enum class PrependScheme { kAlways, kFirst, kNever };

struct PreTokenizer {
  enum class Kind { kByteLevel, kSplit, kMetaspace, kDigits };
  Kind kind;
  bool add_prefix_space = false;                   // ByteLevel
  bool use_regex = true;                           // ByteLevel
  SplitPattern pattern = SplitPattern::kGpt2;      // Split (ByteLevel with use_regex: GPT-2)
  std::string replacement;                         // Metaspace
  PrependScheme prepend = PrependScheme::kAlways;  // Metaspace
  bool split = true;                               // Metaspace
  bool individual_digits = false;                  // Digits
};

struct Decoder {
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  Kind kind;
  std::string a;  // Replace: pattern; Strip: the character; Metaspace: the replacement
  std::string b;  // Replace: content
  std::size_t start = 0, stop = 0;                 // Strip
  PrependScheme prepend = PrependScheme::kAlways;  // Metaspace
};

struct AddedToken {
  std::string content;
  std::int32_t id;
  bool special, lstrip, rstrip, normalized;
};

// A piece of the text on its way through the pipeline. `at_start`: it begins at offset 0 of the
// original text (what Metaspace's prepend_scheme "first" looks at).
struct Piece {
  std::string text;
  std::optional<std::int32_t> id;  // set for an added token
  bool at_start;
};

// ---- added-token matching: leftmost, then longest (Aho-Corasick LeftmostLongest in `tokenizers`)

class AddedTokenMatcher {
 public:
  void add(const AddedToken* t) {
    if (t->content.empty()) return;
    tokens_.push_back(t);
  }
  void finish() {
    std::stable_sort(tokens_.begin(), tokens_.end(), [](const AddedToken* x, const AddedToken* y) {
      return x->content.size() > y->content.size();
    });
    for (std::size_t i = 0; i < tokens_.size(); ++i)
      by_first_byte_[static_cast<unsigned char>(tokens_[i]->content[0])].push_back(i);
  }
  [[nodiscard]] bool empty() const noexcept { return tokens_.empty(); }

  // Splits `text` into pieces: added tokens (with id) and the text between them.
  void split(const std::string& text, bool at_start, std::vector<Piece>& out) const {
    if (tokens_.empty()) {
      if (!text.empty()) out.push_back(Piece{text, std::nullopt, at_start});
      return;
    }
    std::size_t done = 0;  // end of the last piece emitted
    std::size_t pos = 0;
    while (pos < text.size()) {
      const AddedToken* hit = nullptr;
      for (std::size_t i : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
        if (std::string_view(text).substr(pos).starts_with(tokens_[i]->content)) {
          hit = tokens_[i];
          break;
        }
      }
      if (hit == nullptr) {
        ++pos;
        continue;
      }
      std::size_t start = pos;
      std::size_t stop = pos + hit->content.size();
      if (hit->lstrip) start = std::max(done, space_start_before(text, start));
      if (hit->rstrip) stop = space_end_after(text, stop);
      if (start > done)
        out.push_back(Piece{text.substr(done, start - done), std::nullopt, at_start && done == 0});
      out.push_back(Piece{hit->content, hit->id, false});
      done = stop;
      pos = stop;
    }
    if (done < text.size())
      out.push_back(Piece{text.substr(done), std::nullopt, at_start && done == 0});
  }

 private:
  static std::size_t space_start_before(std::string_view s, std::size_t end) {
    std::size_t i = end;
    while (i > 0) {
      std::size_t begin = i - 1;
      while (begin > 0 && (static_cast<unsigned char>(s[begin]) & 0xC0) == 0x80) --begin;
      std::size_t p = begin;
      if (!unicode::is_whitespace(unicode::next_code_point(s, p))) break;
      i = begin;
    }
    return i;
  }
  static std::size_t space_end_after(std::string_view s, std::size_t start) {
    std::size_t i = start;
    while (i < s.size()) {
      std::size_t p = i;
      if (!unicode::is_whitespace(unicode::next_code_point(s, p))) break;
      i = p;
    }
    return i;
  }

  std::vector<const AddedToken*> tokens_;  // longest first
  std::array<std::vector<std::size_t>, 256> by_first_byte_;
};

// ---- JSON helpers: every lookup names the key path in its error --------------------------------

class JsonReader {
 public:
  explicit JsonReader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& reason) const { throw UserError(where_, reason); }

  const json& member(const json& obj, const char* key, const std::string& path) const {
    if (!obj.is_object()) fail(fmt::format("{}: expected an object", path));
    const auto it = obj.find(key);
    if (it == obj.end()) fail(fmt::format("{}.{}: missing", path, key));
    return *it;
  }
  std::string string(const json& obj, const char* key, const std::string& path) const {
    const json& v = member(obj, key, path);
    if (!v.is_string()) fail(fmt::format("{}.{}: expected a string", path, key));
    return v.get<std::string>();
  }
  bool boolean(const json& obj, const char* key, const std::string& path, bool fallback) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(fmt::format("{}.{}: expected true or false", path, key));
    return it->get<bool>();
  }
  std::int64_t integer(const json& obj, const char* key, const std::string& path) const {
    const json& v = member(obj, key, path);
    if (!v.is_number_integer()) fail(fmt::format("{}.{}: expected an integer", path, key));
    return v.get<std::int64_t>();
  }
  std::optional<std::string> optional_string(const json& obj, const char* key,
                                             const std::string& path) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) fail(fmt::format("{}.{}: expected a string or null", path, key));
    return it->get<std::string>();
  }
  // {"String": "…"} patterns; a {"Regex": …} one is refused with `component` named.
  std::string string_pattern(const json& obj, const std::string& path,
                             const std::string& component) const {
    const json& p = member(obj, "pattern", path);
    if (p.is_object() && p.contains("String") && p["String"].is_string())
      return p["String"].get<std::string>();
    if (p.is_object() && p.contains("Regex"))
      fail(fmt::format("{}: unsupported {} with a regex pattern", path, component));
    fail(fmt::format("{}.pattern: expected {{\"String\": …}}", path));
  }
  std::string type(const json& obj, const std::string& path) const {
    if (!obj.is_object()) fail(fmt::format("{}: expected an object", path));
    return string(obj, "type", path);
  }

  const std::string& where() const noexcept { return where_; }

 private:
  std::string where_;
};

std::int32_t to_id(const JsonReader& r, std::int64_t v, const std::string& path) {
  if (v < 0 || v > std::numeric_limits<std::int32_t>::max())
    r.fail(fmt::format("{}: id {} is out of range", path, v));
  return static_cast<std::int32_t>(v);
}

// "first" / "always" / "never", or the older add_prefix_space flag.
PrependScheme prepend_scheme(const JsonReader& r, const json& obj, const std::string& path) {
  if (const auto s = r.optional_string(obj, "prepend_scheme", path)) {
    if (*s == "always") return PrependScheme::kAlways;
    if (*s == "first") return PrependScheme::kFirst;
    if (*s == "never") return PrependScheme::kNever;
    r.fail(fmt::format("{}.prepend_scheme: unknown value '{}'", path, *s));
  }
  return r.boolean(obj, "add_prefix_space", path, true) ? PrependScheme::kAlways
                                                        : PrependScheme::kNever;
}

std::string metaspace_replacement(const JsonReader& r, const json& obj, const std::string& path) {
  std::string rep(kMetaspaceChar);
  if (const auto s = r.optional_string(obj, "replacement", path)) rep = *s;
  const auto cps = unicode::decode_utf8(rep);
  if (!cps || cps->size() != 1) r.fail(fmt::format("{}.replacement: expected one character", path));
  return rep;
}

void parse_normalizer(const JsonReader& r, const json& j, const std::string& path,
                      std::vector<Normalizer>& out) {
  if (j.is_null()) return;
  const std::string type = r.type(j, path);
  if (type == "Sequence") {
    const json& list = r.member(j, "normalizers", path);
    if (!list.is_array()) r.fail(fmt::format("{}.normalizers: expected a list", path));
    for (std::size_t i = 0; i < list.size(); ++i)
      parse_normalizer(r, list[i], fmt::format("{}.normalizers[{}]", path, i), out);
  } else if (type == "NFC") {
    out.push_back(Normalizer{Normalizer::Kind::kNfc, {}, {}});
  } else if (type == "Prepend") {
    out.push_back(Normalizer{Normalizer::Kind::kPrepend, r.string(j, "prepend", path), {}});
  } else if (type == "Replace") {
    std::string pattern = r.string_pattern(j, path, "normalizer Replace");
    if (pattern.empty()) r.fail(fmt::format("{}.pattern: empty", path));
    out.push_back(
        Normalizer{Normalizer::Kind::kReplace, std::move(pattern), r.string(j, "content", path)});
  } else {
    r.fail(
        fmt::format("{}: unsupported normalizer '{}' (supported: NFC, Prepend, Replace, "
                    "Sequence)",
                    path, type));
  }
}

void parse_pre_tokenizer(const JsonReader& r, const json& j, const std::string& path,
                         std::vector<PreTokenizer>& out) {
  if (j.is_null()) return;
  const std::string type = r.type(j, path);
  PreTokenizer p{};
  if (type == "Sequence") {
    const json& list = r.member(j, "pretokenizers", path);
    if (!list.is_array()) r.fail(fmt::format("{}.pretokenizers: expected a list", path));
    for (std::size_t i = 0; i < list.size(); ++i)
      parse_pre_tokenizer(r, list[i], fmt::format("{}.pretokenizers[{}]", path, i), out);
    return;
  }
  if (type == "ByteLevel") {
    p.kind = PreTokenizer::Kind::kByteLevel;
    p.add_prefix_space = r.boolean(j, "add_prefix_space", path, true);
    p.use_regex = r.boolean(j, "use_regex", path, true);
    p.pattern = SplitPattern::kGpt2;
  } else if (type == "Split") {
    p.kind = PreTokenizer::Kind::kSplit;
    const json& pat = r.member(j, "pattern", path);
    if (!pat.is_object() || !pat.contains("Regex") || !pat["Regex"].is_string())
      r.fail(
          fmt::format("{}: unsupported Split pattern (only the GPT-2, Llama-3 and Qwen2 "
                      "regexes are supported)",
                      path));
    const auto known = recognise_split_pattern(pat["Regex"].get<std::string>());
    if (!known)
      r.fail(
          fmt::format("{}: unsupported Split regex '{}' (only the GPT-2, Llama-3 and Qwen2 "
                      "regexes are supported)",
                      path, pat["Regex"].get<std::string>()));
    p.pattern = *known;
    const std::string behavior = r.string(j, "behavior", path);
    if (behavior != "Isolated")
      r.fail(
          fmt::format("{}: unsupported Split behavior '{}' (supported: Isolated)", path, behavior));
    if (r.boolean(j, "invert", path, false))
      r.fail(fmt::format("{}: unsupported Split with invert: true", path));
  } else if (type == "Metaspace") {
    p.kind = PreTokenizer::Kind::kMetaspace;
    p.replacement = metaspace_replacement(r, j, path);
    p.prepend = prepend_scheme(r, j, path);
    p.split = r.boolean(j, "split", path, true);
  } else if (type == "Digits") {
    p.kind = PreTokenizer::Kind::kDigits;
    p.individual_digits = r.boolean(j, "individual_digits", path, false);
  } else {
    r.fail(
        fmt::format("{}: unsupported pre-tokenizer '{}' (supported: ByteLevel, Split, "
                    "Metaspace, Digits, Sequence)",
                    path, type));
  }
  out.push_back(std::move(p));
}

void parse_decoder(const JsonReader& r, const json& j, const std::string& path,
                   std::vector<Decoder>& out) {
  if (j.is_null()) return;
  const std::string type = r.type(j, path);
  Decoder d{};
  if (type == "Sequence") {
    const json& list = r.member(j, "decoders", path);
    if (!list.is_array()) r.fail(fmt::format("{}.decoders: expected a list", path));
    for (std::size_t i = 0; i < list.size(); ++i)
      parse_decoder(r, list[i], fmt::format("{}.decoders[{}]", path, i), out);
    return;
  }
  if (type == "ByteLevel") {
    d.kind = Decoder::Kind::kByteLevel;
  } else if (type == "Replace") {
    d.kind = Decoder::Kind::kReplace;
    d.a = r.string_pattern(j, path, "decoder Replace");
    if (d.a.empty()) r.fail(fmt::format("{}.pattern: empty", path));
    d.b = r.string(j, "content", path);
  } else if (type == "ByteFallback") {
    d.kind = Decoder::Kind::kByteFallback;
  } else if (type == "Fuse") {
    d.kind = Decoder::Kind::kFuse;
  } else if (type == "Strip") {
    d.kind = Decoder::Kind::kStrip;
    d.a = r.string(j, "content", path);
    const auto cps = unicode::decode_utf8(d.a);
    if (!cps || cps->size() != 1) r.fail(fmt::format("{}.content: expected one character", path));
    const std::int64_t start = r.integer(j, "start", path);
    const std::int64_t stop = r.integer(j, "stop", path);
    if (start < 0 || stop < 0) r.fail(fmt::format("{}: start and stop must be >= 0", path));
    d.start = static_cast<std::size_t>(start);
    d.stop = static_cast<std::size_t>(stop);
  } else if (type == "Metaspace") {
    d.kind = Decoder::Kind::kMetaspace;
    d.a = metaspace_replacement(r, j, path);
    d.prepend = prepend_scheme(r, j, path);
  } else {
    r.fail(
        fmt::format("{}: unsupported decoder '{}' (supported: ByteLevel, Replace, "
                    "ByteFallback, Fuse, Strip, Metaspace, Sequence)",
                    path, type));
  }
  out.push_back(std::move(d));
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty() || s.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  for (std::size_t hit = s.find(from); hit != std::string::npos; hit = s.find(from, pos)) {
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s, pos);
  s = std::move(out);
}

// A token written as <0xXX> (either case of hex digits), as ByteFallback reads it.
std::optional<std::uint8_t> byte_token(std::string_view t) {
  if (t.size() != 6 || !t.starts_with("<0x") || t.back() != '>') return std::nullopt;
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = hex(t[3]);
  const int lo = hex(t[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<std::uint8_t>(hi * 16 + lo);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path.string(), "cannot open file");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw UserError(path.string(), "cannot read file");
  return buf.str();
}

json parse_json(std::string_view text, const std::string& where) {
  return parse_json_text(text, where);
}

}  // namespace

// ---- the tokenizer -----------------------------------------------------------------------------

struct HfTokenizer::Impl {
  std::string where;
  std::optional<BpeModel> model;
  std::vector<Normalizer> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  std::vector<Decoder> decoders;
  std::vector<AddedToken> added;  // in file order
  TokenMap added_by_content;
  std::unordered_map<std::int32_t, std::size_t> added_by_id;  // index into `added`
  AddedTokenMatcher raw_matcher;              // normalized=false: matched on the raw text
  AddedTokenMatcher normalized_matcher;       // normalized=true: matched after normalization
  std::vector<AddedToken> normalized_tokens;  // normalized=true tokens, content normalized
  std::optional<std::int32_t> bos, eos;

  [[nodiscard]] std::string normalize(std::string text) const;
  void pre_tokenize(Piece piece, std::vector<Piece>& words) const;
  [[nodiscard]] std::vector<std::string> run_decoders(std::vector<std::string> tokens) const;
};

std::string HfTokenizer::Impl::normalize(std::string text) const {
  for (const Normalizer& n : normalizers) {
    switch (n.kind) {
      case Normalizer::Kind::kNfc:
        text = unicode::nfc_utf8(text);
        break;
      case Normalizer::Kind::kPrepend:
        if (!text.empty()) text.insert(0, n.a);
        break;
      case Normalizer::Kind::kReplace:
        replace_all(text, n.a, n.b);
        break;
    }
  }
  return text;
}

void HfTokenizer::Impl::pre_tokenize(Piece piece, std::vector<Piece>& words) const {
  std::vector<Piece> current;
  current.push_back(std::move(piece));
  std::vector<Piece> next;
  for (const PreTokenizer& p : pre_tokenizers) {
    next.clear();
    for (Piece& w : current) {
      const auto emit = [&](const std::vector<std::string_view>& parts) {
        for (std::size_t i = 0; i < parts.size(); ++i)
          next.push_back(Piece{std::string(parts[i]), std::nullopt, w.at_start && i == 0});
      };
      switch (p.kind) {
        case PreTokenizer::Kind::kByteLevel: {
          if (p.add_prefix_space && !w.text.starts_with(' ')) w.text.insert(w.text.begin(), ' ');
          std::vector<std::string_view> parts;
          if (p.use_regex) {
            parts = split_by_pattern(p.pattern, w.text);
          } else if (!w.text.empty()) {
            parts.push_back(w.text);
          }
          for (std::size_t i = 0; i < parts.size(); ++i) {
            Piece out{{}, std::nullopt, w.at_start && i == 0};
            append_byte_level(out.text, parts[i]);
            next.push_back(std::move(out));
          }
          break;
        }
        case PreTokenizer::Kind::kSplit:
          emit(split_by_pattern(p.pattern, w.text));
          break;
        case PreTokenizer::Kind::kDigits:
          emit(split_digits(w.text, p.individual_digits));
          break;
        case PreTokenizer::Kind::kMetaspace: {
          replace_all(w.text, " ", p.replacement);
          const bool prepend = p.prepend == PrependScheme::kAlways ||
                               (p.prepend == PrependScheme::kFirst && w.at_start);
          if (prepend && !w.text.starts_with(p.replacement)) w.text.insert(0, p.replacement);
          if (p.split) {
            emit(split_merged_with_next(w.text, p.replacement));
          } else if (!w.text.empty()) {
            next.push_back(std::move(w));
          }
          break;
        }
      }
    }
    std::swap(current, next);
  }
  for (Piece& w : current)
    if (!w.text.empty()) words.push_back(std::move(w));
}

std::vector<std::string> HfTokenizer::Impl::run_decoders(std::vector<std::string> tokens) const {
  for (const Decoder& d : decoders) {
    switch (d.kind) {
      case Decoder::Kind::kByteLevel: {
        std::string bytes;
        for (const std::string& t : tokens) {
          std::string mapped;
          bool all = true;
          std::size_t pos = 0;
          while (pos < t.size()) {
            const auto b = byte_level_byte(unicode::next_code_point(t, pos));
            if (!b) {
              all = false;
              break;
            }
            mapped.push_back(static_cast<char>(*b));
          }
          bytes += all ? mapped : t;  // a token outside the alphabet passes through as UTF-8
        }
        tokens.assign(1, unicode::utf8_lossy(bytes));
        break;
      }
      case Decoder::Kind::kReplace:
        for (std::string& t : tokens) replace_all(t, d.a, d.b);
        break;
      case Decoder::Kind::kByteFallback: {
        std::vector<std::string> out;
        std::string pending;
        const auto flush = [&] {
          if (pending.empty()) return;
          if (!unicode::find_invalid_utf8(pending)) {
            out.push_back(pending);
          } else {
            for (std::size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
          }
          pending.clear();
        };
        for (std::string& t : tokens) {
          if (const auto b = byte_token(t)) {
            pending.push_back(static_cast<char>(*b));
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens = std::move(out);
        break;
      }
      case Decoder::Kind::kFuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case Decoder::Kind::kStrip:
        for (std::string& t : tokens) {
          std::size_t begin = 0;
          for (std::size_t k = 0; k < d.start && t.compare(begin, d.a.size(), d.a) == 0; ++k)
            begin += d.a.size();
          std::size_t end = t.size();
          for (std::size_t k = 0; k < d.stop && end >= begin + d.a.size() &&
                                  t.compare(end - d.a.size(), d.a.size(), d.a) == 0;
               ++k)
            end -= d.a.size();
          t = t.substr(begin, end - begin);
        }
        break;
      case Decoder::Kind::kMetaspace:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          // Every replacement character of the first token is dropped (not only a leading one)
          // unless prepend_scheme is "never": what `tokenizers` does.
          const bool drop = i == 0 && d.prepend != PrependScheme::kNever;
          replace_all(tokens[i], d.a, drop ? "" : " ");
        }
        break;
    }
  }
  return tokens;
}

HfTokenizer::HfTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::HfTokenizer(HfTokenizer&&) noexcept = default;
HfTokenizer& HfTokenizer::operator=(HfTokenizer&&) noexcept = default;
HfTokenizer::~HfTokenizer() = default;

namespace {

// bos/eos from a TemplateProcessing post-processor: a special token opening the single template is
// BOS, one closing it is EOS.
void ids_from_post_processor(const JsonValue& pp, std::optional<std::string>& bos,
                             std::optional<std::string>& eos) {
  if (!pp.raw().is_object()) return;
  const std::string type = pp.string_or("type", "");
  if (type == "Sequence") {
    if (const auto processors = pp.find("processors"))
      for (const JsonValue& p : processors->elements()) ids_from_post_processor(p, bos, eos);
    return;
  }
  const auto single_json = pp.find("single");
  if (type != "TemplateProcessing" || !single_json) return;
  const std::vector<JsonValue> single = single_json->elements();
  const auto special = [](const JsonValue& item) -> std::optional<std::string> {
    if (!item.raw().is_object()) return std::nullopt;
    const auto token = item.find("SpecialToken");
    if (!token) return std::nullopt;
    return token->at("id").string();
  };
  if (!single.empty()) {
    if (auto s = special(single.front())) bos = s;
    if (single.size() > 1)
      if (auto s = special(single.back())) eos = s;
  }
}

// "bos_token": "<s>" or {"content": "<s>", …} in tokenizer_config.json.
std::optional<std::string> config_token(const json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

HfTokenizer HfTokenizer::from_json(std::string_view json_text, const std::string& where) {
  const json root = parse_json(json_text, where);
  const JsonReader r(where);
  if (!root.is_object()) r.fail("expected a JSON object at the top level");
  auto impl = std::make_unique<Impl>();
  impl->where = where;

  // Model.
  const json& model = r.member(root, "model", "tokenizer");
  if (!model.is_object()) r.fail("model: expected an object");
  const std::string model_type =
      model.contains("type") ? r.string(model, "type", "model")
                             : (model.contains("merges") ? std::string("BPE") : std::string());
  if (model_type != "BPE")
    r.fail(fmt::format("model: unsupported model type '{}' (Tailor reads BPE tokenizers)",
                       model_type.empty() ? "unknown" : model_type));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const auto v = r.optional_string(model, key, "model"); v && !v->empty())
      r.fail(
          fmt::format("model.{}: unsupported (only byte-level and SentencePiece-style BPE)", key));
  }
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    r.fail("model.dropout: unsupported (BPE dropout is for training only)");
  const json& vocab_json = r.member(model, "vocab", "model");
  if (!vocab_json.is_object()) r.fail("model.vocab: expected an object of token: id");
  TokenMap vocab;
  vocab.reserve(vocab_json.size());
  for (const auto& [token, id] : vocab_json.items()) {
    if (!id.is_number_integer())
      r.fail(fmt::format("model.vocab['{}']: expected an integer id", token));
    vocab.emplace(token, to_id(r, id.get<std::int64_t>(), fmt::format("model.vocab['{}']", token)));
  }
  const json& merges_json = r.member(model, "merges", "model");
  if (!merges_json.is_array()) r.fail("model.merges: expected a list");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merges_json.size());
  for (std::size_t i = 0; i < merges_json.size(); ++i) {
    const json& m = merges_json[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const std::size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        r.fail(fmt::format("model.merges[{}]: expected \"left right\", got '{}'", i, s));
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      r.fail(fmt::format("model.merges[{}]: expected \"left right\" or [\"left\", \"right\"]", i));
    }
  }
  BpeModel::Options options;
  options.unk_token = r.optional_string(model, "unk_token", "model");
  options.fuse_unk = r.boolean(model, "fuse_unk", "model", false);
  options.byte_fallback = r.boolean(model, "byte_fallback", "model", false);
  options.ignore_merges = r.boolean(model, "ignore_merges", "model", false);
  try {
    impl->model.emplace(std::move(vocab), merges, std::move(options));
  } catch (const std::invalid_argument& e) {
    r.fail(e.what());
  }

  // Pipeline components.
  if (root.contains("normalizer"))
    parse_normalizer(r, root["normalizer"], "normalizer", impl->normalizers);
  if (root.contains("pre_tokenizer"))
    parse_pre_tokenizer(r, root["pre_tokenizer"], "pre_tokenizer", impl->pre_tokenizers);
  if (root.contains("decoder")) parse_decoder(r, root["decoder"], "decoder", impl->decoders);

  // Added tokens.
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    const json& list = root["added_tokens"];
    if (!list.is_array()) r.fail("added_tokens: expected a list");
    impl->added.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string path = fmt::format("added_tokens[{}]", i);
      const json& t = list[i];
      AddedToken a{
          r.string(t, "content", path),         to_id(r, r.integer(t, "id", path), path + ".id"),
          r.boolean(t, "special", path, false), r.boolean(t, "lstrip", path, false),
          r.boolean(t, "rstrip", path, false),  false};
      a.normalized = r.boolean(t, "normalized", path, !a.special);
      if (r.boolean(t, "single_word", path, false))
        r.fail(fmt::format("{} '{}': single_word is not supported", path, a.content));
      impl->added.push_back(std::move(a));
    }
  }
  for (std::size_t i = 0; i < impl->added.size(); ++i) {
    const AddedToken& a = impl->added[i];
    impl->added_by_content[a.content] = a.id;
    impl->added_by_id[a.id] = i;
  }
  // Normalized added tokens are matched in normalized text, so their content is normalized too.
  impl->normalized_tokens.reserve(impl->added.size());
  for (const AddedToken& a : impl->added) {
    if (!a.normalized) continue;
    AddedToken n = a;
    n.content = impl->normalize(a.content);
    impl->normalized_tokens.push_back(std::move(n));
  }
  for (const AddedToken& a : impl->added)
    if (!a.normalized) impl->raw_matcher.add(&a);
  for (const AddedToken& a : impl->normalized_tokens) impl->normalized_matcher.add(&a);
  impl->raw_matcher.finish();
  impl->normalized_matcher.finish();

  // BOS / EOS: tokenizer_config.json is read by load(); here the post-processor and known names.
  std::optional<std::string> bos, eos;
  if (root.contains("post_processor"))
    ids_from_post_processor(JsonValue(root["post_processor"], where, "post_processor"), bos, eos);
  HfTokenizer tok(std::move(impl));
  const auto known =
      [&](std::initializer_list<std::string_view> names) -> std::optional<std::int32_t> {
    for (std::string_view n : names)
      if (const auto id = tok.token_to_id(n)) return id;
    return std::nullopt;
  };
  tok.impl_->bos = bos ? tok.token_to_id(*bos) : known({"<|begin_of_text|>", "<s>"});
  tok.impl_->eos =
      eos ? tok.token_to_id(*eos) : known({"<|end_of_text|>", "</s>", "<|endoftext|>"});
  return tok;
}

HfTokenizer HfTokenizer::load(const std::filesystem::path& path) {
  HfTokenizer tok = from_json(read_file(path), path.string());
  const std::filesystem::path config = path.parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(config, ec)) {
    const json cfg = parse_json(read_file(config), config.string());
    if (const auto s = config_token(cfg, "bos_token")) tok.impl_->bos = tok.token_to_id(*s);
    if (const auto s = config_token(cfg, "eos_token")) tok.impl_->eos = tok.token_to_id(*s);
  }
  return tok;
}

std::vector<std::int32_t> HfTokenizer::encode(std::string_view text) const {
  if (const auto bad = unicode::find_invalid_utf8(text))
    throw UserError("", fmt::format("text to tokenize is not valid UTF-8 (byte {})", *bad));
  const Impl& m = *impl_;
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 1);

  std::vector<Piece> raw;
  m.raw_matcher.split(std::string(text), /*at_start=*/true, raw);
  std::vector<Piece> pieces;
  std::vector<Piece> words;
  for (Piece& p : raw) {
    if (p.id) {
      ids.push_back(*p.id);
      continue;
    }
    pieces.clear();
    m.normalized_matcher.split(m.normalize(std::move(p.text)), p.at_start, pieces);
    for (Piece& q : pieces) {
      if (q.id) {
        ids.push_back(*q.id);
        continue;
      }
      words.clear();
      m.pre_tokenize(std::move(q), words);
      for (const Piece& w : words) m.model->encode_word(w.text, ids);
    }
  }
  return ids;
}

std::string HfTokenizer::decode(const std::vector<std::int32_t>& ids) const {
  return decode(ids, /*skip_special_tokens=*/false);
}

std::string HfTokenizer::decode(const std::vector<std::int32_t>& ids,
                                bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (std::int32_t id : ids) {
    if (const auto it = m.added_by_id.find(id); it != m.added_by_id.end()) {
      const AddedToken& a = m.added[it->second];
      if (!(skip_special_tokens && a.special)) tokens.push_back(a.content);
      continue;
    }
    if (const std::string* t = m.model->id_to_token(id)) {
      // A vocabulary token whose text is also a special added token counts as special.
      if (skip_special_tokens) {
        const auto it = m.added_by_content.find(*t);
        if (it != m.added_by_content.end() && m.added[m.added_by_id.at(it->second)].special)
          continue;
      }
      tokens.push_back(*t);
    }
  }
  if (m.decoders.empty()) {
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out += tokens[i];
    }
    return out;
  }
  std::string out;
  for (const std::string& t : m.run_decoders(std::move(tokens))) out += t;
  return out;
}

std::int64_t HfTokenizer::vocab_size() const {
  std::int64_t max_id = impl_->model->max_id();
  for (const AddedToken& a : impl_->added) max_id = std::max<std::int64_t>(max_id, a.id);
  return max_id + 1;
}

std::optional<std::int32_t> HfTokenizer::bos_token_id() const { return impl_->bos; }
std::optional<std::int32_t> HfTokenizer::eos_token_id() const { return impl_->eos; }

std::optional<std::int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  if (const auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end())
    return it->second;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> HfTokenizer::id_to_token(std::int32_t id) const {
  if (const auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end())
    return impl_->added[it->second].content;
  if (const std::string* t = impl_->model->id_to_token(id)) return *t;
  return std::nullopt;
}

std::string HfTokenizer::describe() const {
  const Impl& m = *impl_;
  std::string s = fmt::format("BPE {} tokens, {} merges", m.model->size(), m.model->num_merges());
  if (m.model->options().byte_fallback) s += ", byte fallback";
  s += fmt::format("; {} added tokens", m.added.size());
  for (const PreTokenizer& p : m.pre_tokenizers) {
    switch (p.kind) {
      case PreTokenizer::Kind::kByteLevel:
        s += "; ByteLevel";
        break;
      case PreTokenizer::Kind::kSplit:
        s += fmt::format("; Split({})", split_pattern_name(p.pattern));
        break;
      case PreTokenizer::Kind::kMetaspace:
        s += "; Metaspace";
        break;
      case PreTokenizer::Kind::kDigits:
        s += "; Digits";
        break;
    }
  }
  return s;
}

}  // namespace tailor::data
