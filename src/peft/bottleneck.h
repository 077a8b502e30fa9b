// Bottleneck adapters (Houlsby et al., 2019): after the attention and the MLP sublayer of every
// layer, the sublayer output p [N, D] passes through
//   a(p) = p + up(gelu_tanh(down(p))),   down [m, D] + bias (N(0, init_std), 0),
//                                        up [D, m] + bias (0, 0: the adapter starts as identity)
// on the residual stream (a model::BlockAdapter). Parameters `model.layers.<i>.attn_adapter.*` and
// `mlp_adapter.{down,up}.{weight,bias}`, replicated over the TP ranks (p is complete on every rank
// after the row-parallel all-reduce, so their gradients agree: no TP sum).
//
// Files: PEFT has no format for them; Tailor writes adapter_config.json {"tailor_adapter":
// "bottleneck", "width": m, "placement": ["attention", "mlp"], "activation": "gelu_tanh"} and
// adapters.safetensors with the parameters under their canonical names.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "peft/method.h"

namespace tailor::config {
struct PeftConfig;
}

namespace tailor::peft {

class Bottleneck final : public Method {
 public:
  static constexpr std::string_view kName = "adapter";
  static constexpr std::string_view kDisplayName = "bottleneck";

  explicit Bottleneck(std::int64_t width) : width_(width) {}
  // peft.bottleneck: the width m.
  [[nodiscard]] static std::shared_ptr<const Method> from_config(const config::PeftConfig& peft,
                                                                 const model::ModelSpec& spec);
  [[nodiscard]] std::int64_t width() const noexcept { return width_; }

  [[nodiscard]] std::string_view name() const override { return kName; }
  [[nodiscard]] std::unique_ptr<model::BlockAdapter> attach_block(
      model::ParameterSet& params, const model::BlockSite& site) const override;

  [[nodiscard]] std::string_view display_name() const override { return kDisplayName; }
  [[nodiscard]] std::string summary(const model::Transformer& model,
                                    comm::Communicator& tp) const override;
  // Tailor's layout (above), dir replaced atomically. TP = 1.
  void export_adapter(const std::string& dir, const ExportContext& ctx) const override;

 private:
  std::int64_t width_;
};

}  // namespace tailor::peft
