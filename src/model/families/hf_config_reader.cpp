#include "model/families/hf_config_reader.h"

#include <cmath>

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

std::optional<std::vector<bool>> read_layer_types(const HfConfigReader& c,
                                                  std::int64_t num_layers) {
  if (!c.has("layer_types")) return std::nullopt;
  const json& v = c.raw()["layer_types"];
  if (!v.is_array() || static_cast<std::int64_t>(v.size()) != num_layers)
    throw_user_error(c.where(),
                     "layer_types: expected a list of {} entries (num_hidden_layers), got {}",
                     num_layers, v.is_array() ? fmt::format("{} entries", v.size()) : v.dump());
  std::vector<bool> sliding;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const json& e = v[i];
    if (e == "sliding_attention") {
      sliding.push_back(true);
    } else if (e == "full_attention") {
      sliding.push_back(false);
    } else {
      throw_user_error(c.where(),
                       "layer_types[{}]: {} is not supported (full_attention or sliding_attention)",
                       i, e.dump());
    }
  }
  return sliding;
}

json layer_types_json(const std::vector<bool>& sliding, std::int64_t num_layers) {
  json out = json::array();
  for (std::int64_t l = 0; l < num_layers; ++l)
    out.push_back(sliding.empty() || sliding[static_cast<std::size_t>(l)] ? "sliding_attention"
                                                                          : "full_attention");
  return out;
}

void read_rope(const HfConfigReader& c, ModelSpec& s, std::optional<std::int64_t> original_default) {
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
  if (type != "linear" && type != "llama3" && type != "yarn" && type != "longrope")
    throw_user_error(c.where(),
                     "{}.rope_type: {} is not supported (default, linear, llama3, yarn, longrope)",
                     section, type);
  s.rope_type = type;
  s.rope_factor = r.number("factor", 1.0);
  if (type == "llama3") {
    s.rope_low_freq_factor = r.number("low_freq_factor", 1.0);
    s.rope_high_freq_factor = r.number("high_freq_factor", 4.0);
    s.rope_original_max_positions = r.integer("original_max_position_embeddings", 8192);
  }
  if (type != "yarn" && type != "longrope") return;
  // As transformers' standardize_rope_params: a top-level original_max_position_embeddings (Phi-3
  // writes it there) wins over the section's, then the family's own default, then
  // max_position_embeddings.
  const std::int64_t max_pos = c.integer("max_position_embeddings", 2048);
  s.rope_original_max_positions =
      c.has("original_max_position_embeddings")
          ? c.integer("original_max_position_embeddings")
          : r.integer("original_max_position_embeddings", original_default.value_or(max_pos));
  if (s.rope_original_max_positions == 0)
    throw_user_error(c.where(), "{}.original_max_position_embeddings: must be positive", section);
  const std::string key = std::string(section) + ".";
  const auto positive = [&](const char* name, double v) {
    if (!(v > 0.0)) throw_user_error(c.where(), "{}{}: must be positive, got {}", key, name, v);
    return v;
  };
  if (type == "yarn") {
    if (!r.has("factor")) throw_user_error(c.where(), "{}factor: required for yarn", key);
    s.rope_factor = positive("factor", r.number("factor", 1.0));
    s.rope_beta_fast = positive("beta_fast", r.number("beta_fast", 32.0));
    s.rope_beta_slow = positive("beta_slow", r.number("beta_slow", 1.0));
    s.rope_truncate = r.boolean("truncate", true);
    // YaRN's mscale (the paper's eq. 21): 0.1 m ln(factor) + 1, 1 for factors <= 1.
    const auto mscale = [&](double m) {
      return s.rope_factor <= 1.0 ? 1.0 : 0.1 * m * std::log(s.rope_factor) + 1.0;
    };
    const double m = r.number("mscale", 0.0), m_all = r.number("mscale_all_dim", 0.0);
    if (r.has("attention_factor"))
      s.rope_attention_factor = positive("attention_factor", r.number("attention_factor", 1.0));
    else
      s.rope_attention_factor = m != 0.0 && m_all != 0.0 ? mscale(m) / mscale(m_all) : mscale(1.0);
    return;
  }
  // longrope: one short and one long factor per frequency.
  const std::int64_t half = s.head_dim / 2;
  const auto factors = [&](const char* name) {
    if (!r.has(name)) throw_user_error(c.where(), "{}{}: required for longrope", key, name);
    const json& v = (*scaling)[name];
    if (!v.is_array() || std::ssize(v) != half)
      throw_user_error(c.where(), "{}{}: expected a list of {} numbers (head_dim / 2), got {}", key,
                       name, half, v.dump().substr(0, 80));
    std::vector<double> out;
    for (const json& x : v) {
      if (!x.is_number() || !(x.get<double>() > 0.0))
        throw_user_error(c.where(), "{}{}: expected positive numbers, got {}", key, name, x.dump());
      out.push_back(x.get<double>());
    }
    return out;
  };
  s.rope_short_factor = factors("short_factor");
  s.rope_long_factor = factors("long_factor");
  // The factor for the default attention factor: the ratio of the two lengths unless given.
  const double factor =
      r.has("factor") ? positive("factor", r.number("factor", 1.0))
                      : static_cast<double>(max_pos) / static_cast<double>(s.rope_original_max_positions);
  s.rope_factor = factor;
  if (r.has("attention_factor"))
    s.rope_attention_factor = positive("attention_factor", r.number("attention_factor", 1.0));
  else
    s.rope_attention_factor =
        factor <= 1.0 ? 1.0
                      : std::sqrt(1.0 + std::log(factor) /
                                            std::log(static_cast<double>(s.rope_original_max_positions)));
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
  if (s.rope_type == "yarn" || s.rope_type == "longrope") {
    // The resolved attention factor is written as such, so transformers need not re-derive it.
    r["original_max_position_embeddings"] = s.rope_original_max_positions;
    r["attention_factor"] = s.rope_attention_factor;
  }
  if (s.rope_type == "yarn") {
    r["beta_fast"] = s.rope_beta_fast;
    r["beta_slow"] = s.rope_beta_slow;
    r["truncate"] = s.rope_truncate;
  }
  if (s.rope_type == "longrope") {
    r["short_factor"] = s.rope_short_factor;
    r["long_factor"] = s.rope_long_factor;
    j["original_max_position_embeddings"] = s.rope_original_max_positions;
  }
  j["rope_scaling"] = r;
}

}  // namespace tailor::model
