// config.json -> HfModelConfig through the family registry (src/model/family.h), and back
// (hf_config_json).
//
// The family reads its own keys; the checks every family shares run here. Every problem is a
// UserError naming `dir/config.json` and the key.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "checkpoint/hf_model.h"
#include "core/limits.h"
#include "checkpoint/hf_model_internal.h"
#include "model/families/hf_config_reader.h"

namespace tailor::checkpoint {

using nlohmann::json;

const model::Family& HfModelConfig::family() const {
  const model::Family* f = model::find_family(model_type);
  TAILOR_ASSERT(f != nullptr, "model_type '{}' has no registered family", model_type);
  return *f;
}

HfModelConfig read_hf_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream f(path);
  if (!f) throw_user_error(path, "cannot read (a Hugging Face model directory needs config.json)");
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw_user_error(path, "not a JSON object");
  const model::HfConfigReader c(j, path);

  HfModelConfig out;
  out.model_type = c.string("model_type", "");
  if (out.model_type.empty()) throw_user_error(path, "model_type: required key is missing");
  const model::Family* family = model::find_family(out.model_type);
  if (family == nullptr)
    throw_user_error(path, "model_type: {} is not supported ({})", out.model_type,
                     model::family_names());
  model::ModelSpec& s = out.spec;
  family->read_config(c, s);
  s.model_type = out.model_type;
  if (s.vocab_size < 1 || s.hidden_size < 1 || s.num_layers < 1 || s.num_heads < 1 ||
      s.num_kv_heads < 1 || s.intermediate_size < 1 || s.head_dim < 1)
    throw_user_error(path, "model dimensions must be positive");
  // Sizes beyond any model are refused before anything is allocated for them.
  const struct {
    const char* name;
    std::int64_t value, limit;
  } sizes[] = {{"vocab_size", s.vocab_size, limits::kVocab},
               {"hidden_size", s.hidden_size, limits::kHidden},
               {"num_hidden_layers", s.num_layers, limits::kLayers},
               {"num_attention_heads", s.num_heads, limits::kHeads},
               {"num_key_value_heads", s.num_kv_heads, limits::kHeads},
               {"head_dim", s.head_dim, limits::kHeadDim},
               {"intermediate_size", s.intermediate_size, limits::kIntermediate},
               {"max_position_embeddings", s.max_position_embeddings, limits::kPositions}};
  for (const auto& size : sizes)
    if (size.value > size.limit)
      throw_user_error(path, "{}: {} is above Tailor's limit of {}", size.name, size.value,
                       size.limit);
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
  json j;
  cfg.family().write_config(cfg.spec, j);
  j["initializer_range"] = cfg.spec.init_std;
  // null, not absent: transformers would otherwise fill in its family default (e.g. GPT-2's 50256).
  j["bos_token_id"] = cfg.bos_token_id >= 0 ? json(cfg.bos_token_id) : json(nullptr);
  j["eos_token_id"] = cfg.eos_token_id >= 0 ? json(cfg.eos_token_id) : json(nullptr);
  j["torch_dtype"] = torch_dtype;
  return j.dump(2) + "\n";
}

}  // namespace tailor::checkpoint
