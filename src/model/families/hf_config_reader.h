// Typed reads of a Hugging Face config.json for the family files: every problem is a UserError
// naming the file and the key. Keys a family does not read are ignored (Hub configs carry many).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_spec.h"

namespace tailor::model {

class HfConfigReader {
 public:
  // `j` must outlive the reader; `where` names the file in messages.
  HfConfigReader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {}

  [[nodiscard]] bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  // A non-negative integer; required unless `fallback` is given.
  [[nodiscard]] std::int64_t integer(const char* key,
                                     std::optional<std::int64_t> fallback = std::nullopt) const;
  [[nodiscard]] double number(const char* key, double fallback) const;
  [[nodiscard]] bool boolean(const char* key, bool fallback) const;
  [[nodiscard]] std::string string(const char* key, const std::string& fallback) const;
  // A token id, or the first of a list of ids; -1 when absent.
  [[nodiscard]] std::int32_t token_id(const char* key) const;
  // Refuses an activation (key `key`, default `fallback`) other than those in `ok`.
  void require_activation(const char* key, std::initializer_list<const char*> ok,
                          const char* fallback) const;

  [[nodiscard]] const nlohmann::json& raw() const { return j_; }
  [[nodiscard]] const std::string& where() const { return where_; }

 private:
  const nlohmann::json& j_;
  std::string where_;
};

// `layer_types` (transformers 5: one "full_attention" or "sliding_attention" per layer): which
// layers slide, one flag per layer. Absent: nullopt. Another word or another length is a
// UserError naming the key.
[[nodiscard]] std::optional<std::vector<bool>> read_layer_types(const HfConfigReader& c,
                                                                std::int64_t num_layers);
// The inverse, for write_config: one word per layer of `sliding` (empty: every layer slides).
[[nodiscard]] nlohmann::json layer_types_json(const std::vector<bool>& sliding,
                                              std::int64_t num_layers);

// RoPE base and scaling: `rope_theta` / `rope_scaling` {rope_type | type, factor, ...} as Hub
// configs write them, or `rope_parameters` as transformers 5 does. Types: default, linear, llama3,
// yarn, longrope (anything else is refused naming the key). `original_default`: the family's
// config-class default of original_max_position_embeddings (Phi-3: 4096), used by yarn and
// longrope when config.json gives none.
void read_rope(const HfConfigReader& c, ModelSpec& s,
               std::optional<std::int64_t> original_default = std::nullopt);
// The inverse: rope_theta and, when scaled, rope_scaling.
void write_rope(const ModelSpec& s, nlohmann::json& j);

}  // namespace tailor::model
