// The quickstart (configs/quickstart.yaml) learns more than letter frequencies: the mean loss of
// its last 10 steps is below 0.8 x the unigram byte entropy of the bundled text (nats).
#include <gtest/gtest.h>

#include <numeric>

#include "config/config.h"
#include "test_dirs.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

TEST(Quickstart, BeatsUnigramEntropy) {
  tailor::testing::TempDir tmp;
  const auto cfg = config::load_config(TAILOR_SOURCE_DIR "/configs/quickstart.yaml",
                                       {"output.dir=" + tmp / "run"});
  const TrainSummary s = train(cfg);
  ASSERT_GE(s.losses.size(), 10u);
  const double last10 = std::accumulate(s.losses.end() - 10, s.losses.end(), 0.0) / 10.0;
  // Unigram byte entropy of English text is about 3 nats.
  EXPECT_GT(s.unigram_entropy, 2.5);
  EXPECT_LT(s.unigram_entropy, 3.5);
  EXPECT_LT(last10, 0.8 * s.unigram_entropy)
      << "final loss " << last10 << " vs unigram entropy " << s.unigram_entropy;
}

}  // namespace
}  // namespace tailor::trainer
