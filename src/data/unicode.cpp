// General categories, combining classes and UTF-8 coding over the generated tables
// (unicode/unicode_tables.inc). Lookups are binary searches over run-length tables, with an ASCII
// fast path; see unicode.h for the semantics.
#include "data/unicode.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace tailor::data::unicode {
namespace tables {

struct CategoryRange {
  std::uint32_t first;
  std::uint8_t category;
};
struct CombiningClassRange {
  std::uint32_t first;
  std::uint8_t ccc;
};
struct Decomposition {
  std::uint32_t cp, first, second;
};
struct Composition {
  std::uint32_t first, second, composite;
};

#include "data/unicode/unicode_tables.inc"

}  // namespace tables

namespace {

constexpr std::array<std::string_view, 30> kCategoryNames = {
    "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
    "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"};

template <typename Range, std::size_t N>
const Range& find_run(const Range (&runs)[N], char32_t cp) {
  // The last run whose first <= cp; runs[0].first == 0, so it always exists.
  const Range* it = std::upper_bound(std::begin(runs), std::end(runs), std::uint32_t{cp},
                                     [](std::uint32_t v, const Range& r) { return v < r.first; });
  return *(it - 1);
}

}  // namespace

std::string_view unicode_version() noexcept { return tables::kUnicodeVersion; }

GeneralCategory general_category(char32_t cp) noexcept {
  if (cp > 0x10FFFF) return GeneralCategory::kCn;
  return static_cast<GeneralCategory>(find_run(tables::kGeneralCategoryRanges, cp).category);
}

MajorCategory major_category(GeneralCategory c) noexcept {
  switch (c) {
    case GeneralCategory::kLu:
    case GeneralCategory::kLl:
    case GeneralCategory::kLt:
    case GeneralCategory::kLm:
    case GeneralCategory::kLo:
      return MajorCategory::kLetter;
    case GeneralCategory::kMn:
    case GeneralCategory::kMc:
    case GeneralCategory::kMe:
      return MajorCategory::kMark;
    case GeneralCategory::kNd:
    case GeneralCategory::kNl:
    case GeneralCategory::kNo:
      return MajorCategory::kNumber;
    case GeneralCategory::kPc:
    case GeneralCategory::kPd:
    case GeneralCategory::kPs:
    case GeneralCategory::kPe:
    case GeneralCategory::kPi:
    case GeneralCategory::kPf:
    case GeneralCategory::kPo:
      return MajorCategory::kPunctuation;
    case GeneralCategory::kSm:
    case GeneralCategory::kSc:
    case GeneralCategory::kSk:
    case GeneralCategory::kSo:
      return MajorCategory::kSymbol;
    case GeneralCategory::kZs:
    case GeneralCategory::kZl:
    case GeneralCategory::kZp:
      return MajorCategory::kSeparator;
    default:
      return MajorCategory::kOther;
  }
}

std::string_view category_name(GeneralCategory c) noexcept {
  return kCategoryNames[static_cast<std::size_t>(c)];
}

bool is_letter(char32_t cp) noexcept {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return major_category(cp) == MajorCategory::kLetter;
}

bool is_number(char32_t cp) noexcept {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return major_category(cp) == MajorCategory::kNumber;
}

bool is_whitespace(char32_t cp) noexcept {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  if (cp == 0x85) return true;
  const GeneralCategory c = general_category(cp);
  return c == GeneralCategory::kZs || c == GeneralCategory::kZl || c == GeneralCategory::kZp;
}

std::uint8_t combining_class(char32_t cp) noexcept {
  if (cp < 0x300 || cp > 0x10FFFF) return 0;
  return find_run(tables::kCombiningClassRanges, cp).ccc;
}

// ---- UTF-8 ------------------------------------------------------------------------------------

namespace {

// Length of the valid sequence at s[pos], or 0 when it is invalid (Unicode Table 3-7).
std::size_t valid_sequence_length(std::string_view s, std::size_t pos) noexcept {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(pos);
  const std::size_t left = s.size() - pos;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && (b(pos + 1) & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char c1 = b(pos + 1);
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return c1 >= lo && c1 <= hi && (b(pos + 2) & 0xC0) == 0x80 ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char c1 = b(pos + 1);
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return c1 >= lo && c1 <= hi && (b(pos + 2) & 0xC0) == 0x80 && (b(pos + 3) & 0xC0) == 0x80 ? 4
                                                                                              : 0;
  }
  return 0;
}

// Length of the maximal subpart of an ill-formed sequence starting at s[pos]: the longest prefix
// of a well-formed sequence (at least 1), as from_utf8_lossy replaces it by one U+FFFD.
std::size_t maximal_subpart_length(std::string_view s, std::size_t pos) noexcept {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(pos);
  std::size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 1;
  }
  std::size_t len = 1;
  for (std::size_t k = 0; k < need && pos + len < s.size(); ++k) {
    const unsigned char t = b(pos + len);
    const bool ok = k == 0 ? (t >= lo && t <= hi) : (t & 0xC0) == 0x80;
    if (!ok) break;
    ++len;
  }
  return len;
}

}  // namespace

std::optional<std::size_t> find_invalid_utf8(std::string_view s) noexcept {
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const std::size_t n = valid_sequence_length(s, pos);
    if (n == 0) return pos;
    pos += n;
  }
  return std::nullopt;
}

char32_t next_code_point(std::string_view s, std::size_t& pos) noexcept {
  const auto b = [&](std::size_t i) {
    return static_cast<char32_t>(static_cast<unsigned char>(s[i]));
  };
  const char32_t c = b(pos);
  if (c < 0x80) {
    pos += 1;
    return c;
  }
  if (c < 0xE0) {
    const char32_t cp = ((c & 0x1F) << 6) | (b(pos + 1) & 0x3F);
    pos += 2;
    return cp;
  }
  if (c < 0xF0) {
    const char32_t cp = ((c & 0x0F) << 12) | ((b(pos + 1) & 0x3F) << 6) | (b(pos + 2) & 0x3F);
    pos += 3;
    return cp;
  }
  const char32_t cp = ((c & 0x07) << 18) | ((b(pos + 1) & 0x3F) << 12) |
                      ((b(pos + 2) & 0x3F) << 6) | (b(pos + 3) & 0x3F);
  pos += 4;
  return cp;
}

std::optional<std::u32string> decode_utf8(std::string_view s, std::size_t* error_offset) {
  if (const auto bad = find_invalid_utf8(s)) {
    if (error_offset != nullptr) *error_offset = *bad;
    return std::nullopt;
  }
  std::u32string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) out.push_back(next_code_point(s, pos));
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t cp : cps) append_utf8(out, cp);
  return out;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::size_t n = valid_sequence_length(bytes, pos);
    if (n > 0) {
      out.append(bytes.substr(pos, n));
      pos += n;
    } else {
      out.append("\xEF\xBF\xBD");
      pos += maximal_subpart_length(bytes, pos);
    }
  }
  return out;
}

// ---- normalization ----------------------------------------------------------------------------

namespace {

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

const tables::Decomposition* find_decomposition(char32_t cp) noexcept {
  const auto& d = tables::kCanonicalDecompositions;
  const auto* it =
      std::lower_bound(std::begin(d), std::end(d), std::uint32_t{cp},
                       [](const tables::Decomposition& x, std::uint32_t v) { return x.cp < v; });
  return it != std::end(d) && it->cp == cp ? it : nullptr;
}

void decompose(char32_t cp, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (const auto* d = find_decomposition(cp)) {
    decompose(d->first, out);
    if (d->second != 0) decompose(d->second, out);
    return;
  }
  out.push_back(cp);
}

std::optional<char32_t> compose_pair(char32_t a, char32_t b) noexcept {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto& c = tables::kCanonicalCompositions;
  const auto* it =
      std::lower_bound(std::begin(c), std::end(c), std::pair{a, b},
                       [](const tables::Composition& x, std::pair<char32_t, char32_t> v) {
                         return x.first != v.first ? x.first < v.first : x.second < v.second;
                       });
  if (it != std::end(c) && it->first == a && it->second == b) return it->composite;
  return std::nullopt;
}

}  // namespace

std::u32string nfd(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t cp : text) decompose(cp, out);
  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  std::size_t i = 0;
  while (i < out.size()) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    std::stable_sort(
        out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(j),
        [](char32_t x, char32_t y) { return combining_class(x) < combining_class(y); });
    i = j;
  }
  return out;
}

std::u32string nfc(std::u32string_view text) {
  std::u32string d = nfd(text);
  // Canonical composition (UAX #15, D117): each character C is combined with the last starter S
  // when C is not blocked from S and the pair has a primary composite.
  std::u32string out;
  out.reserve(d.size());
  std::optional<std::size_t> starter;  // index in `out` of the last starter
  int last_ccc = -1;                   // class of the last character appended after the starter
  for (char32_t c : d) {
    const int ccc = combining_class(c);
    if (starter) {
      const bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= ccc);
      if (!blocked) {
        if (const auto comp = compose_pair(out[*starter], c)) {
          out[*starter] = *comp;
          continue;
        }
      }
    }
    if (ccc == 0) {
      starter = out.size();
      last_ccc = -1;
    } else {
      last_ccc = ccc;
    }
    out.push_back(c);
  }
  return out;
}

std::string nfc_utf8(std::string_view text) {
  bool all_below = true;
  for (char ch : text) {
    const auto b = static_cast<unsigned char>(ch);
    // Lead bytes >= 0xCC start code points >= U+0300.
    if (b >= 0xCC && (b & 0xC0) != 0x80) {
      all_below = false;
      break;
    }
  }
  if (all_below) return std::string(text);
  std::u32string cps;
  cps.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) cps.push_back(next_code_point(text, pos));
  return encode_utf8(nfc(cps));
}

}  // namespace tailor::data::unicode
