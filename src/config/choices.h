// The choices of the config schema: one enum class per key that takes a fixed word, each with its
// name table (enum_names.h). The order of a table is the order "must be one of ..." lists.
// Modules that act on a choice map these values to their own types (trainer/from_config.h); no
// module compares the words.
#pragma once

#include <string_view>
#include <utility>

#include "config/enum_names.h"
#include "core/logging.h"

namespace tailor::config {

template <typename E>
using Named = std::pair<E, std::string_view>;

// model.family: sets the defaults of norm, position, mlp, the biases and tie_embeddings.
enum class ModelFamily { kLlama, kGpt2 };
template <>
struct EnumNames<ModelFamily> {
  static constexpr Named<ModelFamily> kNames[] = {{ModelFamily::kLlama, "llama"},
                                                  {ModelFamily::kGpt2, "gpt2"}};
};

// model.norm
enum class NormKind { kRmsNorm, kLayerNorm };
template <>
struct EnumNames<NormKind> {
  static constexpr Named<NormKind> kNames[] = {{NormKind::kRmsNorm, "rmsnorm"},
                                               {NormKind::kLayerNorm, "layernorm"}};
};

// model.position
enum class PositionKind { kRope, kLearned };
template <>
struct EnumNames<PositionKind> {
  static constexpr Named<PositionKind> kNames[] = {{PositionKind::kRope, "rope"},
                                                   {PositionKind::kLearned, "learned"}};
};

// model.mlp
enum class MlpKind { kSwiGLU, kGelu };
template <>
struct EnumNames<MlpKind> {
  static constexpr Named<MlpKind> kNames[] = {{MlpKind::kSwiGLU, "swiglu"},
                                              {MlpKind::kGelu, "gelu"}};
};

// data.format: plain text, or JSONL records (their kind detected per line).
enum class DataFormat { kText, kJsonl };
template <>
struct EnumNames<DataFormat> {
  static constexpr Named<DataFormat> kNames[] = {{DataFormat::kText, "text"},
                                                 {DataFormat::kJsonl, "jsonl"}};
};

// data.tokenizer: 256 byte tokens + EOS, or the tokenizer files of model.path.
enum class TokenizerKind { kByte, kModel };
template <>
struct EnumNames<TokenizerKind> {
  static constexpr Named<TokenizerKind> kNames[] = {{TokenizerKind::kByte, "byte"},
                                                    {TokenizerKind::kModel, "model"}};
};

// data.split: how a text file splits into documents.
enum class TextSplit { kNone, kParagraph, kLine };
template <>
struct EnumNames<TextSplit> {
  static constexpr Named<TextSplit> kNames[] = {
      {TextSplit::kNone, "none"}, {TextSplit::kParagraph, "paragraph"}, {TextSplit::kLine, "line"}};
};

// data.overlong: what happens to documents longer than data.seq_len.
enum class OverlongPolicy { kSplit, kTruncate, kDrop };
template <>
struct EnumNames<OverlongPolicy> {
  static constexpr Named<OverlongPolicy> kNames[] = {{OverlongPolicy::kSplit, "split"},
                                                     {OverlongPolicy::kTruncate, "truncate"},
                                                     {OverlongPolicy::kDrop, "drop"}};
};

// data.packing: documents concatenated, or one per sequence (padded).
enum class PackingMode { kPack, kPad };
template <>
struct EnumNames<PackingMode> {
  static constexpr Named<PackingMode> kNames[] = {{PackingMode::kPack, "pack"},
                                                  {PackingMode::kPad, "pad"}};
};

// train.recompute: activation recomputation.
enum class Recompute { kNone, kSelective, kFull };
template <>
struct EnumNames<Recompute> {
  static constexpr Named<Recompute> kNames[] = {
      {Recompute::kNone, "none"}, {Recompute::kSelective, "selective"}, {Recompute::kFull, "full"}};
};

// optimizer.name
enum class OptimizerName { kAdamW, kSgd };
template <>
struct EnumNames<OptimizerName> {
  static constexpr Named<OptimizerName> kNames[] = {{OptimizerName::kAdamW, "adamw"},
                                                    {OptimizerName::kSgd, "sgd"}};
};

// optimizer.moments: the storage of AdamW's moments.
enum class MomentsDType { kF32, kBF16 };
template <>
struct EnumNames<MomentsDType> {
  static constexpr Named<MomentsDType> kNames[] = {{MomentsDType::kF32, "f32"},
                                                   {MomentsDType::kBF16, "bf16"}};
};

// schedule.type: the learning-rate decay after warmup.
enum class ScheduleType { kConstant, kLinear, kCosine };
template <>
struct EnumNames<ScheduleType> {
  static constexpr Named<ScheduleType> kNames[] = {{ScheduleType::kConstant, "constant"},
                                                   {ScheduleType::kLinear, "linear"},
                                                   {ScheduleType::kCosine, "cosine"}};
};

// runtime.device: auto picks CUDA when built and a GPU is visible.
enum class RuntimeDevice { kAuto, kCpu, kCuda };
template <>
struct EnumNames<RuntimeDevice> {
  static constexpr Named<RuntimeDevice> kNames[] = {
      {RuntimeDevice::kAuto, "auto"}, {RuntimeDevice::kCpu, "cpu"}, {RuntimeDevice::kCuda, "cuda"}};
};

// runtime.dtype: auto is bf16 on CUDA and f32 on the CPU.
enum class RuntimeDType { kAuto, kF32, kF64, kBF16 };
template <>
struct EnumNames<RuntimeDType> {
  static constexpr Named<RuntimeDType> kNames[] = {{RuntimeDType::kAuto, "auto"},
                                                   {RuntimeDType::kF32, "f32"},
                                                   {RuntimeDType::kF64, "f64"},
                                                   {RuntimeDType::kBF16, "bf16"}};
};

// runtime.attention: which attention the CUDA backend runs (docs/gpu.md). auto: cuDNN's fused
// attention where this build has cuDNN and it supports the case, Tailor's kernels otherwise;
// cudnn: the same, but a start-up error when cuDNN cannot run the model's shape; tailor: always
// Tailor's kernels.
enum class RuntimeAttention { kAuto, kCudnn, kTailor };
template <>
struct EnumNames<RuntimeAttention> {
  static constexpr Named<RuntimeAttention> kNames[] = {{RuntimeAttention::kAuto, "auto"},
                                                       {RuntimeAttention::kCudnn, "cudnn"},
                                                       {RuntimeAttention::kTailor, "tailor"}};
};

// runtime.log_level is the logger's own level; `off` is not offered (the CLI uses it for ranks
// that must stay quiet).
template <>
struct EnumNames<log::Level> {
  static constexpr Named<log::Level> kNames[] = {{log::Level::kDebug, "debug"},
                                                 {log::Level::kInfo, "info"},
                                                 {log::Level::kWarn, "warn"},
                                                 {log::Level::kError, "error"}};
};

// objective.type: the training loss (src/objective).
enum class ObjectiveType { kCausalLm, kDpo, kCpo, kOrpo, kSimpo };
template <>
struct EnumNames<ObjectiveType> {
  static constexpr Named<ObjectiveType> kNames[] = {{ObjectiveType::kCausalLm, "causal_lm"},
                                                    {ObjectiveType::kDpo, "dpo"},
                                                    {ObjectiveType::kCpo, "cpo"},
                                                    {ObjectiveType::kOrpo, "orpo"},
                                                    {ObjectiveType::kSimpo, "simpo"}};
};

// objective.dpo_loss
enum class DpoLoss { kSigmoid, kIpo };
template <>
struct EnumNames<DpoLoss> {
  static constexpr Named<DpoLoss> kNames[] = {{DpoLoss::kSigmoid, "sigmoid"},
                                              {DpoLoss::kIpo, "ipo"}};
};

// objective.reference
enum class ReferenceMode { kAuto, kPrecomputed, kModel };
template <>
struct EnumNames<ReferenceMode> {
  static constexpr Named<ReferenceMode> kNames[] = {{ReferenceMode::kAuto, "auto"},
                                                    {ReferenceMode::kPrecomputed, "precomputed"},
                                                    {ReferenceMode::kModel, "model"}};
};

// peft.method
enum class PeftMethod { kNone, kLora, kPromptTuning, kAdapter, kIa3 };
template <>
struct EnumNames<PeftMethod> {
  static constexpr Named<PeftMethod> kNames[] = {{PeftMethod::kNone, "none"},
                                                 {PeftMethod::kLora, "lora"},
                                                 {PeftMethod::kPromptTuning, "prompt_tuning"},
                                                 {PeftMethod::kAdapter, "adapter"},
                                                 {PeftMethod::kIa3, "ia3"}};
};

// prompt_search.strategy: score the listed candidates, or choose few-shot demonstrations.
enum class PromptStrategy { kList, kFewShot };
template <>
struct EnumNames<PromptStrategy> {
  static constexpr Named<PromptStrategy> kNames[] = {{PromptStrategy::kList, "list"},
                                                     {PromptStrategy::kFewShot, "few_shot"}};
};

// prompt_search.metric: the dev loss (lower is better) or a metric of generations (higher).
enum class PromptMetric { kLoss, kBleu, kChrf, kRougeL, kExactMatch };
template <>
struct EnumNames<PromptMetric> {
  static constexpr Named<PromptMetric> kNames[] = {{PromptMetric::kLoss, "loss"},
                                                   {PromptMetric::kBleu, "bleu"},
                                                   {PromptMetric::kChrf, "chrf"},
                                                   {PromptMetric::kRougeL, "rouge_l"},
                                                   {PromptMetric::kExactMatch, "exact_match"}};
};

// train.eval_metrics: generation metrics of the dev answers at every evaluation during training
// (src/eval/metrics.h: BLEU and chrF as sacreBLEU, ROUGE-L as rouge-score).
enum class EvalMetric { kBleu, kChrf, kRougeL, kExactMatch };
template <>
struct EnumNames<EvalMetric> {
  static constexpr Named<EvalMetric> kNames[] = {{EvalMetric::kBleu, "bleu"},
                                                 {EvalMetric::kChrf, "chrf"},
                                                 {EvalMetric::kRougeL, "rouge_l"},
                                                 {EvalMetric::kExactMatch, "exact_match"}};
};

// checkpoint.keep_best: the evaluation metric whose best checkpoint is kept (and that early
// stopping watches); the dev loss is better lower, the generation metrics higher.
enum class BestMetric { kNone, kLoss, kBleu, kChrf, kRougeL, kExactMatch };
template <>
struct EnumNames<BestMetric> {
  static constexpr Named<BestMetric> kNames[] = {{BestMetric::kNone, "none"},
                                                 {BestMetric::kLoss, "loss"},
                                                 {BestMetric::kBleu, "bleu"},
                                                 {BestMetric::kChrf, "chrf"},
                                                 {BestMetric::kRougeL, "rouge_l"},
                                                 {BestMetric::kExactMatch, "exact_match"}};
};

// A chat template's system.placement: a turn of its own, or inside the first user turn.
enum class SystemPlacement { kTurn, kFirstUser };
template <>
struct EnumNames<SystemPlacement> {
  static constexpr Named<SystemPlacement> kNames[] = {{SystemPlacement::kTurn, "turn"},
                                                      {SystemPlacement::kFirstUser, "first_user"}};
};

// A chat template's prompt_completion: prompt/completion records as chat turns, or as text.
enum class PromptCompletion { kChat, kText };
template <>
struct EnumNames<PromptCompletion> {
  static constexpr Named<PromptCompletion> kNames[] = {{PromptCompletion::kChat, "chat"},
                                                       {PromptCompletion::kText, "text"}};
};

}  // namespace tailor::config
