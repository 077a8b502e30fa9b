// gemma3_text (Gemma3ForCausalLM, the text model of Gemma 3; decision 46): RMSNorms that scale by
// (1 + w) with norms before and after attention and MLP ("sandwich"), a GeGLU MLP with the tanh
// GELU, token embeddings times sqrt(hidden_size), q/k norm, the softmax scale
// query_pre_attn_scalar^-1/2, layers that alternate sliding-window and global attention as
// `layer_types` says (5 : 1 in the released models) with a RoPE base of their own on the sliding
// ones, and a tied head. transformers 5 writes the two RoPE bases as rope_parameters
// {full_attention, sliding_attention}; transformers 4 wrote rope_theta, rope_scaling and
// rope_local_base_freq: both are read. Logit soft-capping (Gemma 2's) and bidirectional attention
// are refused. The multimodal `gemma3` config (Gemma3ForConditionalGeneration) is not this family.
#include <cmath>

#include "core/error.h"
#include "model/families/llama_style.h"

namespace tailor::model {
namespace {

using nlohmann::json;

class Gemma3 final : public LlamaStyleFamily {
 public:
  [[nodiscard]] std::string_view model_type() const override { return "gemma3_text"; }

  void read_config(const HfConfigReader& c, ModelSpec& s) const override {
    s.vocab_size = c.integer("vocab_size", 262208);
    s.hidden_size = c.integer("hidden_size", 2304);
    s.num_layers = c.integer("num_hidden_layers", 26);
    s.num_heads = c.integer("num_attention_heads", 8);
    s.num_kv_heads = c.integer("num_key_value_heads", 4);
    s.head_dim = c.integer("head_dim", 256);
    s.intermediate_size = c.integer("intermediate_size", 9216);
    s.max_position_embeddings = c.integer("max_position_embeddings", 131072);
    s.norm = NormType::kRmsNorm;
    s.norm_eps = c.number("rms_norm_eps", 1e-6);
    s.position = PositionType::kRope;
    s.mlp = MlpType::kGeGLU;
    c.require_activation("hidden_activation", {"gelu_pytorch_tanh"}, "gelu_pytorch_tanh");
    s.attention_bias = c.boolean("attention_bias", false);
    s.o_bias = s.attention_bias;
    s.qk_norm = true;
    s.norm_unit_offset = true;
    s.sandwich_norms = true;
    // transformers: torch.tensor(hidden_size ** 0.5) (f32), cast to the embeddings' dtype.
    s.embedding_multiplier =
        static_cast<double>(static_cast<float>(std::sqrt(static_cast<double>(s.hidden_size))));
    s.query_pre_attn_scalar = c.number("query_pre_attn_scalar", 256.0);
    if (!(s.query_pre_attn_scalar > 0.0))
      throw_user_error(c.where(), "query_pre_attn_scalar: must be > 0, got {}",
                       s.query_pre_attn_scalar);
    s.tie_embeddings = c.boolean("tie_word_embeddings", true);
    for (const char* key : {"attn_logit_softcapping", "final_logit_softcapping"})
      if (c.has(key))
        throw_user_error(c.where(), "{}: logit soft-capping is not supported for gemma3_text "
                                    "(null in every released Gemma 3)",
                         key);
    if (c.boolean("use_bidirectional_attention", false))
      throw_user_error(c.where(), "use_bidirectional_attention: true is not supported (a causal "
                                  "language model only)");
    read_window(c, s);
    read_rope_bases(c, s);
  }

  void write_config(const ModelSpec& s, json& j) const override {
    j["architectures"] = {"Gemma3ForCausalLM"};
    j["model_type"] = "gemma3_text";
    j["vocab_size"] = s.vocab_size;
    j["hidden_size"] = s.hidden_size;
    j["intermediate_size"] = s.intermediate_size;
    j["num_hidden_layers"] = s.num_layers;
    j["num_attention_heads"] = s.num_heads;
    j["num_key_value_heads"] = s.num_kv_heads;
    j["head_dim"] = s.head_dim;
    j["hidden_activation"] = "gelu_pytorch_tanh";
    j["max_position_embeddings"] = s.max_position_embeddings;
    j["rms_norm_eps"] = s.norm_eps;
    j["attention_bias"] = s.attention_bias;
    // transformers' config class types it int (a float fails its validation).
    if (s.query_pre_attn_scalar == std::floor(s.query_pre_attn_scalar))
      j["query_pre_attn_scalar"] = static_cast<std::int64_t>(s.query_pre_attn_scalar);
    else
      j["query_pre_attn_scalar"] = s.query_pre_attn_scalar;
    j["tie_word_embeddings"] = s.tie_embeddings;
    j["attn_logit_softcapping"] = nullptr;
    j["final_logit_softcapping"] = nullptr;
    j["use_bidirectional_attention"] = false;
    j["sliding_window"] = s.sliding_window > 0 ? s.sliding_window : 4096;
    j["layer_types"] = layer_types_json(s.sliding_layers, s.num_layers);
    // transformers 5's form: one RoPE per layer type.
    json full;
    write_rope(s, full);
    json global = full.contains("rope_scaling") ? full["rope_scaling"] : json::object();
    if (!global.contains("rope_type")) global["rope_type"] = "default";
    global["rope_theta"] = s.rope_theta;
    j["rope_parameters"] = {
        {"full_attention", global},
        {"sliding_attention",
         {{"rope_type", "default"},
          {"rope_theta", s.rope_local_theta > 0.0 ? s.rope_local_theta : s.rope_theta}}}};
  }

  [[nodiscard]] bool represents(const ModelSpec& s) const override {
    return s.norm_unit_offset && s.sandwich_norms && s.qk_norm && s.mlp == MlpType::kGeGLU &&
           s.norm == NormType::kRmsNorm && s.position == PositionType::kRope &&
           s.attention_bias == s.o_bias && !s.mlp_bias;
  }

  // peft's defaults for gemma3_text (TRANSFORMERS_MODELS_TO_IA3_..._MAPPING): as LLaMA's.

 private:
  // The window and which layers slide: layer_types, else every sliding_window_pattern-th layer
  // is global (transformers 4's rule, pattern 6).
  static void read_window(const HfConfigReader& c, ModelSpec& s) {
    std::optional<std::vector<bool>> types = read_layer_types(c, s.num_layers);
    if (c.raw().contains("sliding_window") && c.raw()["sliding_window"].is_null()) {
      if (types)
        for (bool t : *types)
          if (t)
            throw_user_error(c.where(), "layer_types: sliding layers but sliding_window is null");
      return;
    }
    s.sliding_window = c.integer("sliding_window", 4096);
    if (s.sliding_window == 0)
      throw_user_error(c.where(), "sliding_window: must be at least 1 (null for no window), got 0");
    if (!types) {
      const char* key = c.has("sliding_window_pattern") ? "sliding_window_pattern"
                                                         : "_sliding_window_pattern";
      const std::int64_t pattern = c.integer(key, 6);
      if (pattern == 0) throw_user_error(c.where(), "{}: must be at least 1", key);
      types.emplace();
      for (std::int64_t l = 0; l < s.num_layers; ++l) types->push_back((l + 1) % pattern != 0);
    }
    s.sliding_layers = std::move(*types);
    if (!s.has_sliding_window()) {
      s.sliding_window = 0;
      s.sliding_layers.clear();
    }
  }

  // The global layers' RoPE (any type read_rope knows) and the sliding layers' base ("default").
  static void read_rope_bases(const HfConfigReader& c, ModelSpec& s) {
    const json& raw = c.raw();
    if (c.has("rope_parameters") && raw["rope_parameters"].is_object() &&
        (raw["rope_parameters"].contains("full_attention") ||
         raw["rope_parameters"].contains("sliding_attention"))) {
      const json& rp = raw["rope_parameters"];
      for (const char* type : {"full_attention", "sliding_attention"})
        if (!rp.contains(type) || !rp[type].is_object())
          throw_user_error(c.where(), "rope_parameters.{}: expected an object", type);
      // The global one through read_rope, as if it were the whole rope_parameters.
      json global = {{"rope_parameters", rp["full_attention"]},
                     {"max_position_embeddings", s.max_position_embeddings},
                     {"rope_theta", 1000000.0}};
      read_rope(HfConfigReader(global, c.where() + " (rope_parameters.full_attention)"), s);
      const HfConfigReader local(rp["sliding_attention"],
                                 c.where() + " (rope_parameters.sliding_attention)");
      const std::string type = local.string("rope_type", "default");
      if (type != "default")
        throw_user_error(c.where(), "rope_parameters.sliding_attention.rope_type: {} is not "
                                    "supported (default)",
                         type);
      s.rope_local_theta = local.number("rope_theta", 10000.0);
    } else {
      json with_default = raw;
      if (!c.has("rope_theta")) with_default["rope_theta"] = 1000000.0;
      read_rope(HfConfigReader(with_default, c.where()), s);
      s.rope_local_theta = c.number("rope_local_base_freq", 10000.0);
    }
    if (!(s.rope_local_theta > 0.0))
      throw_user_error(c.where(), "the sliding layers' RoPE base must be > 0, got {}",
                       s.rope_local_theta);
  }
};

}  // namespace

const Family& gemma3_family() {
  static const Gemma3 f;
  return f;
}

}  // namespace tailor::model
