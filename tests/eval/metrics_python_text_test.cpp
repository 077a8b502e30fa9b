// The Python str semantics the metrics rely on (src/eval/python_text.h), on the characters where
// they differ from the obvious ASCII rules. The expectations are Python 3.11's own results.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "eval/python_text.h"

namespace {

namespace py = tailor::eval::py;

TEST(PythonText, SplitUsesStrIsspace) {
  // U+001C..U+001F, U+0085, U+00A0, U+2009, U+202F and U+3000 split; U+200B (zero width) does not.
  const std::string text = "a\x1c" "b\xC2\x85" "c\xC2\xA0" "d\xE2\x80\x89" "e\xE2\x80\xAF" "f\xE3\x80\x80" "g\xE2\x80\x8Bh";
  const std::vector<std::string_view> words = py::split(text);
  ASSERT_EQ(words.size(), 7u);
  EXPECT_EQ(words[0], "a");
  EXPECT_EQ(words[5], "f");
  EXPECT_EQ(words[6], "g\xE2\x80\x8Bh");
  EXPECT_TRUE(py::split(" \t\n ").empty());
}

TEST(PythonText, StripAndRstrip) {
  EXPECT_EQ(py::rstrip("  a b \r\n\xE3\x80\x80"), "  a b");
  EXPECT_EQ(py::strip("\xC2\xA0 a b \t"), "a b");
  EXPECT_EQ(py::strip("   "), "");
  EXPECT_EQ(py::rstrip(""), "");
}

TEST(PythonText, LowerFollowsCpython) {
  EXPECT_EQ(py::lower("ÀÉÎ ÑØ ABC"), "àéî ñø abc");
  EXPECT_EQ(py::lower("\xC4\xB0"), "i\xCC\x87");       // İ -> i + U+0307
  EXPECT_EQ(py::lower("\xE2\x84\xAA"), "k");           // KELVIN SIGN -> ASCII k
  EXPECT_EQ(py::lower("ΟΔΟΣ ΣΑΣ Σ"), "οδος σας σ");    // final sigma only after a cased letter
  EXPECT_EQ(py::lower("ΟΔΟΣ'"), "οδος'");              // ' is case-ignorable, still final
  EXPECT_EQ(py::lower("ΑΣΑ"), "ασα");
  EXPECT_EQ(py::lower("ПРИВЕТ Ёж"), "привет ёж");
}

TEST(PythonText, WordCharsAreUnicodeLettersAndNumbers) {
  EXPECT_TRUE(py::is_word_char(U'_'));
  EXPECT_TRUE(py::is_word_char(U'é'));
  EXPECT_TRUE(py::is_word_char(U'中'));
  EXPECT_TRUE(py::is_word_char(U'٣'));
  EXPECT_FALSE(py::is_word_char(U'-'));
  EXPECT_FALSE(py::is_word_char(0x301));  // combining acute: a mark, not \w in Python
  EXPECT_FALSE(py::is_word_char(U'—'));
}

TEST(PythonText, LengthCountsCodePoints) {
  EXPECT_EQ(py::length("中文"), 2u);
  EXPECT_EQ(py::length("a👍🏽"), 3u);
  EXPECT_EQ(py::length(""), 0u);
}

TEST(PythonText, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(py::valid_utf8("ok"), "ok");
  EXPECT_EQ(py::valid_utf8("a\xff" "b"), "a\xEF\xBF\xBD" "b");
}

}  // namespace
