#include "peft/lora.h"

#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "checkpoint/output_dir.h"
#include "checkpoint/safetensors.h"
#include "config/config.h"
#include "core/error.h"
#include "core/json_reader.h"
#include "core/limits.h"
#include "core/logging.h"
#include "core/rng.h"
#include "peft/adapter_files.h"

namespace tailor::peft {

using backend::Ops;
using backend::Tensor;
using model::GradSum;
using model::Parameter;
using model::ParamRole;

double LoraSpec::scale() const {
  return rslora ? alpha / std::sqrt(static_cast<double>(rank)) : alpha / static_cast<double>(rank);
}

bool LoraSpec::targets_module(std::string_view module) const {
  for (const std::string& t : targets)
    if (t == "all-linear" || t == module) return true;
  return false;
}

namespace {

// y += s (x A^T) B^T beside one base linear. Saved: u = x A^T [N, r] (x: dropout(x) on training
// batches with dropout). Scratch: du [N, r]; dropout(x) and the masked dx term [N, in].
class LoraAdapter final : public model::LinearAdapter {
 public:
  LoraAdapter(Parameter& a, Parameter& b, const LoraSpec& spec, const model::LinearSite& site)
      : a_(&a), b_(&b), rank_(spec.rank), scale_(spec.scale()), dropout_(spec.dropout),
        name_(site.name), in_(site.in), in_begin_(site.in_begin), in_global_(site.in_global) {}

  [[nodiscard]] model::AdapterBuffers buffers() const override {
    return {{rank_}, {rank_, dropout_ > 0.0 ? in_ : 0}};
  }

  void forward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
               const Tensor& x, const Tensor& y) const override {
    const Tensor& u = t.saved[0];
    Tensor in = x;
    if (dropout_on(ctx)) {  // in = dropout(x) [N, in]
      in = t.scratch[1].flat_slice(0, x.numel()).view(x.shape);
      ops.dropout(x, in, dropout_, dropout_key(ctx));
    }
    ops.gemm(in, false, a_->value, true, u, 1.0, 0.0);   // u = in A^T  [N, r]
    ops.gemm(u, false, b_->value, true, y, scale_, 1.0);  // y += s u B^T
  }

  // dB += s dy^T u; du = s dy B; dA += du^T x; dx += du A (through the same dropout mask).
  void backward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
                const Tensor& dy, const Tensor& x, const Tensor& dx) const override {
    const Tensor& u = t.saved[0];
    const Tensor du = t.scratch[0].flat_slice(0, dy.rows() * rank_).view(Shape{dy.rows(), rank_});
    ops.gemm(dy, true, u, false, b_->grad, scale_, 1.0);     // dB += s dy^T u   [out, r]
    ops.gemm(dy, false, b_->value, false, du, scale_, 0.0);  // du = s dy B      [N, r]
    if (!dropout_on(ctx)) {
      ops.gemm(du, true, x, false, a_->grad, 1.0, 1.0);       // dA += du^T x     [r, in]
      if (dx.data != nullptr) ops.gemm(du, false, a_->value, false, dx, 1.0, 1.0);
      return;
    }
    // The mask is recomputed (same key) rather than stored: dA += du^T dropout(x), and
    // dx += dropout(du A) (dropout is linear, its own transpose).
    const backend::DropoutKey key = dropout_key(ctx);
    const Tensor xd = t.scratch[1].flat_slice(0, x.numel()).view(x.shape);
    ops.dropout(x, xd, dropout_, key);
    ops.gemm(du, true, xd, false, a_->grad, 1.0, 1.0);
    if (dx.data == nullptr) return;
    ops.gemm(du, false, a_->value, false, xd, 1.0, 0.0);  // xd = du A    [N, in]
    ops.dropout(xd, xd, dropout_, key);
    ops.add(dx, xd, 1.0);
  }

  // W += s B A, in f32 on the model's device.
  void merge_into(Ops& ops, const Tensor& w) const override {
    const backend::Buffer a = ops.alloc(DType::kF32, a_->shape);
    const backend::Buffer b = ops.alloc(DType::kF32, b_->shape);
    ops.copy(a.tensor(), a_->value);
    ops.copy(b.tensor(), b_->value);
    ops.gemm(b.tensor(), false, a.tensor(), false, w, scale_, 1.0);
  }

 private:
  // Whether this batch drops LoRA inputs (training batches only).
  [[nodiscard]] bool dropout_on(const model::LayerContext& ctx) const {
    return dropout_ > 0.0 && ctx.step >= 0;
  }
  // One stream per (step, linear): masks of different steps and modules are independent; within
  // one, element (token, column) draws its number at its index in the step's global input.
  [[nodiscard]] backend::DropoutKey dropout_key(const model::LayerContext& ctx) const {
    backend::DropoutKey k;
    k.seed = ctx.seed;
    k.stream = stream_id(fmt::format("lora_dropout/{}/{}", ctx.step, name_));
    k.row0 = ctx.first_token;
    k.row_width = in_global_;
    k.col0 = in_begin_;
    return k;
  }

  Parameter* a_;  // [r, in]
  Parameter* b_;  // [out, r]
  std::int64_t rank_;
  double scale_, dropout_;
  std::string name_;  // the linear's canonical name (keys its dropout stream)
  std::int64_t in_, in_begin_, in_global_;
};

}  // namespace

std::unique_ptr<model::LinearAdapter> Lora::attach_linear(model::ParameterSet& params,
                                                          const model::LinearSite& site) const {
  if (!spec_.targets_module(site.module)) return nullptr;
  const std::int64_t r = spec_.rank;
  const int t = site.tp_size;
  const GradSum tp_sum = t > 1 ? GradSum::kTensorParallel : GradSum::kNone;
  const std::string& name = site.name;
  Parameter* a = nullptr;
  Parameter* b = nullptr;
  if (site.parallel == model::Parallel::kColumn) {
    // A replicated (partial gradients from each rank's B rows); B split like W's rows.
    a = &params.add(name + ".lora_A.weight", Shape{r, site.in}, ParamRole::kLoraA,
                    {Shape{r, site.in_global}, -1, 0, t, tp_sum});
    const bool split = site.out != site.out_global;
    b = &params.add(name + ".lora_B.weight", Shape{site.out, r}, ParamRole::kAdapterOut,
                    {Shape{site.out_global, r}, split ? 0 : -1, site.out_begin,
                     split ? site.replicas : t,
                     site.replicas > 1 ? GradSum::kKvReplicas : GradSum::kNone});
  } else {
    // A split like W's columns; B replicated (partial gradients: the sum of x_r A_r^T).
    const bool split = site.in != site.in_global;
    a = &params.add(name + ".lora_A.weight", Shape{r, site.in}, ParamRole::kLoraA,
                    {Shape{r, site.in_global}, split ? 1 : -1, site.in_begin, split ? 1 : t,
                     GradSum::kNone});
    b = &params.add(name + ".lora_B.weight", Shape{site.out, r}, ParamRole::kAdapterOut,
                    {Shape{site.out, r}, -1, 0, t, tp_sum});
  }
  return std::make_unique<LoraAdapter>(*a, *b, spec_, site);
}

std::shared_ptr<const Method> Lora::from_config(const config::PeftConfig& peft,
                                                const model::ModelSpec& spec) {
  (void)spec;
  if (!peft.adapter.empty()) return std::make_shared<Lora>(read_peft_lora_config(peft.adapter));
  LoraSpec s;
  s.rank = peft.rank;
  s.alpha = peft.alpha;
  s.rslora = peft.use_rslora;
  if (!peft.target_modules.empty()) s.targets = peft.target_modules;  // else LoRA's q_proj, v_proj
  s.dropout = peft.dropout;
  return std::make_shared<Lora>(std::move(s));
}

std::shared_ptr<const Method> Lora::from_adapter(const std::string& dir,
                                                 const model::ModelSpec& spec) {
  (void)spec;
  return std::make_shared<Lora>(read_peft_lora_config(dir));
}

std::string Lora::summary(const model::Transformer& model, comm::Communicator& tp) const {
  const auto trainable = static_cast<std::int64_t>(
      tp.all_reduce_sum(static_cast<double>(model.params().trainable_numel())));
  const auto total = static_cast<double>(model.spec().num_parameters());
  const auto bytes = static_cast<double>(dtype_size(model.dtype()));
  return fmt::format("peft: LoRA r={} alpha={} on {}: {} trainable parameters ({:.3f}% of "
                     "{:.2f}M); gradients and optimizer state for the frozen base saved: {:.1f} MB",
                     spec_.rank, spec_.alpha, fmt::join(spec_.targets, ","), trainable,
                     100.0 * static_cast<double>(trainable) / total, total / 1e6,
                     3.0 * (total - static_cast<double>(trainable)) * bytes / 1e6);
}

// ---- PEFT files ----------------------------------------------------------------------------

LoraSpec read_peft_lora_config(const std::string& dir) {
  std::string path;
  const nlohmann::json doc = read_adapter_config(dir, path);
  const JsonValue j(doc, path);
  const std::string peft_type = j.string_or("peft_type", "(missing)");
  if (peft_type != Lora::kPeftType)
    throw_user_error(path, "peft_type: {} is not supported (LORA)", peft_type);
  if (j.string_or("bias", "none") != "none") throw_user_error(path, "bias: only \"none\" is supported");
  if (j.boolean_or("fan_in_fan_out", false)) throw_user_error(path, "fan_in_fan_out: not supported");
  if (j.boolean_or("use_dora", false)) throw_user_error(path, "use_dora: DoRA is not supported yet");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (const auto v = j.find(k); v && !v->members().empty())
      throw_user_error(path, "{}: per-module ranks are not supported", k);
  if (const auto v = j.find("modules_to_save"); v && !v->elements().empty())
    throw_user_error(path, "modules_to_save: not supported");
  LoraSpec s;
  s.rank = j.at("r").integer(1, limits::kLoraRank);
  s.alpha = j.has("lora_alpha") ? j.at("lora_alpha").number() : 8.0;
  s.rslora = j.boolean_or("use_rslora", false);
  if (const auto v = j.find("lora_dropout")) {
    s.dropout = v->number();  // applies when training continues
    if (s.dropout < 0.0 || s.dropout >= 1.0)
      throw_user_error(path, "lora_dropout: expected a number in [0, 1)");
  }
  s.targets.clear();
  if (const auto t = j.find("target_modules")) {
    if (t->raw().is_string()) {
      s.targets.push_back(t->string());
    } else {
      for (const JsonValue& m : t->elements()) s.targets.push_back(m.string());
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

void Lora::load_adapter(const std::string& dir, model::Transformer& model,
                        backend::Ops& ops) const {
  const std::string path = dir + "/adapter_model.safetensors";
  const checkpoint::SafetensorsFile file(path);
  std::set<std::string> used;
  for (Parameter& p : model.params().all()) {
    if (p.method != kName) continue;
    // PEFT names: base_model.model.<name>, with the adapter name ("default") in memory only.
    const std::string name = "base_model.model." + p.name;
    if (!file.has(name)) throw_user_error(path, "missing tensor '{}'", name);
    const auto& info = file.info(name);
    const std::vector<std::int64_t> want = {p.global_shape[0], p.global_shape[1]};
    if (info.shape != want)
      throw_user_error(path, "tensor '{}' has shape [{}, {}], the model needs [{}, {}]", name,
                       info.shape.size() > 0 ? info.shape[0] : 0,
                       info.shape.size() > 1 ? info.shape[1] : 0, want[0], want[1]);
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
      throw_user_error(path, "unexpected tensor '{}' (not a LoRA factor of the configured modules)",
                       t.name);
}

void Lora::export_adapter(const std::string& dir, const ExportContext& ctx) const {
  // GPT-2's fused c_attn has no PEFT layout: its runs export the merged model only.
  if (ctx.hf.family().peft_lora_unsupported().empty()) save_peft(dir, ctx);
}

void Lora::save_peft(const std::string& dir, const ExportContext& ctx) const {
  const std::string unsupported = ctx.hf.family().peft_lora_unsupported();
  TAILOR_CHECK_USER(unsupported.empty(), dir, "{}", unsupported);
  TAILOR_ASSERT(ctx.model.tp_layout().size == 1, "PEFT export needs TP = 1");
  checkpoint::OutputDir out(dir);
  const std::string& tmp = out.tmp();
  checkpoint::write_hf_tensors(tmp + "/adapter_model.safetensors",
                               method_tensors(ctx.model, ctx.ops, kName, "base_model.model."),
                               DType::kF32);
  nlohmann::json j;
  j["peft_type"] = std::string(kPeftType);
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = ctx.base_dir;
  j["r"] = spec_.rank;
  j["lora_alpha"] = spec_.alpha;
  j["lora_dropout"] = spec_.dropout;
  j["use_rslora"] = spec_.rslora;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  if (spec_.targets.size() == 1 && spec_.targets[0] == "all-linear") {
    j["target_modules"] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"};
  } else {
    j["target_modules"] = spec_.targets;
  }
  write_adapter_config(tmp + "/adapter_config.json", j);
  out.commit();
  log::info("exported the LoRA adapter (PEFT format) to {}", dir);
}

}  // namespace tailor::peft
