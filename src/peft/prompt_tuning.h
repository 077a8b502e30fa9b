// Prompt tuning (Lester et al., 2021): n trainable virtual-token embeddings `prompt_embeddings`
// [n, D] (PEFT's tensor name) open every document of a packed row at positions 0..n-1 (the data
// packing reserves their slots: virtual_tokens()); the whole base is frozen. The model sees them
// through its generic input hook (model::Attachment::attach_input): a batch id -1 - k reads row k
// of the table instead of a vocabulary row. The table is replicated on every TP rank; its gradient
// is read off the residual-stream gradient, complete on every rank, so it needs no TP reduction.
//
// Init: N(0, init_std) by role, or peft.prompt_init_text: the embeddings of the text's tokens,
// repeated / truncated to n, as PEFT's TEXT init.
//
// Files: a PEFT PROMPT_TUNING adapter: adapter_config.json (task_type CAUSAL_LM,
// num_virtual_tokens, token_dim, num_transformer_submodules 1, num_attention_heads, num_layers,
// prompt_tuning_init RANDOM: the tensor holds the trained values, so peft never needs a tokenizer
// to rebuild an init) and adapter_model.safetensors with `prompt_embeddings` [n, D] (f32). Any
// family, any TP layout (the tensor is replicated).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "peft/method.h"

namespace tailor::config {
struct PeftConfig;
}

namespace tailor::peft {

// Name of the prompt-tuning parameter (and of PEFT's exported tensor).
inline constexpr const char* kPromptEmbeddings = "prompt_embeddings";

// Reads a PROMPT_TUNING adapter_config.json for a base of `spec`: returns num_virtual_tokens.
// token_dim must be the hidden size and num_transformer_submodules 1 (decoder-only).
[[nodiscard]] std::int64_t read_peft_prompt_config(const std::string& dir,
                                                   const model::ModelSpec& spec);

class PromptTuning final : public Method {
 public:
  static constexpr std::string_view kName = "prompt_tuning";
  static constexpr std::string_view kDisplayName = "prompt-tuning";
  static constexpr std::string_view kPeftType = "PROMPT_TUNING";

  // n virtual tokens; `init_text` (may be empty): the TEXT init's text.
  explicit PromptTuning(std::int64_t n, std::string init_text = "")
      : n_(n), init_text_(std::move(init_text)) {}
  // peft.num_virtual_tokens and prompt_init_text; or peft.adapter's num_virtual_tokens.
  [[nodiscard]] static std::shared_ptr<const Method> from_config(const config::PeftConfig& peft,
                                                                 const model::ModelSpec& spec);
  [[nodiscard]] static std::shared_ptr<const Method> from_adapter(const std::string& dir,
                                                                  const model::ModelSpec& spec);

  // The TEXT init: virtual token k starts as the embedding of ids[k % ids.size()]. Ids in
  // [0, vocab_size). Collective over the model's TP group.
  static void init_from_tokens(model::Transformer& model, std::span<const std::int32_t> ids);

  [[nodiscard]] std::string_view name() const override { return kName; }
  [[nodiscard]] model::Parameter* attach_input(model::ParameterSet& params,
                                               const model::InputSite& site) const override;

  [[nodiscard]] std::string_view display_name() const override { return kDisplayName; }
  [[nodiscard]] std::int64_t virtual_tokens() const override { return n_; }
  // The TEXT init from peft.prompt_init_text, when given.
  void initialize(model::Transformer& model, const InitContext& ctx) const override;
  // Copies the adapter's `prompt_embeddings` [n, D] (every TP rank holds all of it).
  void load_adapter(const std::string& dir, model::Transformer& model,
                    backend::Ops& ops) const override;
  [[nodiscard]] std::string summary(const model::Transformer& model,
                                    comm::Communicator& tp) const override;
  // The exported base is unchanged; the adapter is the PEFT one.
  void export_adapter(const std::string& dir, const ExportContext& ctx) const override {
    save_peft(dir, ctx);
  }
  void save_peft(const std::string& dir, const ExportContext& ctx) const override;

 private:
  std::int64_t n_;
  std::string init_text_;
};

}  // namespace tailor::peft
