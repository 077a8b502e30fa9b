// Token sampling (eval/sampling.h) and seeded generation: the filters on toy distributions, draw
// frequencies against the tempered / truncated softmax (fixed seed, bounds about 6 standard
// deviations wide), and on a golden model: a seed reproduces the tokens, another seed changes
// them, top-k = 1 and a tiny top-p are greedy, and a record's tokens do not depend on the batch
// it ran in.
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include <gtest/gtest.h>

#include "eval/generate.h"
#include "eval/sampling.h"
#include "generate_test_util.h"

namespace tailor::eval {
namespace {

std::vector<double> log_probs(const std::vector<double>& p) {
  std::vector<double> l;
  for (double x : p) l.push_back(std::log(x));
  return l;
}

// Frequencies of each token over n draws of stream 0 under `seed`.
std::vector<double> frequencies(const std::vector<double>& logits, const SamplingOptions& o,
                                int n) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < n; ++i)
    f[static_cast<std::size_t>(choose_token(
        logits, o, sampling_uniform(o.seed, 0, static_cast<std::uint64_t>(i))))] += 1.0 / n;
  return f;
}

void expect_frequencies_near(const std::vector<double>& got, const std::vector<double>& want,
                             int n) {
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double sd = std::sqrt(want[i] * (1.0 - want[i]) / n);
    EXPECT_NEAR(got[i], want[i], 6.0 * sd + 1e-12) << "token " << i;
  }
}

std::vector<double> normalized(std::vector<double> p) {
  double s = 0.0;
  for (double x : p) s += x;
  for (double& x : p) x /= s;
  return p;
}

const std::vector<double> kToy = {0.5, 0.3, 0.15, 0.05};

TEST(Sampling, GreedyIsTheArgmaxWithTheLowestIdOnTies) {
  EXPECT_EQ(greedy_token(std::vector<double>{0.1, 2.0, -1.0, 2.0}), 1);
  SamplingOptions o;  // temperature 0
  EXPECT_EQ(choose_token(std::vector<double>{0.1, 2.0, -1.0, 3.0}, o, 0.99), 3);
}

TEST(Sampling, TopKOneAndTinyTopPAreGreedyWhateverTheDraw) {
  const std::vector<double> logits = log_probs(kToy);
  SamplingOptions k1{.temperature = 1.5, .top_k = 1};
  SamplingOptions p0{.temperature = 1.5, .top_p = 1e-9};
  for (double u : {0.0, 0.3, 0.7, 0.999999})
    for (const SamplingOptions& o : {k1, p0}) EXPECT_EQ(choose_token(logits, o, u), 0);
}

TEST(Sampling, OptionProblemsNameTheOption) {
  EXPECT_EQ(sampling_problem({}), "");
  EXPECT_NE(sampling_problem({.temperature = -1.0}).find("--temperature"), std::string::npos);
  EXPECT_NE(sampling_problem({.top_k = -2}).find("--top-k"), std::string::npos);
  EXPECT_NE(sampling_problem({.top_p = 0.0}).find("--top-p"), std::string::npos);
  EXPECT_NE(sampling_problem({.top_p = 1.5}).find("--top-p"), std::string::npos);
}

TEST(Sampling, UniformsAreInRangeAndDependOnEveryKey) {
  double sum = 0.0;
  for (std::uint64_t i = 0; i < 10000; ++i) {
    const double u = sampling_uniform(1, 2, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
  EXPECT_EQ(sampling_uniform(1, 2, 3), sampling_uniform(1, 2, 3));
  EXPECT_NE(sampling_uniform(1, 2, 3), sampling_uniform(2, 2, 3));
  EXPECT_NE(sampling_uniform(1, 2, 3), sampling_uniform(1, 3, 3));
  EXPECT_NE(sampling_uniform(1, 2, 3), sampling_uniform(1, 2, 4));
}

TEST(Sampling, TemperatureOneFollowsTheSoftmax) {
  const int n = 20000;
  expect_frequencies_near(frequencies(log_probs(kToy), {.temperature = 1.0, .seed = 11}, n), kToy,
                          n);
}

TEST(Sampling, TemperatureFlattensAndSharpens) {
  const int n = 20000;
  for (double t : {2.0, 0.5}) {
    std::vector<double> want;
    for (double p : kToy) want.push_back(std::pow(p, 1.0 / t));
    expect_frequencies_near(frequencies(log_probs(kToy), {.temperature = t, .seed = 12}, n),
                            normalized(want), n);
  }
}

TEST(Sampling, TopKAndTopPDrawFromWhatTheyKeep) {
  const int n = 20000;
  // top-k 3: the three most likely, renormalized.
  expect_frequencies_near(
      frequencies(log_probs(kToy), {.temperature = 1.0, .top_k = 3, .seed = 13}, n),
      normalized({0.5, 0.3, 0.15, 0.0}), n);
  // top-p 0.75: 0.5 and 0.3 reach it; 0.81 needs a third token.
  expect_frequencies_near(
      frequencies(log_probs(kToy), {.temperature = 1.0, .top_p = 0.75, .seed = 15}, n),
      normalized({0.5, 0.3, 0.0, 0.0}), n);
  expect_frequencies_near(
      frequencies(log_probs(kToy), {.temperature = 1.0, .top_p = 0.81, .seed = 16}, n),
      normalized({0.5, 0.3, 0.15, 0.0}), n);
}

// ---- seeded generation on a golden model -----------------------------------------------------

std::vector<std::vector<std::int32_t>> tokens_of(const std::vector<Completion>& c) {
  std::vector<std::vector<std::int32_t>> out;
  for (const Completion& x : c) out.push_back(x.tokens);
  return out;
}

class SeededGeneration : public ::testing::Test {
 protected:
  void SetUp() override {
    c_ = testing::greedy_cases().front();  // llama
    m_ = testing::load_case(c_);
  }
  std::vector<std::vector<std::int32_t>> run(const SamplingOptions& s,
                                             std::span<const std::vector<std::int32_t>> prompts,
                                             std::uint64_t first_stream = 0) {
    GenerateOptions o;
    o.max_new_tokens = 20;
    o.sampling = s;
    return tokens_of(generate(*m_.model, nullptr, prompts, o, {}, first_stream));
  }
  testing::GreedyCase c_;
  testing::LoadedModel m_;
};

TEST_F(SeededGeneration, ASeedReproducesTheTokensAndAnotherChangesThem) {
  const SamplingOptions s{.temperature = 1.0, .seed = 5};
  const auto a = run(s, c_.prompts);
  EXPECT_EQ(run(s, c_.prompts), a);
  EXPECT_NE(run({.temperature = 1.0, .seed = 6}, c_.prompts), a);
  EXPECT_NE(a, run({}, c_.prompts));  // sampling is not greedy here
}

TEST_F(SeededGeneration, TopKOneAndTinyTopPEqualGreedy) {
  const auto greedy = run({}, c_.prompts);
  EXPECT_EQ(run({.temperature = 1.0, .top_k = 1, .seed = 5}, c_.prompts), greedy);
  EXPECT_EQ(run({.temperature = 1.0, .top_p = 1e-9, .seed = 5}, c_.prompts), greedy);
}

TEST_F(SeededGeneration, ARecordsTokensDoNotDependOnItsBatch) {
  const SamplingOptions s{.temperature = 0.8, .top_k = 50, .top_p = 0.95, .seed = 9};
  const auto batch = run(s, c_.prompts);
  for (std::size_t i = 0; i < c_.prompts.size(); ++i)
    EXPECT_EQ(run(s, std::span(c_.prompts).subspan(i, 1), i).at(0), batch[i]) << "prompt " << i;
}

}  // namespace
}  // namespace tailor::eval
