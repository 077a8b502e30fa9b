// Tailor's Hugging Face exports against transformers: directories Tailor wrote (`tailor export` of
// the committed step-20 checkpoints of a tiny LLaMA and a tiny GPT-2, `tailor export --dtype
// bf16` of the qwen2 fixture, `tailor export` of the qwen3 one and of the qwen2_window and
// qwen3_window fixtures: sliding windows on two of three layers; and of the gemma3 one), committed under
// tests/golden/exports/<case>/ with the logits transformers computed on them after loading them
// with no missing or unexpected tensor
// (tests/golden/make_export_fixtures.py).
//  - Today's exporter, run with each case's export_args.txt (and the same for the PEFT adapters
//    of tests/golden/peft/tailor_*), must write the committed files byte for byte: what
//    transformers and peft checked is what Tailor writes now, and a change of the exporter fails
//    here until the fixtures are regenerated with the reference.
//  - Tailor loads the same directories and must agree on the CPU in f32: normwise relative error
//    < 1e-5 on the logits, the same greedy tokens, and the layout transformers expects (vocabulary
//    padding stripped, a tied head not stored).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "checkpoint/safetensors.h"
#include "golden_util.h"
#include "core/dtype.h"
#include "model/model_test_util.h"

namespace tailor::checkpoint {
namespace {

using model::testing::HostBatch;
using golden::dims;
using golden::read_f32;
using golden::read_i32;
using golden::rel_error;

constexpr double kLogitsTol = 1e-5;
constexpr int kThreads = 2;

std::string export_dir(const std::string& name) {
  return std::string(TAILOR_SOURCE_DIR) + "/tests/golden/exports/" + name;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// One export directory, loaded into a Tailor model.
struct Loaded {
  HfModelConfig cfg;
  backend::CpuOps ops{kThreads};
  std::unique_ptr<model::Transformer> model;

  explicit Loaded(const std::string& dir) : cfg(read_hf_config(dir)) {
    model = std::make_unique<model::Transformer>(cfg.spec, ops, DType::kF32);
    load_hf_weights(dir, cfg, *model, ops);
  }

  // Logits of `rows` sequences of `t` ids (positions 0..t-1, one document per row), the first
  // vocab_size columns of each row of the padded logits.
  std::vector<float> logits(const std::vector<std::int32_t>& ids, std::int64_t rows,
                            std::int64_t t) {
    std::vector<std::int32_t> targets(ids.size()), positions(ids.size());
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < t; ++c) {
        const auto i = static_cast<std::size_t>(r * t + c);
        targets[i] = c + 1 < t ? ids[i + 1] : -100;
        positions[i] = static_cast<std::int32_t>(c);
      }
    }
    HostBatch host(rows, t, ids, targets, positions, std::vector<std::int32_t>(ids.size(), 0));
    host.batch.doc_ids = backend::Tensor{};
    const std::int64_t v = cfg.spec.vocab_size, pv = cfg.spec.padded_vocab();
    backend::Buffer padded(DType::kF32, Shape{rows * t, pv});
    const backend::Tensor out = padded.tensor();
    const double sum = model->forward(host.batch, &out);
    EXPECT_TRUE(std::isfinite(sum));
    std::vector<float> got(static_cast<std::size_t>(rows * t * v));
    for (std::int64_t r = 0; r < rows * t; ++r)
      std::copy_n(padded.ptr<float>() + r * pv, v, got.begin() + r * v);
    return got;
  }
};

struct Case {
  const char* name;
  const char* model_type;
  const char* dtype;  // of every tensor in model.safetensors
  bool padded;        // Tailor pads this vocabulary (the export must strip the padding)
};

const Case kCases[] = {
    {"llama_trained", "llama", "F32", true},
    {"gpt2_trained", "gpt2", "F32", true},
    {"qwen2_bf16", "qwen2", "BF16", true},
    {"qwen2_window", "qwen2", "F32", true},
    {"qwen3_window", "qwen3", "F32", true},
    {"qwen3_f32", "qwen3", "F32", true},
    {"phi3_f32", "phi3", "F32", true},
    {"qwen3_yarn_f32", "qwen3", "F32", true},
    {"phi3_longrope_f32", "phi3", "F32", true},
    {"gemma3", "gemma3_text", "F32", true},
};

class ExportGolden : public ::testing::TestWithParam<Case> {
 protected:
  std::string dir() const { return export_dir(GetParam().name); }
};

TEST_P(ExportGolden, LogitsMatchTransformers) {
  Loaded m(dir());
  EXPECT_EQ(m.cfg.model_type, GetParam().model_type);
  const SafetensorsFile expected(dir() + "/expected_logits.safetensors");
  const std::vector<std::int64_t>& shape = expected.info("input_ids").shape;
  ASSERT_EQ(shape.size(), 2u);
  const std::int64_t b = shape[0], t = shape[1], v = m.cfg.spec.vocab_size;
  ASSERT_EQ(expected.info("logits").shape, (std::vector<std::int64_t>{b, t, v}));

  const std::vector<float> got = m.logits(read_i32(expected, "input_ids"), b, t);
  const std::vector<float> want = read_f32(expected, "logits");
  const double err = rel_error(got, want);
  double worst_pos_err = 0.0;
  std::int64_t worst_pos = 0;
  for (std::int64_t r = 0; r < b * t; ++r) {
    const auto off = static_cast<std::size_t>(r * v);
    const auto n = static_cast<std::size_t>(v);
    const double e = rel_error(std::span<const float>(got).subspan(off, n),
                               std::span<const float>(want).subspan(off, n));
    if (e > worst_pos_err) {
      worst_pos_err = e;
      worst_pos = r;
    }
  }
  std::printf("[export] %-14s logits rel %.3e (worst row b=%lld t=%lld: %.3e)\n", GetParam().name,
              err, static_cast<long long>(worst_pos / t), static_cast<long long>(worst_pos % t),
              worst_pos_err);
  EXPECT_LT(err, kLogitsTol);
}

// Greedy decoding by teacher forcing: the prompt (row 0) and the tokens transformers generated,
// one forward pass; the argmax at each step must be the token transformers chose (the fixture
// script made sure each step is won by a clear margin).
TEST_P(ExportGolden, GreedyTokensMatchTransformers) {
  Loaded m(dir());
  const SafetensorsFile expected(dir() + "/expected_logits.safetensors");
  const std::int64_t t = expected.info("input_ids").shape.at(1);
  const std::vector<std::int32_t> ids = read_i32(expected, "input_ids");
  const std::vector<std::int32_t> gen = read_i32(expected, "generated_ids");
  ASSERT_FALSE(gen.empty());
  std::vector<std::int32_t> seq(ids.begin(), ids.begin() + t);
  seq.insert(seq.end(), gen.begin(), gen.end() - 1);
  const auto len = static_cast<std::int64_t>(seq.size());
  const std::vector<float> logits = m.logits(seq, 1, len);
  const std::int64_t v = m.cfg.spec.vocab_size;
  std::vector<std::int32_t> got;
  for (std::int64_t p = t - 1; p < len; ++p) {
    const auto row = logits.begin() + p * v;
    got.push_back(static_cast<std::int32_t>(std::max_element(row, row + v) - row));
  }
  EXPECT_EQ(got, gen);
}

// What transformers needs to load the directory: vocab_size rows (no padding), a tied head not
// stored, one dtype, exactly the tensors Tailor's model has in HF names.
TEST_P(ExportGolden, LayoutIsWhatTransformersLoads) {
  const Case& c = GetParam();
  const nlohmann::json config = read_json(dir() + "/config.json");
  ASSERT_TRUE(config.is_object());
  EXPECT_EQ(config.value("model_type", ""), c.model_type);
  const HfModelConfig cfg = read_hf_config(dir());
  const std::int64_t v = cfg.spec.vocab_size;
  EXPECT_EQ(config.value("vocab_size", std::int64_t{0}), v);
  EXPECT_EQ(cfg.spec.padded_vocab() > v, c.padded)
      << "vocab " << v << " padded to " << cfg.spec.padded_vocab();

  const SafetensorsFile weights(dir() + "/model.safetensors");
  for (const SafetensorsTensorInfo& info : weights.tensors())
    EXPECT_EQ(info.dtype, c.dtype) << info.name;
  const bool gpt2 = cfg.model_type == "gpt2";
  const std::string embed = gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight";
  ASSERT_TRUE(weights.has(embed));
  EXPECT_EQ(weights.info(embed).shape, (std::vector<std::int64_t>{v, cfg.spec.hidden_size}));
  EXPECT_EQ(config.value("tie_word_embeddings", false), cfg.spec.tie_embeddings);
  // GPT-2 always ties its head (as the qwen3 fixture does): config.json says so and no
  // lm_head.weight is stored.
  if (gpt2) EXPECT_TRUE(cfg.spec.tie_embeddings);
  if (cfg.spec.tie_embeddings) {
    EXPECT_TRUE(config.value("tie_word_embeddings", false));
    EXPECT_FALSE(weights.has("lm_head.weight"));
  } else {
    ASSERT_TRUE(weights.has("lm_head.weight"));
    EXPECT_EQ(weights.info("lm_head.weight").shape,
              (std::vector<std::int64_t>{v, cfg.spec.hidden_size}));
  }

  Loaded m(dir());
  std::set<std::string> want;
  for (const HfTensor& t : to_hf_tensors(m.cfg, *m.model, m.ops, /*gradients=*/false))
    want.insert(t.name);
  const std::vector<std::string> names = weights.names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), want);
}

std::string case_name(const ::testing::TestParamInfo<Case>& p) { return p.param.name; }

INSTANTIATE_TEST_SUITE_P(Exports, ExportGolden, ::testing::ValuesIn(kCases), case_name);

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Today's `tailor export`, run with the arguments the fixture script used (export_args.txt, paths
// relative to the repository root), must write exactly the committed files.
class TodaysExport : public ::testing::TestWithParam<const char*> {};

TEST_P(TodaysExport, WritesTheCommittedFilesByteForByte) {
  namespace fs = std::filesystem;
  const std::string fixture = std::string(TAILOR_SOURCE_DIR) + "/tests/golden/" + GetParam();
  std::string args = read_bytes(fixture + "/export_args.txt");
  ASSERT_FALSE(args.empty()) << fixture << "/export_args.txt";
  args.erase(args.find_last_not_of('\n') + 1);
  const fs::path out = fs::temp_directory_path() /
                       ("tailor-todays-export-" + std::to_string(::getpid()) + "-" +
                        std::string(GetParam()).replace(std::string(GetParam()).find('/'), 1, "-"));
  fs::remove_all(out);
  const std::string cmd = "cd " TAILOR_SOURCE_DIR " && " TAILOR_BINARY_DIR "/tailor " + args +
                          " --out " + out.string() + " --threads 1 >" + out.string() + ".log 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string log = read_bytes(out.string() + ".log");
  fs::remove(out.string() + ".log");
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd << "\n" << log;
  std::set<std::string> written;
  for (const fs::directory_entry& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    written.insert(name);
    EXPECT_TRUE(fs::exists(fixture + "/" + name)) << name << ": written but not in the fixture";
    if (!fs::exists(fixture + "/" + name)) continue;
    const std::string got = read_bytes(e.path().string()), want = read_bytes(fixture + "/" + name);
    std::size_t first = 0;
    while (first < got.size() && first < want.size() && got[first] == want[first]) ++first;
    EXPECT_TRUE(got == want) << name << " differs from the fixture at byte " << first << " of "
                             << want.size() << " (" << got.size()
                             << " written): regenerate the fixture (tests/golden/make_*_fixtures.py "
                                "--tailor build/tailor) so the reference checks today's export";
  }
  for (const char* name : {"config.json", "model.safetensors", "adapter_config.json",
                           "adapter_model.safetensors"})
    if (fs::exists(fixture + "/" + name)) EXPECT_TRUE(written.count(name) == 1) << name << " not written";
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TodaysExport,
                         ::testing::Values("exports/llama_trained", "exports/gpt2_trained",
                                           "exports/qwen2_bf16", "exports/qwen2_window",
                                           "exports/qwen3_window",
                                           "exports/qwen3_f32",
                                           "exports/phi3_f32", "exports/qwen3_yarn_f32",
                                           "exports/phi3_longrope_f32",
                                           "peft/tailor_lora",
                                           "peft/tailor_prompt", "peft/tailor_ia3",
                                           "peft/tailor_dora"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           std::string name = p.param;
                           return name.substr(name.find('/') + 1);
                         });

// The bf16 export holds the qwen2 fixture's f32 weights rounded to nearest even, tensor by tensor.
TEST(ExportGoldenBf16, WeightsAreTheSourceRoundedToBf16) {
  const std::string src = std::string(TAILOR_SOURCE_DIR) + "/tests/golden/models/qwen2";
  const SafetensorsFile f32(src + "/model.safetensors");
  const SafetensorsFile bf16(export_dir("qwen2_bf16") + "/model.safetensors");
  const std::vector<std::string> a = f32.names(), b = bf16.names();
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()), std::set<std::string>(b.begin(), b.end()));
  for (const std::string& name : a) {
    if (!bf16.has(name)) continue;
    ASSERT_EQ(bf16.info(name).dtype, "BF16") << name;
    ASSERT_EQ(bf16.info(name).shape, f32.info(name).shape) << name;
    const std::vector<float> want = read_f32(f32, name);
    const std::span<const std::byte> raw = bf16.raw(name);
    ASSERT_EQ(raw.size(), want.size() * sizeof(std::uint16_t)) << name;
    std::size_t differ = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      std::uint16_t got = 0;  // little-endian, as safetensors stores it
      std::memcpy(&got, raw.data() + i * sizeof(got), sizeof(got));
      if (got != float_to_bf16(want[i]).bits) ++differ;
    }
    EXPECT_EQ(differ, 0u) << name;
  }
}

}  // namespace
}  // namespace tailor::checkpoint
