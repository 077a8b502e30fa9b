// The model section: the architecture to train, or model.path, a Hugging Face model directory
// whose config.json defines it.
//
// Two keys change how the others are read: model.path (then the architecture keys must not be
// given, and the resolved config keeps only path and init_std) and model.family (gpt2 changes the
// defaults of some keys before they are read, so values the user gives still win).
#include <filesystem>
#include <string_view>

#include "config/schema.h"
#include "core/limits.h"

namespace tailor::config {
namespace {

// The one key besides model.path that a config with a model directory keeps.
constexpr std::string_view kKeptWithPath = "init_std";

void check_path(SchemaReader& r, const std::string& path, const ModelConfig& m) {
  if (m.path.empty()) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(m.path, ec)) {
    r.problem(path, fmt::format("not a directory: {}", m.path));
  } else if (!fs::exists(fs::path(m.path) / "config.json", ec)) {
    r.problem(path, fmt::format("no config.json in {} (expected a Hugging Face model directory)",
                                m.path));
  }
}

void use_gpt2_defaults(ModelConfig& m) {
  m.norm = NormKind::kLayerNorm;
  m.position = PositionKind::kLearned;
  m.mlp = MlpKind::kGelu;
  m.attention_bias = true;
  m.mlp_bias = true;
  m.tie_embeddings = true;
}

void read_model(SectionReader<ModelConfig>& r) {
  ModelConfig& m = r.value();
  if (r.read("path") && !m.path.empty()) {
    r.refuse_rest({kKeptWithPath},
                  "comes from model.path's config.json; remove it (or remove model.path)");
    r.read(kKeptWithPath);
    return;
  }
  if (r.read("family") && m.family == ModelFamily::kGpt2) use_gpt2_defaults(m);
  r.read_rest();
}

bool writes_key(const ModelConfig& m, std::string_view key) {
  if (m.path.empty()) return key != "path";
  return key == "path" || key == kKeptWithPath;
}

}  // namespace

const Section<ModelConfig>& model_section() {
  using S = ModelConfig;
  using F = Field<S>;
  constexpr Presence kRequired = Presence::kRequired;
  static const Section<S> section{
      "model",
      &ExperimentConfig::model,
      {
          F{"path", text(&S::path), Resume::kFixed,
            "a Hugging Face model directory to fine-tune (config.json, *.safetensors, tokenizer)"}
              .checked_by(check_path),
          {"family", choice(&S::family), Resume::kFixed,
           "architecture family; gpt2 sets the defaults of norm, position, mlp, biases, tying"},
          {"vocab_size", integer(&S::vocab_size, IntRange{1, limits::kVocab}, kRequired), Resume::kFixed,
           "rows of the embedding and the LM head"},
          {"hidden_size", integer(&S::hidden_size, IntRange{1, limits::kHidden}, kRequired), Resume::kFixed,
           "width of the residual stream"},
          {"num_layers", integer(&S::num_layers, IntRange{1, limits::kLayers}, kRequired), Resume::kFixed,
           "decoder layers"},
          {"num_heads", integer(&S::num_heads, IntRange{1, limits::kHeads}, kRequired), Resume::kFixed,
           "query heads"},
          {"num_kv_heads", integer(&S::num_kv_heads, IntRange{1, limits::kHeads}), Resume::kFixed,
           "key/value heads (default num_heads; fewer: grouped-query attention)"},
          {"head_dim", integer(&S::head_dim, IntRange{1, limits::kHeadDim}), Resume::kFixed,
           "width of one head (default hidden_size / num_heads)"},
          {"intermediate_size", integer(&S::intermediate_size, IntRange{1, limits::kIntermediate}, kRequired),
           Resume::kFixed, "inner width of the MLP"},
          {"max_position_embeddings", integer(&S::max_position_embeddings, IntRange{1, limits::kPositions}),
           Resume::kFixed, "longest sequence the model handles"},
          {"norm", choice(&S::norm), Resume::kFixed, "normalization layer"},
          {"norm_eps", real(&S::norm_eps, kPositive), Resume::kFixed, "epsilon inside the norm"},
          {"position", choice(&S::position), Resume::kFixed,
           "rotary embeddings or a learned position table"},
          {"rope_theta", real(&S::rope_theta, kPositive), Resume::kFixed, "RoPE base frequency"},
          {"mlp", choice(&S::mlp), Resume::kFixed, "MLP type"},
          {"attention_bias", boolean(&S::attention_bias), Resume::kFixed,
           "biases on the Q, K, V and O projections"},
          {"mlp_bias", boolean(&S::mlp_bias), Resume::kFixed, "biases on the MLP projections"},
          {"tie_embeddings", boolean(&S::tie_embeddings), Resume::kFixed,
           "the LM head shares the token embedding matrix"},
          {"init_std", real(&S::init_std, kPositive), Resume::kFixed,
           "standard deviation of the random initialization"},
      },
      read_model,
      writes_key};
  return section;
}

}  // namespace tailor::config
