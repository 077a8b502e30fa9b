#include "peft/peft_export.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "checkpoint/output_dir.h"

namespace tailor::peft {
namespace {

// The parameters whose name contains `part`, as f32 host tensors named `prefix` + name.
std::vector<checkpoint::HfTensor> adapter_tensors(const model::Transformer& model,
                                                  backend::Ops& ops, std::string_view part,
                                                  const std::string& prefix) {
  std::vector<checkpoint::HfTensor> out;
  for (const model::Parameter& p : model.params().all()) {
    if (p.name.find(part) == std::string::npos) continue;
    checkpoint::HfTensor t{prefix + p.name, p.shape, std::vector<float>(static_cast<std::size_t>(p.shape.numel()))};
    backend::Tensor host{t.data.data(), DType::kF32, p.shape, backend::Device::kCpu};
    ops.copy(host, p.value);
    out.push_back(std::move(t));
  }
  return out;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  if (!f) throw_runtime_error("{}: write failed", path);
}

}  // namespace

void save_peft_lora(const std::string& out_dir, const checkpoint::HfModelConfig& config,
                    const model::Transformer& model, backend::Ops& ops,
                    const std::string& base_model) {
  const model::LoraSpec* lora = model.lora();
  TAILOR_CHECK_USER(lora != nullptr, out_dir, "--format peft needs a LoRA run (peft.method: lora)");
  const std::string unsupported = config.family().peft_lora_unsupported();
  TAILOR_CHECK_USER(unsupported.empty(), out_dir, "{}", unsupported);
  TAILOR_ASSERT(model.tp_layout().size == 1, "PEFT export needs TP = 1");

  const std::string tmp = checkpoint::begin_output_dir(out_dir);
  checkpoint::write_hf_tensors(tmp + "/adapter_model.safetensors",
                               adapter_tensors(model, ops, ".lora_", "base_model.model."),
                               DType::kF32);
  nlohmann::json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = base_model;
  j["r"] = lora->rank;
  j["lora_alpha"] = lora->alpha;
  j["lora_dropout"] = lora->dropout;
  j["use_rslora"] = lora->rslora;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  if (lora->targets.size() == 1 && lora->targets[0] == "all-linear") {
    j["target_modules"] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  } else {
    j["target_modules"] = lora->targets;
  }
  write_json(tmp + "/adapter_config.json", j);
  checkpoint::commit_output_dir(tmp, out_dir);
}

void save_peft_prompt_tuning(const std::string& out_dir, const model::Transformer& model,
                             backend::Ops& ops, const std::string& base_model) {
  TAILOR_CHECK_USER(model.virtual_tokens() > 0, out_dir,
                    "a PROMPT_TUNING export needs a prompt-tuning run (peft.method: prompt_tuning)");
  const model::ModelSpec& spec = model.spec();
  const std::string tmp = checkpoint::begin_output_dir(out_dir);
  checkpoint::write_hf_tensors(tmp + "/adapter_model.safetensors",
                               adapter_tensors(model, ops, model::kPromptEmbeddings, ""),
                               DType::kF32);
  nlohmann::json j;
  j["peft_type"] = "PROMPT_TUNING";
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = base_model;
  j["num_virtual_tokens"] = model.virtual_tokens();
  j["token_dim"] = spec.hidden_size;
  j["num_transformer_submodules"] = 1;
  j["num_attention_heads"] = spec.num_heads;
  j["num_layers"] = spec.num_layers;
  j["prompt_tuning_init"] = "RANDOM";
  j["prompt_tuning_init_text"] = nullptr;
  j["tokenizer_name_or_path"] = nullptr;
  j["inference_mode"] = true;
  write_json(tmp + "/adapter_config.json", j);
  checkpoint::commit_output_dir(tmp, out_dir);
}

void save_bottleneck_adapters(const std::string& out_dir, const model::Transformer& model,
                              backend::Ops& ops) {
  TAILOR_ASSERT(model.bottleneck() > 0 && model.tp_layout().size == 1, "bottleneck export");
  const std::string tmp = checkpoint::begin_output_dir(out_dir);
  checkpoint::write_hf_tensors(tmp + "/adapters.safetensors",
                               adapter_tensors(model, ops, "_adapter.", ""), DType::kF32,
                               {{"format", "tailor"}});
  write_json(tmp + "/adapter_config.json",
             nlohmann::json{{"tailor_adapter", "bottleneck"},
                            {"width", model.bottleneck()},
                            {"placement", {"attention", "mlp"}},
                            {"activation", "gelu_tanh"}});
  checkpoint::commit_output_dir(tmp, out_dir);
}

}  // namespace tailor::peft
