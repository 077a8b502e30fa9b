#include "model/families/hf_config_reader.h"

#include "core/error.h"

namespace tailor::model {

using nlohmann::json;

std::int64_t HfConfigReader::integer(const char* key, std::optional<std::int64_t> fallback) const {
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

double HfConfigReader::number(const char* key, double fallback) const {
  if (!has(key)) return fallback;
  const json& v = j_[key];
  if (!v.is_number()) throw_user_error(where_, "{}: expected a number, got {}", key, v.dump());
  return v.get<double>();
}

bool HfConfigReader::boolean(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  const json& v = j_[key];
  if (!v.is_boolean()) throw_user_error(where_, "{}: expected true or false, got {}", key, v.dump());
  return v.get<bool>();
}

std::string HfConfigReader::string(const char* key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  const json& v = j_[key];
  if (!v.is_string()) throw_user_error(where_, "{}: expected a string, got {}", key, v.dump());
  return v.get<std::string>();
}

std::int32_t HfConfigReader::token_id(const char* key) const {
  if (!has(key)) return -1;
  const json& v = j_[key];
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<std::int32_t>();
  if (v.is_number_integer()) return v.get<std::int32_t>();
  throw_user_error(where_, "{}: expected a token id, got {}", key, v.dump());
}

void HfConfigReader::require_activation(const char* key, std::initializer_list<const char*> ok,
                                        const char* fallback) const {
  const std::string act = string(key, fallback);
  for (const char* a : ok)
    if (act == a) return;
  throw_user_error(where_, "{}: {} is not supported for this family", key, act);
}

void read_rope(const HfConfigReader& c, ModelSpec& s) {
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
  const HfConfigReader r(*scaling, c.where());
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

void write_rope(const ModelSpec& s, json& j) {
  j["rope_theta"] = s.rope_theta;
  if (s.rope_type == "default") return;
  json r{{"rope_type", s.rope_type}, {"factor", s.rope_factor}};
  if (s.rope_type == "llama3") {
    r["low_freq_factor"] = s.rope_low_freq_factor;
    r["high_freq_factor"] = s.rope_high_freq_factor;
    r["original_max_position_embeddings"] = s.rope_original_max_positions;
  }
  j["rope_scaling"] = r;
}

}  // namespace tailor::model
