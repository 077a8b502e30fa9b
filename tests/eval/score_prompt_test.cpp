// Scoring with a prompt-tuning model: each record is opened by the virtual tokens (positions
// 0..n-1, not scored), exactly the training forward on [virtual tokens, record].
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "backend/cpu/cpu_ops.h"
#include "data/byte_tokenizer.h"
#include "eval/score.h"
#include "model/model_test_util.h"
#include "peft/prompt_tuning.h"

namespace tailor::eval {
namespace {

TEST(ScorePromptTuning, VirtualTokensOpenEveryRecord) {
  model::ModelSpec spec = model::testing::tiny_llama();
  spec.vocab_size = 257;  // the byte tokenizer's ids
  spec.max_position_embeddings = 32;
  backend::CpuOps ops(1);
  const peft::PromptTuning prompt(3);
  model::Transformer m(spec, ops, DType::kF64, nullptr, {&prompt});
  m.init_parameters(5);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tailor-score-prompt-" + std::to_string(::getpid()) + ".jsonl"))
                               .string();
  {
    std::ofstream f(path);
    f << R"({"prompt": "ab", "completion": "cd"})" << "\n";
  }
  const data::ByteTokenizer tok;
  const ScoreResult r = score_jsonl(m, tok, path);
  std::filesystem::remove(path);
  EXPECT_EQ(r.records, 1);
  EXPECT_EQ(r.tokens, 3);  // c, d and EOS
  // [v0 v1 v2] a b c d (+ EOS as the last target); a's and b's predictions are not scored.
  const std::int32_t ign = backend::kIgnoreIndex;
  model::testing::HostBatch b(1, 7, {-1, -2, -3, 'a', 'b', 'c', 'd'},
                              {ign, ign, ign, ign, 'c', 'd', 256}, {0, 1, 2, 3, 4, 5, 6}, {});
  const double want = m.forward(b.batch) / 3.0;
  EXPECT_NEAR(r.nll, want, 1e-12 * want);
}

}  // namespace
}  // namespace tailor::eval
