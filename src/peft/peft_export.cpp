#include "peft/peft_export.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "checkpoint/safetensors.h"

namespace tailor::peft {

void save_peft_lora(const std::string& out_dir, const checkpoint::HfModelConfig& config,
                    const model::Transformer& model, backend::Ops& ops,
                    const std::string& base_model) {
  namespace fs = std::filesystem;
  const model::LoraSpec* lora = model.lora();
  TAILOR_CHECK_USER(lora != nullptr, out_dir, "--format peft needs a LoRA run (peft.method: lora)");
  TAILOR_CHECK_USER(config.model_type != "gpt2", out_dir,
                    "PEFT export of GPT-2 LoRA is not supported (its fused c_attn has one adapter "
                    "in PEFT, three in Tailor); export --format hf (merged) instead");
  TAILOR_ASSERT(model.tp_layout().size == 1, "PEFT export needs TP = 1");

  std::vector<std::string> modules;
  std::vector<std::vector<std::byte>> encoded;
  std::vector<checkpoint::SafetensorsWriteTensor> tensors;
  std::vector<const model::Parameter*> lora_params;
  for (const model::Parameter& p : model.params().all())
    if (p.name.find(".lora_") != std::string::npos) lora_params.push_back(&p);
  std::sort(lora_params.begin(), lora_params.end(),
            [](const model::Parameter* a, const model::Parameter* b) { return a->name < b->name; });
  encoded.reserve(lora_params.size());
  for (const model::Parameter* p : lora_params) {
    backend::Buffer host(DType::kF32, p->shape);
    ops.copy(host.tensor(), p->value);
    encoded.push_back(checkpoint::encode_f32({host.ptr<float>(), static_cast<std::size_t>(p->shape.numel())}, DType::kF32));
    tensors.push_back({"base_model.model." + p->name, DType::kF32, {p->shape[0], p->shape[1]},
                       encoded.back().data()});
  }
  for (const std::string& t : lora->targets) modules.push_back(t);

  const std::string tmp = out_dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw_runtime_error("{}: cannot create: {}", tmp, ec.message());
  checkpoint::write_safetensors(tmp + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  nlohmann::json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = base_model;
  j["r"] = lora->rank;
  j["lora_alpha"] = lora->alpha;
  j["lora_dropout"] = 0.0;
  j["use_rslora"] = lora->rslora;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  if (modules.size() == 1 && modules[0] == "all-linear") {
    j["target_modules"] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  } else {
    j["target_modules"] = modules;
  }
  {
    std::ofstream f(tmp + "/adapter_config.json");
    f << j.dump(2) << "\n";
    if (!f) throw_runtime_error("{}/adapter_config.json: write failed", tmp);
  }
  const std::string old = out_dir + ".old";
  fs::remove_all(old, ec);
  if (fs::exists(out_dir)) fs::rename(out_dir, old, ec);
  fs::rename(tmp, out_dir, ec);
  if (ec) throw_runtime_error("{}: cannot rename into place: {}", out_dir, ec.message());
  fs::remove_all(old, ec);
  (void)config;
}

void save_bottleneck_adapters(const std::string& out_dir, const model::Transformer& model,
                              backend::Ops& ops) {
  namespace fs = std::filesystem;
  TAILOR_ASSERT(model.bottleneck() > 0 && model.tp_layout().size == 1, "bottleneck export");
  std::vector<std::vector<std::byte>> encoded;
  std::vector<checkpoint::SafetensorsWriteTensor> tensors;
  std::vector<const model::Parameter*> ps;
  for (const model::Parameter& p : model.params().all())
    if (p.name.find("_adapter.") != std::string::npos) ps.push_back(&p);
  std::sort(ps.begin(), ps.end(), [](auto* a, auto* b) { return a->name < b->name; });
  encoded.reserve(ps.size());
  for (const model::Parameter* p : ps) {
    backend::Buffer host(DType::kF32, p->shape);
    ops.copy(host.tensor(), p->value);
    encoded.push_back(checkpoint::encode_f32({host.ptr<float>(), static_cast<std::size_t>(p->shape.numel())}, DType::kF32));
    std::vector<std::int64_t> shape;
    for (int i = 0; i < p->shape.rank(); ++i) shape.push_back(p->shape[i]);
    tensors.push_back({p->name, DType::kF32, shape, encoded.back().data()});
  }
  const std::string tmp = out_dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  checkpoint::write_safetensors(tmp + "/adapters.safetensors", tensors, {{"format", "tailor"}});
  nlohmann::json j{{"tailor_adapter", "bottleneck"}, {"width", model.bottleneck()},
                   {"placement", {"attention", "mlp"}}, {"activation", "gelu_tanh"}};
  std::ofstream(tmp + "/adapter_config.json") << j.dump(2) << "\n";
  fs::remove_all(out_dir, ec);
  fs::rename(tmp, out_dir, ec);
  if (ec) throw_runtime_error("{}: cannot rename into place: {}", out_dir, ec.message());
}

}  // namespace tailor::peft
