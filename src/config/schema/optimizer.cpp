// The optimizer section. optimizer.betas, a pair, is read and written by hand.
#include "config/scalars.h"
#include "config/schema.h"

namespace tailor::config {
namespace {

// betas: [beta1, beta2], each in [0, 1).
void read_betas(ReadContext& c, OptimizerConfig& o) {
  SchemaReader& r = c.reader;
  const YamlNode* betas = r.read_node("betas");
  if (betas == nullptr) return;
  bool ok = false;
  if (betas->kind != YamlNode::Kind::kSequence) {
    r.problem("optimizer.betas",
              fmt::format("expected a sequence [beta1, beta2], got {}", describe(*betas)));
  } else if (betas->items.size() != 2) {
    r.problem("optimizer.betas", fmt::format("expected exactly 2 numbers [beta1, beta2], got {}",
                                             betas->items.size()));
  } else {
    double b1 = 0.0;
    double b2 = 0.0;
    const bool ok1 = r.convert_float(betas->items[0], "optimizer.betas[0]", b1, kUnitHalfOpen);
    const bool ok2 = r.convert_float(betas->items[1], "optimizer.betas[1]", b2, kUnitHalfOpen);
    ok = ok1 && ok2;
    if (ok) {
      o.beta1 = b1;
      o.beta2 = b2;
    }
  }
  if (!ok) r.mark_bad("optimizer.betas");
}

void write_betas(YamlWriter& w, const OptimizerConfig& o) {
  w.line("betas", fmt::format("[{}, {}]", yaml_float(o.beta1), yaml_float(o.beta2)));
}

bool is_sgd(const OptimizerConfig& o) { return o.name == OptimizerName::kSgd; }

// In place of momentum under adamw, where setting it would be an error.
std::string momentum_not_used(const OptimizerConfig& o) {
  return fmt::format("momentum: not used by {}", o.name);
}

}  // namespace

const Section<OptimizerConfig>& optimizer_section() {
  using S = OptimizerConfig;
  using F = Field<S>;
  static const Section<S> section{
      "optimizer",
      &ExperimentConfig::optimizer,
      {
          {"name", choice(&S::name), Resume::kFixed, "the optimizer"},
          {"lr", real(&S::lr, kPositive, Presence::kRequired), Resume::kFixed,
           "peak learning rate (after warmup)"},
          {"betas", custom("[float, float]", Presence::kOptional, read_betas, write_betas),
           Resume::kFixed, "AdamW's beta1 and beta2"},
          {"eps", real(&S::eps, kPositive), Resume::kFixed, "AdamW's epsilon"},
          {"weight_decay", real(&S::weight_decay, kNonNegative), Resume::kFixed,
           "decoupled weight decay; never applied to norms and biases"},
          F{"momentum", real(&S::momentum, kUnitHalfOpen), Resume::kFixed, "SGD momentum"}
              .written_if(is_sgd, momentum_not_used),
          {"grad_clip", real(&S::grad_clip, kNonNegative), Resume::kFixed,
           "global gradient-norm clipping (0: off)"},
          // ZeRO sharding is part of the layout: its state reshards like the rest.
          {"zero", integer(&S::zero, {0, 1}), Resume::kMayChange,
           "ZeRO-1: master weights and optimizer state sharded over the data-parallel group"},
          {"moments", choice(&S::moments), Resume::kFixed,
           "storage of AdamW's moments (bf16 on CUDA only)"},
      }};
  return section;
}

}  // namespace tailor::config
