// Stopping and text: a stop id (EOS) ends a row with the id kept in its tokens and left out of its
// text; a stop string ends it with the text cut where the string begins; max_length caps prompt +
// generated tokens; streamed pieces add up to the final text and never show a stop string.
// A random LLaMA-style model over the llama3-style fixture tokenizer (tests/golden/tokenizers);
// the stops are taken from what the model generates without them, so the expectations hold for
// any weights.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "data/tokenizer.h"
#include "eval/generate.h"
#include "generate_test_util.h"

namespace tailor::eval {
namespace {

constexpr std::int64_t kNew = 16;

class GenerateStop : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = data::load_tokenizer(testing::source_path("tests/golden/tokenizers/llama3"));
    model::ModelSpec s;
    s.vocab_size = tok_->vocab_size();
    s.hidden_size = 32;
    s.num_layers = 2;
    s.num_heads = 4;
    s.num_kv_heads = 2;
    s.head_dim = 8;
    s.intermediate_size = 48;
    s.max_position_embeddings = 128;
    s.init_std = 0.2;
    model_ = std::make_unique<model::Transformer>(s, ops_, DType::kF32);
    model_->init_parameters(21);
    prompts_ = {tok_->encode("The quick brown fox"), tok_->encode("Hello")};
  }

  std::vector<Completion> run(const GenerateOptions& o, const TextSink& sink = {}) {
    return generate(*model_, tok_.get(), std::span(prompts_), o, sink);
  }
  static GenerateOptions options(std::int64_t new_tokens = kNew) {
    GenerateOptions o;
    o.max_new_tokens = new_tokens;
    return o;
  }

  backend::CpuOps ops_{2};
  std::unique_ptr<data::Tokenizer> tok_;
  std::unique_ptr<model::Transformer> model_;
  std::vector<std::vector<std::int32_t>> prompts_;
};

TEST_F(GenerateStop, WithoutStopsEveryRowRunsToMaxNewTokens) {
  for (const Completion& c : run(options())) {
    EXPECT_EQ(c.tokens.size(), static_cast<std::size_t>(kNew));
    EXPECT_EQ(c.finish, FinishReason::kLength);
    EXPECT_FALSE(c.text.empty());
  }
}

TEST_F(GenerateStop, AStopIdEndsTheRowAndStaysOutOfTheText) {
  const std::vector<Completion> free = run(options());
  // Row 0's 5th token as the stop id: the row ends at its first occurrence.
  const std::int32_t stop = free[0].tokens[4];
  std::size_t k = 0;
  while (free[0].tokens[k] != stop) ++k;
  GenerateOptions o = options();
  o.stop_ids = {stop};
  const std::vector<Completion> got = run(o);
  EXPECT_EQ(got[0].finish, FinishReason::kStopToken);
  EXPECT_EQ(got[0].tokens,
            std::vector<std::int32_t>(free[0].tokens.begin(),
                                      free[0].tokens.begin() + static_cast<std::ptrdiff_t>(k) + 1));
  // The text is that of the tokens before the stop id.
  const std::vector<Completion> before =
      run(options(static_cast<std::int64_t>(std::max<std::size_t>(k, 1))));
  EXPECT_EQ(got[0].text, k == 0 ? "" : before[0].text);
}

TEST_F(GenerateStop, AStopStringCutsTheTextWhereItBegins) {
  const std::vector<Completion> free = run(options());
  const std::string& full = free[0].text;
  // Two printable ASCII characters from the second half of the text.
  std::string stop;
  for (std::size_t p = full.size() / 2; p + 2 <= full.size() && stop.empty(); ++p)
    if (std::isprint(static_cast<unsigned char>(full[p])) &&
        std::isprint(static_cast<unsigned char>(full[p + 1])))
      stop = full.substr(p, 2);
  ASSERT_FALSE(stop.empty()) << "no ASCII in: " << full;
  GenerateOptions o = options();
  o.stop_strings = {"never appears \x01", stop};
  std::string streamed;
  const std::vector<Completion> got = run(o, [&](std::size_t row, std::string_view piece) {
    if (row == 0) streamed += piece;
  });
  EXPECT_EQ(got[0].finish, FinishReason::kStopString);
  EXPECT_EQ(got[0].text, full.substr(0, full.find(stop)));
  EXPECT_LE(got[0].tokens.size(), free[0].tokens.size());
  EXPECT_EQ(streamed, got[0].text);
}

TEST_F(GenerateStop, StreamedPiecesAddUpToTheText) {
  std::vector<std::string> streamed(prompts_.size());
  std::vector<int> pieces(prompts_.size(), 0);
  const std::vector<Completion> got = run(options(), [&](std::size_t row, std::string_view piece) {
    streamed[row] += piece;
    ++pieces[row];
  });
  for (std::size_t r = 0; r < got.size(); ++r) {
    EXPECT_EQ(streamed[r], got[r].text) << "row " << r;
    EXPECT_GT(pieces[r], 1) << "row " << r << ": not streamed piece by piece";
  }
  // Without a sink the same text comes out.
  const std::vector<Completion> quiet = run(options());
  for (std::size_t r = 0; r < got.size(); ++r) EXPECT_EQ(quiet[r].text, got[r].text);
}

TEST_F(GenerateStop, MaxLengthCapsPromptPlusGenerated) {
  GenerateOptions o = options();
  o.max_length = 8;
  const std::vector<Completion> got = run(o);
  for (std::size_t r = 0; r < got.size(); ++r) {
    EXPECT_EQ(prompts_[r].size() + got[r].tokens.size(),
              std::min<std::size_t>(8, prompts_[r].size() + kNew));
    EXPECT_EQ(got[r].finish, FinishReason::kLength);
  }
}

TEST(SettledLength, HoldsBackIncompleteCharactersAndStopPrefixes) {
  const std::vector<std::string> none;
  const std::vector<std::string> stops = {"###", "\nUser:"};
  EXPECT_EQ(settled_length("hello", none), 5u);
  EXPECT_EQ(settled_length("hello", stops), 5u);
  EXPECT_EQ(settled_length("hello#", stops), 5u);
  EXPECT_EQ(settled_length("hello##", stops), 5u);
  EXPECT_EQ(settled_length("hello\nUs", stops), 5u);
  EXPECT_EQ(settled_length("hello\nX", stops), 7u);
  EXPECT_EQ(settled_length("caf\xC3", none), 3u);                    // half of "é"
  EXPECT_EQ(settled_length("caf\xC3\xA9", none), 5u);                // all of it
  EXPECT_EQ(settled_length("a\xE2\x82", none), 1u);                  // two bytes of "€"
  EXPECT_EQ(settled_length("a\xEF\xBF\xBD\xEF\xBF\xBD", none), 1u);  // U+FFFD run
  EXPECT_EQ(settled_length("", stops), 0u);
}

}  // namespace
}  // namespace tailor::eval
