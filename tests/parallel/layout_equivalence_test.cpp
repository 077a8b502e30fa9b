// Every parallel layout trains the same model: TP, DP, TP x DP and ZeRO-1 runs of 20 steps in f64
// give the per-step losses, final parameters and last gradients of a single-process run (rtol
// 1e-10; gradients parameter by parameter, so a wrong sum for one small group fails), ZeRO-1
// equals unsharded AdamW (1e-12), each TP shard is the slice of the single-process tensor, and
// per-rank memory falls as the layout predicts.
#include <gtest/gtest.h>

#include <algorithm>

#include <mpi.h>

#include <cmath>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "comm/mpi_communicator.h"
#include "config/config.h"
#include "mpi_test_env.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

using tailor::testing::world;

std::unique_ptr<comm::Communicator> fresh_world() {
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  return std::make_unique<comm::MpiCommunicator>(dup);
}

// Tiny GQA model: 4 query heads, `kv` KV heads (kv < T exercises replicated KV heads).
config::ExperimentConfig tiny(const std::string& out, int kv, const std::vector<std::string>& extra) {
  // (JSONL preference pairs have no text split)
  const bool jsonl = std::find(extra.begin(), extra.end(), "data.format=jsonl") != extra.end();
  const std::string text =
      "output: {dir: " + out + "}\n"
      "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: " +
      std::to_string(kv) + ",\n"
      "        intermediate_size: 48, max_position_embeddings: 64, init_std: 0.1}\n"
      "data: {train: " TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt,\n"
      "       " + std::string(jsonl ? "" : "split: paragraph, ") + "seq_len: 24}\n"
      "train: {steps: 20, seed: 3, global_batch: 8, log_every: 100}\n"
      "optimizer: {lr: 3.0e-3, weight_decay: 0.1, grad_clip: 0.5}\n"
      "schedule: {warmup_steps: 3}\n"
      "runtime: {dtype: f64, threads: 1, log_level: warn}\n";
  return config::load_config_text(text, "tiny.yaml", extra);
}

std::string out_dir(const std::string& tag) {
  return (std::filesystem::temp_directory_path() /
          ("tailor-layout-" + tag + "-" + std::to_string(::getpid())))
      .string();
}

// PEFT variants of the tiny model: none, LoRA, LoRA with dropout (masks drawn at global indices,
// the same on every TP rank and for every micro-batch split), prompt tuning (a replicated prompt,
// initialized from a text through the vocab-parallel embedding), IA3 on every linear (input
// scaling on q (column-parallel) and o (row-parallel), output scaling on the others: every TP rule
// of ia3.h, shared KV heads included when kv < TP), DoRA on every linear (the norms of a
// row-parallel W's rows summed over the group, its magnitude whole on every rank).
// Preference objectives on pairs ride on the same enum: DPO with LoRA (reference: adapters
// off), DPO with full fine-tuning (reference: a frozen copy, itself tensor-parallel), ORPO.
enum class Peft { kNone, kLora, kLoraDropout, kPrompt, kIa3, kDora, kDpoLora, kDpo, kOrpo };

std::vector<std::string> peft_overrides(Peft peft) {
  std::vector<std::string> o;
  if (peft == Peft::kLora || peft == Peft::kLoraDropout || peft == Peft::kDora)
    o = {"peft.method=lora", "peft.rank=3", "peft.alpha=6", "peft.target_modules=[all-linear]"};
  if (peft == Peft::kLoraDropout) o.emplace_back("peft.dropout=0.2");
  if (peft == Peft::kDora) o.emplace_back("peft.use_dora=true");
  // SGD without clipping: a gradient off by a factor (a wrong TP sum) changes the update, where
  // AdamW and clipping would hide it.
  if (peft == Peft::kIa3)
    o = {"peft.method=ia3", "peft.target_modules=[all-linear]",
         "peft.feedforward_modules=[q_proj, o_proj]"};
  if (peft == Peft::kPrompt)
    o = {"peft.method=prompt_tuning", "peft.num_virtual_tokens=4",
         "peft.prompt_init_text=\"The \"", "optimizer.name=sgd", "optimizer.lr=0.5",
         "optimizer.grad_clip=0"};
  if (peft == Peft::kDpoLora || peft == Peft::kDpo || peft == Peft::kOrpo) {
    o = {"data.train=" TAILOR_SOURCE_DIR "/datasets/gettext-translations/dev.pairs.jsonl",
         "data.format=jsonl", "data.packing=pad", "data.max_prompt_tokens=10",
         "objective.type=" + std::string(peft == Peft::kOrpo ? "orpo" : "dpo"),
         "optimizer.name=sgd", "optimizer.lr=0.5", "optimizer.grad_clip=0"};
    if (peft == Peft::kDpoLora)
      for (const char* k : {"peft.method=lora", "peft.rank=3", "peft.alpha=6",
                            "peft.target_modules=[all-linear]"})
        o.emplace_back(k);
  }
  return o;
}

const char* peft_tag(Peft peft) {
  switch (peft) {
    case Peft::kLora: return "_lora";
    case Peft::kLoraDropout: return "_lora_dropout";
    case Peft::kPrompt: return "_prompt";
    case Peft::kIa3: return "_ia3";
    case Peft::kDora: return "_dora";
    case Peft::kDpoLora: return "_dpo_lora";
    case Peft::kDpo: return "_dpo";
    case Peft::kOrpo: return "_orpo";
    default: return "";
  }
}

// The single-process reference, computed on every rank.
const TrainSummary& reference(int kv, Peft peft = Peft::kNone) {
  static std::map<std::pair<int, Peft>, TrainSummary> cache;
  auto it = cache.find({kv, peft});
  if (it == cache.end()) {
    auto cfg = tiny(out_dir(fmt::format("ref{}{}-r{}", kv, peft_tag(peft), world().rank())), kv,
                    peft_overrides(peft));
    it = cache.emplace(std::make_pair(kv, peft), train(cfg, nullptr, {true})).first;
    std::filesystem::remove_all(cfg.output.dir);
  }
  return it->second;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

// Normwise relative error of this rank's shard `got` (values or gradient of g) against the slice
// of the full tensor `ref` (of r); padding rows beyond the single process's vocabulary must be 0.
double shard_error(const ParameterValues& g, const std::vector<double>& got, const ParameterValues& r,
                   const std::vector<double>& ref) {
  double num = 0, den = 0;
  const std::int64_t rows = g.shape.rank() == 2 ? g.shape[0] : g.shape.numel();
  const std::int64_t cols = g.shape.rank() == 2 ? g.shape[1] : 1;
  const std::int64_t rrows = r.shape.rank() == 2 ? r.shape[0] : r.shape.numel();
  const std::int64_t rcols = r.shape.rank() == 2 ? r.shape[1] : 1;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      std::int64_t ri = i, rj = j;
      if (g.shard_dim == 0) ri += g.shard_offset;
      if (g.shard_dim == 1) rj += g.shard_offset;
      const double a = got[static_cast<std::size_t>(i * cols + j)];
      if (ri >= rrows) {  // vocabulary padding beyond the single-process padding: stays zero
        EXPECT_EQ(a, 0.0) << g.name << " padding row " << ri;
        continue;
      }
      const double b = ref[static_cast<std::size_t>(ri * rcols + rj)];
      num += (a - b) * (a - b);
      den += b * b;
    }
  return den == 0 && num == 0 ? 0.0 : std::sqrt(num / std::max(den, 1e-300));
}

// Losses of every step, and per parameter the values after the last step and (with `gradients`)
// the gradient that step's update used: a gradient summed wrongly for one small group (a
// replicated norm weight, a LoRA factor under TP) fails here even when the loss and the large
// tensors agree. Under ZeRO-1 a rank holds the reduced gradient only for its own flat range of
// the parameters, so there the values after the update carry the check.
void expect_same_training(const TrainSummary& got, const TrainSummary& ref, double rtol,
                          bool gradients = true) {
  ASSERT_EQ(got.losses.size(), ref.losses.size());
  for (std::size_t i = 0; i < ref.losses.size(); ++i)
    EXPECT_LE(rel(got.losses[i], ref.losses[i]), rtol) << "step " << i + 1;
  ASSERT_EQ(got.parameters.size(), ref.parameters.size());
  std::size_t with_gradient = 0;
  for (std::size_t k = 0; k < ref.parameters.size(); ++k) {
    const ParameterValues& g = got.parameters[k];
    const ParameterValues& r = ref.parameters[k];
    ASSERT_EQ(g.name, r.name);
    EXPECT_LE(shard_error(g, g.values, r, r.values), rtol) << g.name;
    ASSERT_EQ(g.gradient.empty(), r.gradient.empty()) << g.name << ": trainable on one side only";
    if (r.gradient.empty() || !gradients) continue;
    ++with_gradient;
    EXPECT_LE(shard_error(g, g.gradient, r, r.gradient), rtol) << g.name << " gradient";
  }
  if (gradients) {
    EXPECT_GT(with_gradient, 0u) << "no trainable parameter";
  }
}

struct Layout {
  int tensor;
  bool zero;
  int kv;
  Peft peft = Peft::kNone;
};

class LayoutEquivalence : public ::testing::TestWithParam<Layout> {};

TEST_P(LayoutEquivalence, MatchesSingleProcess) {
  const Layout l = GetParam();
  const int p = world().size();
  if (p % l.tensor != 0) GTEST_SKIP() << "TP " << l.tensor << " does not divide " << p;
  const std::string tag =
      fmt::format("t{}{}kv{}{}", l.tensor, l.zero ? "z" : "", l.kv, peft_tag(l.peft));
  std::vector<std::string> overrides = {fmt::format("parallel.tensor={}", l.tensor),
                                        fmt::format("optimizer.zero={}", l.zero ? 1 : 0)};
  const std::vector<std::string> peft = peft_overrides(l.peft);
  overrides.insert(overrides.end(), peft.begin(), peft.end());
  auto cfg = tiny(out_dir(tag), l.kv, overrides);
  const TrainSummary got = train(cfg, fresh_world(), {true});
  expect_same_training(got, reference(l.kv, l.peft), 1e-10, /*gradients=*/!l.zero);
  if (world().rank() == 0) std::filesystem::remove_all(cfg.output.dir);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, LayoutEquivalence,
    ::testing::Values(Layout{1, false, 2}, Layout{1, true, 2}, Layout{2, false, 2},
                      Layout{2, true, 2}, Layout{4, false, 2}, Layout{4, false, 1},
                      Layout{4, false, 4}, Layout{2, false, 1}, Layout{2, false, 2, Peft::kLora},
                      Layout{4, false, 1, Peft::kLora}, Layout{1, true, 2, Peft::kLora},
                      Layout{1, false, 2, Peft::kLoraDropout},
                      Layout{2, false, 2, Peft::kLoraDropout},
                      Layout{4, false, 1, Peft::kLoraDropout}, Layout{1, false, 2, Peft::kPrompt},
                      Layout{2, false, 2, Peft::kPrompt}, Layout{4, false, 1, Peft::kPrompt},
                      Layout{2, true, 2, Peft::kPrompt}, Layout{2, false, 2, Peft::kIa3},
                      Layout{4, false, 1, Peft::kIa3}, Layout{2, false, 2, Peft::kDora},
                      Layout{4, false, 1, Peft::kDora}, Layout{2, false, 2, Peft::kDpoLora},
                      Layout{4, false, 1, Peft::kDpoLora}, Layout{1, true, 2, Peft::kDpo},
                      Layout{2, false, 2, Peft::kDpo}, Layout{4, false, 2, Peft::kOrpo},
                      Layout{1, false, 2, Peft::kOrpo}),
    [](const auto& param_info) {
      const Layout& l = param_info.param;
      return "tp" + std::to_string(l.tensor) + (l.zero ? "_zero" : "") + "_kv" +
             std::to_string(l.kv) + peft_tag(l.peft);
    });

// The LM head and vocab-parallel loss in chunks of tokens (runtime.loss_chunk_tokens) under TP
// and DP: the same training as the single process computing the whole head at once.
TEST(LossChunk, TensorParallelChunkedHeadMatchesSingleProcess) {
  const int p = world().size();
  if (p % 2 != 0) GTEST_SKIP();
  auto cfg = tiny(out_dir("chunked"), 2, {"parallel.tensor=2", "runtime.loss_chunk_tokens=7"});
  const TrainSummary got = train(cfg, fresh_world(), {true});
  expect_same_training(got, reference(2, Peft::kNone), 1e-10);
  if (world().rank() == 0) std::filesystem::remove_all(cfg.output.dir);
}

// The dropout layouts above are not vacuous: the masks change the run (from step 2 on: B starts
// at zero, so the first loss is the base's either way).
TEST(LoraDropout, ChangesTheTrainingRun) {
  const TrainSummary& plain = reference(2, Peft::kLora);
  const TrainSummary& dropped = reference(2, Peft::kLoraDropout);
  ASSERT_EQ(plain.losses.size(), dropped.losses.size());
  EXPECT_EQ(plain.losses.front(), dropped.losses.front());
  EXPECT_GT(rel(dropped.losses.back(), plain.losses.back()), 1e-6);
}

TEST(Zero1, EqualsUnshardedAdamW) {
  const int p = world().size();
  auto plain = tiny(out_dir("dp"), 2, {"parallel.tensor=1", "optimizer.zero=0"});
  auto zero = tiny(out_dir("dpz"), 2, {"parallel.tensor=1", "optimizer.zero=1"});
  const TrainSummary a = train(plain, fresh_world(), {true});
  const TrainSummary b = train(zero, fresh_world(), {true});
  expect_same_training(b, a, 1e-12, /*gradients=*/false);  // ZeRO: see expect_same_training
  // Optimizer state shrinks by the DP size (up to the padding of the last range).
  EXPECT_LE(b.optimizer_state_numel, a.optimizer_state_numel / p + 2 * p);
  EXPECT_EQ(a.parameter_numel, b.parameter_numel);
  if (world().rank() == 0) {
    std::filesystem::remove_all(plain.output.dir);
    std::filesystem::remove_all(zero.output.dir);
  }
}

// The device's collectives under MPI (one GPU per node shares it between ranks, so tensors are
// staged through host memory; bf16 is summed in f32), on the emulated device: in f32 a TP x DP
// ZeRO layout equals the same layout on the CPU bit for bit; in bf16, TP = world size tracks the
// single-process bf16 run as closely as bf16 tracks f32.
struct EmulateCuda {
  EmulateCuda() { ::setenv("TAILOR_EMULATE_CUDA", "1", 1); }
  ~EmulateCuda() { ::unsetenv("TAILOR_EMULATE_CUDA"); }
};

TEST(EmulatedDevice, StagedCollectivesEqualTheCpuLayoutInF32) {
  const EmulateCuda emulate;
  const int p = world().size();
  const std::vector<std::string> layout = {"parallel.tensor=2", "optimizer.zero=1",
                                           "runtime.dtype=f32", "train.steps=6"};
  if (p % 2 != 0) GTEST_SKIP();
  std::vector<std::string> cpu = layout, dev = layout;
  cpu.emplace_back("runtime.device=cpu");
  dev.emplace_back("runtime.device=cuda");
  const TrainSummary a = train(tiny(out_dir("emu-cpu"), 2, cpu), fresh_world(), {true});
  const TrainSummary b = train(tiny(out_dir("emu-dev"), 2, dev), fresh_world(), {true});
  // Same layout on both sides: this rank's losses and shards, bit for bit.
  EXPECT_EQ(b.losses, a.losses);
  ASSERT_EQ(b.parameters.size(), a.parameters.size());
  for (std::size_t k = 0; k < a.parameters.size(); ++k) {
    EXPECT_EQ(b.parameters[k].name, a.parameters[k].name);
    EXPECT_EQ(b.parameters[k].values, a.parameters[k].values) << a.parameters[k].name;
  }
  if (world().rank() == 0) {
    std::filesystem::remove_all(out_dir("emu-cpu"));
    std::filesystem::remove_all(out_dir("emu-dev"));
  }
}

TEST(EmulatedDevice, Bf16TensorParallelTracksOneRank) {
  const EmulateCuda emulate;
  const int p = world().size();
  const std::vector<std::string> bf16 = {"runtime.device=cuda", "runtime.dtype=bf16",
                                         "train.steps=10"};
  auto one = tiny(out_dir(fmt::format("emu-one-r{}", world().rank())), 4, bf16);
  std::vector<std::string> split = bf16;
  split.push_back("parallel.tensor=" + std::to_string(p));
  auto tp = tiny(out_dir("emu-tp"), 4, split);
  const TrainSummary a = train(one, nullptr, {});
  const TrainSummary b = train(tp, fresh_world(), {});
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (std::size_t i = 0; i < a.losses.size(); ++i)
    EXPECT_LE(rel(b.losses[i], a.losses[i]), 2e-2) << "step " << i + 1;
  std::filesystem::remove_all(one.output.dir);
  if (world().rank() == 0) std::filesystem::remove_all(tp.output.dir);
}

// Full recomputation reruns each layer's forward, row-parallel all-reduces included, in backward:
// under TP the result is bit-identical to keeping the activations.
TEST(Recompute, FullUnderTensorParallelChangesNoBit) {
  const int p = world().size();
  if (p % 2 != 0) GTEST_SKIP();
  const std::vector<std::string> tp = {"parallel.tensor=2", "train.steps=6", "peft.method=lora",
                                       "peft.rank=3", "peft.dropout=0.2",
                                       "peft.target_modules=[all-linear]"};
  std::vector<std::string> full = tp;
  full.emplace_back("train.recompute=full");
  const TrainSummary a = train(tiny(out_dir("rc-none"), 2, tp), fresh_world(), {true});
  const TrainSummary b = train(tiny(out_dir("rc-full"), 2, full), fresh_world(), {true});
  EXPECT_EQ(b.losses, a.losses);
  ASSERT_EQ(b.parameters.size(), a.parameters.size());
  for (std::size_t k = 0; k < a.parameters.size(); ++k)
    EXPECT_EQ(b.parameters[k].values, a.parameters[k].values) << a.parameters[k].name;
  if (world().rank() == 0) {
    std::filesystem::remove_all(out_dir("rc-none"));
    std::filesystem::remove_all(out_dir("rc-full"));
  }
}

// Data-parallel buckets reduced while backward runs: with buckets of 100 elements most of them
// start after a layer's backward instead of after the whole step. Gradients reduced before they
// are final would leave the ranks apart or off the single-process run by far more than 1e-10.
TEST(OverlappedReduction, SmallBucketsMatchTheSingleProcessRun) {
  for (const Peft peft : {Peft::kNone, Peft::kLora}) {
    std::vector<std::string> o = peft_overrides(peft);
    o.emplace_back("parallel.tensor=1");
    auto cfg = tiny(out_dir(fmt::format("overlap{}", peft_tag(peft))), 2, o);
    TrainOptions options;
    options.keep_parameters = true;
    options.dp_bucket_elements = 100;
    const TrainSummary got = train(cfg, fresh_world(), options);
    expect_same_training(got, reference(2, peft), 1e-10);
    if (world().rank() == 0) std::filesystem::remove_all(cfg.output.dir);
  }
}

TEST(Memory, TensorParallelShardsShrinkPerRankParameters) {
  const int p = world().size();
  auto cfg = tiny(out_dir("mem"), 4, {"parallel.tensor=" + std::to_string(p), "train.steps=2", "schedule.warmup_steps=0"});
  const TrainSummary s = train(cfg, fresh_world());
  const TrainSummary& ref = reference(4);
  // Everything but the 5 replicated norm weights (hidden 32 each) is split P ways; the
  // embedding and the untied head (hidden 32) are padded to a multiple of 128 x P rows.
  const std::int64_t replicated = 5 * 32;
  const std::int64_t vocab_rows_1 = 384;
  const std::int64_t vocab_rows_p = (257 + 128 * p - 1) / (128 * p) * (128 * p);
  const std::int64_t split = ref.parameter_numel - replicated - 2 * vocab_rows_1 * 32;
  EXPECT_EQ(s.parameter_numel, split / p + 2 * (vocab_rows_p / p) * 32 + replicated);
  if (world().rank() == 0) std::filesystem::remove_all(cfg.output.dir);
}

}  // namespace
}  // namespace tailor::trainer
