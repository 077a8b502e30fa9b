#include "peft/peft_import.h"

#include <fstream>
#include <set>
#include <sstream>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "checkpoint/safetensors.h"

namespace tailor::peft {
namespace {

// dir/adapter_config.json as a JSON object (UserError naming the file otherwise).
nlohmann::json read_adapter_json(const std::string& dir, std::string& path) {
  path = dir + "/adapter_config.json";
  std::ifstream f(path);
  if (!f) throw_user_error(path, "cannot read (a PEFT adapter directory needs adapter_config.json)");
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw_user_error(path, "not a JSON object");
  return j;
}

}  // namespace

std::string read_peft_type(const std::string& dir) {
  std::string path;
  const nlohmann::json j = read_adapter_json(dir, path);
  return j.contains("peft_type") && j["peft_type"].is_string() ? j["peft_type"].get<std::string>()
                                                               : "";
}

std::int64_t read_peft_prompt_config(const std::string& dir, const model::ModelSpec& spec) {
  std::string path;
  const nlohmann::json j = read_adapter_json(dir, path);
  const std::string type = j.contains("peft_type") && j["peft_type"].is_string()
                               ? j["peft_type"].get<std::string>()
                               : "(missing)";
  if (type != "PROMPT_TUNING")
    throw_user_error(path, "peft_type: {} is not a prompt-tuning adapter (PROMPT_TUNING)", type);
  auto positive = [&](const char* k) {
    if (!j.contains(k) || !j[k].is_number_integer() || j[k].get<std::int64_t>() < 1)
      throw_user_error(path, "{}: expected a positive integer", k);
    return j[k].get<std::int64_t>();
  };
  const std::int64_t n = positive("num_virtual_tokens");
  if (j.contains("num_transformer_submodules") && !j["num_transformer_submodules"].is_null() &&
      j["num_transformer_submodules"] != 1)
    throw_user_error(path, "num_transformer_submodules: {} (Tailor's decoder-only models have 1)",
                     j["num_transformer_submodules"].dump());
  if (j.contains("token_dim") && !j["token_dim"].is_null() &&
      positive("token_dim") != spec.hidden_size)
    throw_user_error(path, "token_dim: {}, but the base model's hidden size is {}",
                     j["token_dim"].get<std::int64_t>(), spec.hidden_size);
  return n;
}

void load_peft_prompt_weights(const std::string& dir, model::Transformer& model,
                              backend::Ops& ops) {
  const std::string path = dir + "/adapter_model.safetensors";
  const checkpoint::SafetensorsFile file(path);
  model::Parameter& p = model.params().at(model::kPromptEmbeddings);
  const std::string name = model::kPromptEmbeddings;
  if (!file.has(name)) throw_user_error(path, "missing tensor '{}'", name);
  const auto& info = file.info(name);
  const std::vector<std::int64_t> want = {p.global_shape[0], p.global_shape[1]};
  if (info.shape != want)
    throw_user_error(path, "tensor '{}' has shape [{}], the model needs [{}, {}]", name,
                     fmt::format("{}", fmt::join(info.shape, ", ")), want[0], want[1]);
  for (const auto& t : file.tensors())
    if (t.name != name)
      throw_user_error(path, "unexpected tensor '{}' (a prompt-tuning adapter holds {} only)",
                       t.name, name);
  std::vector<double> values(static_cast<std::size_t>(info.numel));
  file.read_f64(name, values);
  backend::Buffer host(DType::kF64, p.shape);  // replicated: every TP rank holds all of it
  std::copy(values.begin(), values.end(), host.ptr<double>());
  ops.copy(p.value, host.tensor());
}

model::LoraSpec read_peft_lora_config(const std::string& dir) {
  std::string path;
  const nlohmann::json j = read_adapter_json(dir, path);
  auto str = [&](const char* k, const std::string& def) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : def;
  };
  if (str("peft_type", "") != "LORA")
    throw_user_error(path, "peft_type: {} is not supported (LORA)", str("peft_type", "(missing)"));
  if (str("bias", "none") != "none") throw_user_error(path, "bias: only \"none\" is supported");
  if (j.value("fan_in_fan_out", false)) throw_user_error(path, "fan_in_fan_out: not supported");
  if (j.value("use_dora", false)) throw_user_error(path, "use_dora: DoRA is not supported yet");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (j.contains(k) && j[k].is_object() && !j[k].empty())
      throw_user_error(path, "{}: per-module ranks are not supported", k);
  if (j.contains("modules_to_save") && j["modules_to_save"].is_array() && !j["modules_to_save"].empty())
    throw_user_error(path, "modules_to_save: not supported");
  model::LoraSpec s;
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<std::int64_t>() < 1)
    throw_user_error(path, "r: expected a positive integer");
  s.rank = j["r"].get<std::int64_t>();
  s.alpha = j.contains("lora_alpha") && j["lora_alpha"].is_number() ? j["lora_alpha"].get<double>() : 8.0;
  s.rslora = j.value("use_rslora", false);
  if (j.contains("lora_dropout") && !j["lora_dropout"].is_null()) {
    if (!j["lora_dropout"].is_number() || j["lora_dropout"].get<double>() < 0.0 ||
        j["lora_dropout"].get<double>() >= 1.0)
      throw_user_error(path, "lora_dropout: expected a number in [0, 1)");
    s.dropout = j["lora_dropout"].get<double>();  // applies when training continues
  }
  s.targets.clear();
  const nlohmann::json& t = j.contains("target_modules") ? j["target_modules"] : nlohmann::json();
  if (t.is_string()) {
    s.targets.push_back(t.get<std::string>() == "all-linear" ? "all-linear" : t.get<std::string>());
  } else if (t.is_array()) {
    for (const auto& m : t) {
      if (!m.is_string()) throw_user_error(path, "target_modules: expected strings");
      s.targets.push_back(m.get<std::string>());
    }
  }
  static const std::set<std::string> kKnown = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                               "up_proj", "down_proj", "all-linear"};
  if (s.targets.empty()) throw_user_error(path, "target_modules: missing or empty");
  for (const std::string& m : s.targets)
    if (!kKnown.contains(m))
      throw_user_error(path, "target_modules: {} is not a linear Tailor can adapt", m);
  return s;
}

void load_peft_lora_weights(const std::string& dir, model::Transformer& model, backend::Ops& ops) {
  const std::string path = dir + "/adapter_model.safetensors";
  const checkpoint::SafetensorsFile file(path);
  std::set<std::string> used;
  for (model::Parameter& p : model.params().all()) {
    if (p.name.find(".lora_") == std::string::npos) continue;
    // PEFT names: base_model.model.<name>, with the adapter name ("default") in memory only.
    const std::string name = "base_model.model." + p.name;
    if (!file.has(name)) throw_user_error(path, "missing tensor '{}'", name);
    const auto& info = file.info(name);
    const std::vector<std::int64_t> want = {p.global_shape[0], p.global_shape[1]};
    if (info.shape != want)
      throw_user_error(path, "tensor '{}' has shape [{}, {}], the model needs [{}, {}]", name,
                       info.shape.size() > 0 ? info.shape[0] : 0, info.shape.size() > 1 ? info.shape[1] : 0,
                       want[0], want[1]);
    std::vector<double> global(static_cast<std::size_t>(info.numel));
    file.read_f64(name, global);
    backend::Buffer host(DType::kF64, p.shape);
    for (std::int64_t i = 0; i < p.shape.numel(); ++i)
      host.ptr<double>()[i] = global[static_cast<std::size_t>(p.global_index(i))];
    ops.copy(p.value, host.tensor());
    used.insert(name);
  }
  for (const auto& t : file.tensors())
    if (!used.contains(t.name))
      throw_user_error(path, "unexpected tensor '{}' (not a LoRA factor of the configured modules)", t.name);
}

}  // namespace tailor::peft
