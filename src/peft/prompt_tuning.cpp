#include "peft/prompt_tuning.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "checkpoint/output_dir.h"
#include "checkpoint/safetensors.h"
#include "config/config.h"
#include "core/logging.h"
#include "peft/adapter_files.h"

namespace tailor::peft {

model::Parameter* PromptTuning::attach_input(model::ParameterSet& params,
                                             const model::InputSite& site) const {
  // Replicated: its gradient comes from the residual stream's, complete on every rank.
  return &params.add(kPromptEmbeddings, Shape{n_, site.hidden}, model::ParamRole::kAdapterWeight,
                     {Shape{}, -1, 0, site.tp_size, model::GradSum::kNone});
}

std::shared_ptr<const Method> PromptTuning::from_config(const config::PeftConfig& peft,
                                                        const model::ModelSpec& spec) {
  const std::int64_t n = peft.adapter.empty() ? peft.num_virtual_tokens
                                              : read_peft_prompt_config(peft.adapter, spec);
  return std::make_shared<PromptTuning>(n, peft.prompt_init_text);
}

std::shared_ptr<const Method> PromptTuning::from_adapter(const std::string& dir,
                                                         const model::ModelSpec& spec) {
  return std::make_shared<PromptTuning>(read_peft_prompt_config(dir, spec));
}

void PromptTuning::init_from_tokens(model::Transformer& model, std::span<const std::int32_t> ids) {
  model::Parameter* prompt = model.params().find(kPromptEmbeddings);
  TAILOR_ASSERT(prompt != nullptr && !ids.empty(), "init_from_tokens: {} ids, {} virtual",
                ids.size(), model.virtual_tokens());
  const std::int64_t n = prompt->shape[0];
  std::vector<std::int32_t> rows(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int32_t id = ids[static_cast<std::size_t>(k) % ids.size()];
    TAILOR_ASSERT(id >= 0 && id < model.spec().vocab_size, "prompt init id {} outside the vocabulary",
                  id);
    rows[static_cast<std::size_t>(k)] = id;
  }
  model.token_embeddings(rows, prompt->value);
}

void PromptTuning::initialize(model::Transformer& model, const InitContext& ctx) const {
  if (init_text_.empty()) return;  // the seeded N(0, init_std) init stays
  const std::vector<std::int32_t> ids = ctx.tokenize(init_text_);
  TAILOR_CHECK_USER(!ids.empty(), ctx.source, "peft.prompt_init_text: the text has no tokens");
  const std::int64_t vocab = model.spec().vocab_size;
  for (const std::int32_t id : ids)
    TAILOR_CHECK_USER(id >= 0 && id < vocab, ctx.source,
                      "peft.prompt_init_text: token id {} is outside the model's vocabulary ({})",
                      id, vocab);
  init_from_tokens(model, ids);
  log::info("prompt tuning: {} virtual tokens initialized from the {} tokens of \"{}\"", n_,
            ids.size(), init_text_);
}

std::string PromptTuning::summary(const model::Transformer& model, comm::Communicator& tp) const {
  (void)tp;  // replicated: every rank holds all of it
  const auto trainable = static_cast<double>(model.params().trainable_numel());
  const auto total = static_cast<double>(model.spec().num_parameters());
  return fmt::format("peft: prompt tuning, {} virtual tokens opening every document: {:.0f} "
                     "trainable parameters ({:.4f}% of {:.2f}M); gradients and optimizer state "
                     "for the frozen base saved: {:.1f} MB",
                     n_, trainable, 100.0 * trainable / total, total / 1e6,
                     3.0 * (total - trainable) * static_cast<double>(dtype_size(model.dtype())) /
                         1e6);
}

// ---- PEFT files ----------------------------------------------------------------------------

std::int64_t read_peft_prompt_config(const std::string& dir, const model::ModelSpec& spec) {
  std::string path;
  const nlohmann::json j = read_adapter_config(dir, path);
  const std::string type = j.contains("peft_type") && j["peft_type"].is_string()
                               ? j["peft_type"].get<std::string>()
                               : "(missing)";
  if (type != PromptTuning::kPeftType)
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

void PromptTuning::load_adapter(const std::string& dir, model::Transformer& model,
                                backend::Ops& ops) const {
  const std::string path = dir + "/adapter_model.safetensors";
  const checkpoint::SafetensorsFile file(path);
  model::Parameter& p = model.params().at(kPromptEmbeddings);
  const std::string name = kPromptEmbeddings;
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

void PromptTuning::save_peft(const std::string& dir, const ExportContext& ctx) const {
  const model::ModelSpec& spec = ctx.model.spec();
  checkpoint::OutputDir out(dir);
  const std::string& tmp = out.tmp();
  checkpoint::write_hf_tensors(tmp + "/adapter_model.safetensors",
                               method_tensors(ctx.model, ctx.ops, kName, ""), DType::kF32);
  nlohmann::json j;
  j["peft_type"] = std::string(kPeftType);
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = ctx.base_dir;
  j["num_virtual_tokens"] = n_;
  j["token_dim"] = spec.hidden_size;
  j["num_transformer_submodules"] = 1;
  j["num_attention_heads"] = spec.num_heads;
  j["num_layers"] = spec.num_layers;
  j["prompt_tuning_init"] = "RANDOM";
  j["prompt_tuning_init_text"] = nullptr;
  j["tokenizer_name_or_path"] = nullptr;
  j["inference_mode"] = true;
  write_adapter_config(tmp + "/adapter_config.json", j);
  out.commit();
  log::info("exported the prompt-tuning adapter (PEFT format) to {}", dir);
}

}  // namespace tailor::peft
