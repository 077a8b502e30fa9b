// config.json -> HfModelConfig for the supported families, and back (hf_config_json).
//
// Every problem is a UserError naming `dir/config.json` and the key. Keys a family does not use
// are ignored (Hub configs carry many); values that change the computation in ways Tailor does not
// implement (another activation, an unknown RoPE type, ...) are refused.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "checkpoint/hf_model.h"
#include "checkpoint/hf_model_internal.h"

namespace tailor::checkpoint {
namespace {

using nlohmann::json;

class ConfigReader {
 public:
  ConfigReader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  [[nodiscard]] bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  std::int64_t integer(const char* key, std::optional<std::int64_t> fallback = std::nullopt) const {
    if (!has(key)) {
      if (fallback) return *fallback;
      throw_user_error(where_, "{}: required key is missing", key);
    }
    const json& v = j_[key];
    if (!v.is_number_integer()) throw_user_error(where_, "{}: expected an integer, got {}", key, v.dump());
    const std::int64_t x = v.get<std::int64_t>();
    if (x < 0) throw_user_error(where_, "{}: must be >= 0, got {}", key, x);
    return x;
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_[key];
    if (!v.is_number()) throw_user_error(where_, "{}: expected a number, got {}", key, v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_[key];
    if (!v.is_boolean()) throw_user_error(where_, "{}: expected true or false, got {}", key, v.dump());
    return v.get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_[key];
    if (!v.is_string()) throw_user_error(where_, "{}: expected a string, got {}", key, v.dump());
    return v.get<std::string>();
  }
  // A token id, or the first of a list of ids; -1 when absent.
  std::int32_t token_id(const char* key) const {
    if (!has(key)) return -1;
    const json& v = j_[key];
    if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<std::int32_t>();
    if (v.is_number_integer()) return v.get<std::int32_t>();
    throw_user_error(where_, "{}: expected a token id, got {}", key, v.dump());
  }
  [[nodiscard]] const json& raw() const { return j_; }
  [[nodiscard]] const std::string& where() const { return where_; }

 private:
  const json& j_;
  std::string where_;
};

void read_rope(const ConfigReader& c, model::ModelSpec& s) {
  // transformers 5 writes rope_parameters {rope_theta, rope_type, ...}; Hub configs rope_theta and
  // rope_scaling {rope_type | type, factor, ...}.
  const json* params = nullptr;
  if (c.has("rope_parameters")) {
    params = &c.raw()["rope_parameters"];
    if (!params->is_object())
      throw_user_error(c.where(), "rope_parameters: expected an object, got {}", params->dump());
  }
  s.rope_theta = c.number("rope_theta", 10000.0);
  const json* scaling = params;
  if (c.has("rope_scaling")) {
    scaling = &c.raw()["rope_scaling"];
    if (!scaling->is_object())
      throw_user_error(c.where(), "rope_scaling: expected an object, got {}", scaling->dump());
  }
  if (params != nullptr && params->contains("rope_theta")) {
    const json& t = (*params)["rope_theta"];
    if (!t.is_number()) throw_user_error(c.where(), "rope_parameters.rope_theta: expected a number");
    s.rope_theta = t.get<double>();
  }
  if (scaling == nullptr) return;
  const ConfigReader r(*scaling, c.where());
  const char* section = scaling == params ? "rope_parameters" : "rope_scaling";
  std::string type = r.string("rope_type", r.string("type", "default"));
  if (type == "default") return;
  if (type != "linear" && type != "llama3")
    throw_user_error(c.where(), "{}.rope_type: {} is not supported (default, linear, llama3)",
                     section, type);
  s.rope_type = type;
  s.rope_factor = r.number("factor", 1.0);
  if (type == "llama3") {
    s.rope_low_freq_factor = r.number("low_freq_factor", 1.0);
    s.rope_high_freq_factor = r.number("high_freq_factor", 4.0);
    s.rope_original_max_positions = r.integer("original_max_position_embeddings", 8192);
  }
}

void require_activation(const ConfigReader& c, const char* key, std::initializer_list<const char*> ok,
                        const char* fallback) {
  const std::string act = c.string(key, fallback);
  for (const char* a : ok)
    if (act == a) return;
  throw_user_error(c.where(), "{}: {} is not supported for this family", key, act);
}

}  // namespace

HfModelConfig read_hf_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream f(path);
  if (!f) throw_user_error(path, "cannot read (a Hugging Face model directory needs config.json)");
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw_user_error(path, "not a JSON object");
  const ConfigReader c(j, path);

  HfModelConfig out;
  out.model_type = c.string("model_type", "");
  model::ModelSpec& s = out.spec;
  const std::string& t = out.model_type;
  if (t == "llama" || t == "mistral" || t == "qwen2") {
    s.vocab_size = c.integer("vocab_size");
    s.hidden_size = c.integer("hidden_size");
    s.num_layers = c.integer("num_hidden_layers");
    s.num_heads = c.integer("num_attention_heads");
    s.num_kv_heads = c.integer("num_key_value_heads", s.num_heads);
    s.head_dim = c.integer("head_dim", s.num_heads > 0 ? s.hidden_size / s.num_heads : 0);
    s.intermediate_size = c.integer("intermediate_size");
    s.max_position_embeddings = c.integer("max_position_embeddings", 2048);
    s.norm = model::NormType::kRmsNorm;
    s.norm_eps = c.number("rms_norm_eps", 1e-6);
    s.position = model::PositionType::kRope;
    s.mlp = model::MlpType::kSwiGLU;
    require_activation(c, "hidden_act", {"silu"}, "silu");
    read_rope(c, s);
    if (t == "qwen2") {
      s.attention_bias = true;  // q, k, v
      s.o_bias = false;
      s.tie_embeddings = c.boolean("tie_word_embeddings", false);
      if (c.boolean("use_sliding_window", false)) out.sliding_window = c.integer("sliding_window", 0);
    } else {
      s.attention_bias = c.boolean("attention_bias", false);
      s.o_bias = s.attention_bias;
      s.mlp_bias = c.boolean("mlp_bias", false);
      s.tie_embeddings = c.boolean("tie_word_embeddings", false);
      if (t == "mistral") out.sliding_window = c.integer("sliding_window", 0);
    }
  } else if (t == "gpt2") {
    s.vocab_size = c.integer("vocab_size");
    s.hidden_size = c.integer("n_embd");
    s.num_layers = c.integer("n_layer");
    s.num_heads = c.integer("n_head");
    s.num_kv_heads = s.num_heads;
    s.head_dim = s.num_heads > 0 ? s.hidden_size / s.num_heads : 0;
    s.intermediate_size = c.integer("n_inner", 4 * s.hidden_size);
    s.max_position_embeddings = c.integer("n_positions", 1024);
    s.norm = model::NormType::kLayerNorm;
    s.norm_eps = c.number("layer_norm_epsilon", 1e-5);
    s.position = model::PositionType::kLearned;
    s.mlp = model::MlpType::kGelu;
    require_activation(c, "activation_function", {"gelu_new", "gelu_pytorch_tanh"}, "gelu_new");
    s.attention_bias = s.o_bias = s.mlp_bias = true;
    s.tie_embeddings = true;
    if (c.boolean("scale_attn_by_inverse_layer_idx", false) || c.boolean("reorder_and_upcast_attn", false))
      throw_user_error(path, "scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported");
  } else if (t.empty()) {
    throw_user_error(path, "model_type: required key is missing");
  } else {
    throw_user_error(path, "model_type: {} is not supported (llama, mistral, qwen2, gpt2)", t);
  }
  if (s.vocab_size < 1 || s.hidden_size < 1 || s.num_layers < 1 || s.num_heads < 1 ||
      s.num_kv_heads < 1 || s.intermediate_size < 1 || s.head_dim < 1)
    throw_user_error(path, "model dimensions must be positive");
  if (s.num_heads % s.num_kv_heads != 0)
    throw_user_error(path, "num_key_value_heads ({}) must divide num_attention_heads ({})",
                     s.num_kv_heads, s.num_heads);
  if (s.head_dim % 2 != 0 && s.position == model::PositionType::kRope)
    throw_user_error(path, "head_dim ({}) must be even for RoPE", s.head_dim);
  out.bos_token_id = c.token_id("bos_token_id");
  out.eos_token_id = c.token_id("eos_token_id");
  s.init_std = c.number("initializer_range", 0.02);
  return out;
}

std::string hf_config_json(const HfModelConfig& cfg, const char* torch_dtype) {
  const model::ModelSpec& s = cfg.spec;
  json j;
  if (cfg.model_type == "gpt2") {
    j["architectures"] = {"GPT2LMHeadModel"};
    j["model_type"] = "gpt2";
    j["vocab_size"] = s.vocab_size;
    j["n_embd"] = s.hidden_size;
    j["n_layer"] = s.num_layers;
    j["n_head"] = s.num_heads;
    j["n_inner"] = s.intermediate_size;
    j["n_positions"] = s.max_position_embeddings;
    j["layer_norm_epsilon"] = s.norm_eps;
    j["activation_function"] = "gelu_new";
    j["tie_word_embeddings"] = true;
  } else {
    const std::string arch = cfg.model_type == "qwen2" ? "Qwen2ForCausalLM"
                             : cfg.model_type == "mistral" ? "MistralForCausalLM"
                                                           : "LlamaForCausalLM";
    j["architectures"] = {arch};
    j["model_type"] = cfg.model_type;
    j["vocab_size"] = s.vocab_size;
    j["hidden_size"] = s.hidden_size;
    j["intermediate_size"] = s.intermediate_size;
    j["num_hidden_layers"] = s.num_layers;
    j["num_attention_heads"] = s.num_heads;
    j["num_key_value_heads"] = s.num_kv_heads;
    j["head_dim"] = s.head_dim;
    j["hidden_act"] = "silu";
    j["max_position_embeddings"] = s.max_position_embeddings;
    j["rms_norm_eps"] = s.norm_eps;
    j["rope_theta"] = s.rope_theta;
    if (s.rope_type != "default") {
      json r{{"rope_type", s.rope_type}, {"factor", s.rope_factor}};
      if (s.rope_type == "llama3") {
        r["low_freq_factor"] = s.rope_low_freq_factor;
        r["high_freq_factor"] = s.rope_high_freq_factor;
        r["original_max_position_embeddings"] = s.rope_original_max_positions;
      }
      j["rope_scaling"] = r;
    }
    j["tie_word_embeddings"] = s.tie_embeddings;
    if (cfg.model_type == "llama") {
      j["attention_bias"] = s.attention_bias;
      j["mlp_bias"] = s.mlp_bias;
    }
    if (cfg.sliding_window > 0) {
      j["sliding_window"] = cfg.sliding_window;
      if (cfg.model_type == "qwen2") j["use_sliding_window"] = true;
    }
  }
  j["initializer_range"] = s.init_std;
  // null, not absent: transformers would otherwise fill in its family default (e.g. GPT-2's 50256).
  j["bos_token_id"] = cfg.bos_token_id >= 0 ? json(cfg.bos_token_id) : json(nullptr);
  j["eos_token_id"] = cfg.eos_token_id >= 0 ? json(cfg.eos_token_id) : json(nullptr);
  j["torch_dtype"] = torch_dtype;
  return j.dump(2) + "\n";
}

}  // namespace tailor::checkpoint
