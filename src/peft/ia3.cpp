#include "peft/ia3.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "checkpoint/output_dir.h"
#include "checkpoint/safetensors.h"
#include "config/config.h"
#include "core/error.h"
#include "core/json_reader.h"
#include "core/logging.h"
#include "model/family.h"
#include "peft/adapter_files.h"

namespace tailor::peft {

using backend::Ops;
using backend::Tensor;
using model::GradSum;
using model::Parameter;
using model::ParamRole;

namespace {

bool listed(const std::vector<std::string>& list, std::string_view module) {
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& m) { return m == "all-linear" || m == module; });
}

// The family peft would pick its defaults from: the base's model_type; for a config-defined model
// the first family that represents it (LLaMA's layout when none does).
const model::Family& family_of(const model::ModelSpec& spec) {
  const model::Family* f = !spec.model_type.empty() ? model::find_family(spec.model_type)
                                                    : model::family_for_spec(spec);
  return f != nullptr ? *f : *model::families().front();
}

// The module a parameter `<linear>.ia3_l` scales: "model.layers.0.mlp.down_proj.ia3_l" ->
// "down_proj".
std::string module_of(const std::string& param) {
  const std::string linear = param.substr(0, param.rfind('.'));
  return linear.substr(linear.rfind('.') + 1);
}

// IA3 on one linear. Saved: x' [N, in] (input; adapter.h's contract) or the unscaled output z
// [N, out] (output), for l's gradient. No scratch.
class Ia3Adapter final : public model::LinearAdapter {
 public:
  Ia3Adapter(Parameter& l, bool feedforward, const model::LinearSite& site)
      : l_(&l), feedforward_(feedforward), width_(feedforward ? site.in : site.out) {}

  [[nodiscard]] model::AdapterBuffers buffers() const override { return {{width_}, {}}; }
  [[nodiscard]] model::LinearHooks hooks() const override {
    model::LinearHooks h;
    h.additive = false;
    h.input = feedforward_;
    h.output = !feedforward_;
    return h;
  }

  // x' = x * l
  void input_forward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
                     const Tensor& x) const override {
    (void)ctx;
    ops.copy(t.saved[0], x);
    ops.scale_columns(t.saved[0], l_->value);
  }
  // dl += sum_n dx' * x; dx += dx' * l (dxp is the layer's scratch: scaled in place).
  void input_backward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
                      const Tensor& x, const Tensor& dxp, const Tensor& dx) const override {
    (void)ctx, (void)t;
    ops.scale_columns_backward(l_->grad, dxp, x);
    ops.scale_columns(dxp, l_->value);
    ops.add(dx, dxp, 1.0);
  }
  // y = z * l, z kept.
  void output_forward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
                      const Tensor& y, const Tensor& b) const override {
    (void)ctx, (void)b;
    ops.copy(t.saved[0], y);
    ops.scale_columns(y, l_->value);
  }
  // dl += sum_n dy * z; dz = dy * l.
  void output_backward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
                       const Tensor& dy, const Tensor& b) const override {
    (void)ctx, (void)b;
    ops.scale_columns_backward(l_->grad, dy, t.saved[0]);
    ops.scale_columns(dy, l_->value);
  }

  // W [out, in]: rows times l (output) or columns times l (input), in f32 on the host.
  void merge_into(Ops& ops, const Tensor& w) const override {
    const std::vector<float> l = values(ops);
    backend::Buffer host(DType::kF32, w.shape);
    ops.copy(host.tensor(), w);
    float* h = host.ptr<float>();
    const std::int64_t rows = w.shape[0], cols = w.shape[1];
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c)
        h[r * cols + c] *= l[static_cast<std::size_t>(feedforward_ ? c : r)];
    ops.copy(w, host.tensor());
  }
  // An output l scales the bias too (peft's merge); an input l leaves it.
  void merge_bias_into(Ops& ops, const Tensor& b) const override {
    if (feedforward_) return;
    const std::vector<float> l = values(ops);
    backend::Buffer host(DType::kF32, b.shape);
    ops.copy(host.tensor(), b);
    for (std::int64_t i = 0; i < b.numel(); ++i)
      host.ptr<float>()[i] *= l[static_cast<std::size_t>(i)];
    ops.copy(b, host.tensor());
  }

 private:
  [[nodiscard]] std::vector<float> values(Ops& ops) const {
    std::vector<float> l(static_cast<std::size_t>(l_->shape.numel()));
    ops.copy(Tensor{l.data(), DType::kF32, l_->shape, backend::Device::kCpu}, l_->value);
    return l;
  }

  Parameter* l_;  // [in] (input) or [out] (output), this rank's shard
  bool feedforward_;
  std::int64_t width_;
};

}  // namespace

bool Ia3Spec::targets_module(std::string_view module) const { return listed(targets, module); }
bool Ia3Spec::feedforward_module(std::string_view module) const {
  return targets_module(module) && listed(feedforward, module);
}

std::unique_ptr<model::LinearAdapter> Ia3::attach_linear(model::ParameterSet& params,
                                                         const model::LinearSite& site) const {
  if (!spec_.targets_module(site.module)) return nullptr;
  const bool ff = spec_.feedforward_module(site.module);
  const int t = site.tp_size;
  const std::string name = site.name + ".ia3_l";
  Parameter* l = nullptr;
  if (ff) {
    if (site.parallel == model::Parallel::kColumn) {
      // The input is replicated; dx' = dz W_r is this rank's share of the sum over output rows.
      l = &params.add(name, Shape{site.in}, ParamRole::kAdapterScale,
                      {Shape{site.in_global}, -1, 0, t,
                       t > 1 ? GradSum::kTensorParallel : GradSum::kNone});
    } else {
      const bool split = site.in != site.in_global;
      l = &params.add(name, Shape{site.in}, ParamRole::kAdapterScale,
                      {Shape{site.in_global}, split ? 0 : -1, site.in_begin, split ? 1 : t,
                       GradSum::kNone});
    }
  } else if (site.parallel == model::Parallel::kColumn) {
    const bool split = site.out != site.out_global;
    l = &params.add(name, Shape{site.out}, ParamRole::kAdapterScale,
                    {Shape{site.out_global}, split ? 0 : -1, site.out_begin,
                     split ? site.replicas : t,
                     site.replicas > 1 ? GradSum::kKvReplicas : GradSum::kNone});
  } else {
    // The output hook sees the all-reduced output: l and its gradient are whole on every rank.
    l = &params.add(name, Shape{site.out}, ParamRole::kAdapterScale,
                    {Shape{site.out_global}, -1, 0, t, GradSum::kNone});
  }
  return std::make_unique<Ia3Adapter>(*l, ff, site);
}

std::shared_ptr<const Method> Ia3::from_config(const config::PeftConfig& peft,
                                               const model::ModelSpec& spec) {
  if (!peft.adapter.empty()) return std::make_shared<Ia3>(read_peft_ia3_config(peft.adapter, spec));
  const model::Family& family = family_of(spec);
  Ia3Spec s;
  s.targets = peft.target_modules.empty() ? family.peft_ia3_targets() : peft.target_modules;
  s.feedforward =
      peft.feedforward_modules.empty() ? family.peft_ia3_feedforward() : peft.feedforward_modules;
  return std::make_shared<Ia3>(std::move(s));
}

std::shared_ptr<const Method> Ia3::from_adapter(const std::string& dir,
                                                const model::ModelSpec& spec) {
  return std::make_shared<Ia3>(read_peft_ia3_config(dir, spec));
}

std::string Ia3::summary(const model::Transformer& model, comm::Communicator& tp) const {
  // Replicated vectors are counted once: the sum over ranks of each shard / its replicas.
  double local = 0.0;
  for (const Parameter& p : model.params().all())
    if (p.method == kName) local += static_cast<double>(p.shape.numel()) / p.replicas;
  const auto trainable = static_cast<std::int64_t>(tp.all_reduce_sum(local) + 0.5);
  const auto total = static_cast<double>(model.spec().num_parameters());
  std::vector<std::string> ff;
  for (const std::string& m : spec_.feedforward)
    if (spec_.targets_module(m)) ff.push_back(m);
  return fmt::format("peft: IA3 on {} (input-scaled: {}): {} trainable parameters ({:.4f}% of "
                     "{:.2f}M)",
                     fmt::join(spec_.targets, ","), ff.empty() ? "none" : fmt::format("{}", fmt::join(ff, ",")),
                     trainable, 100.0 * static_cast<double>(trainable) / total, total / 1e6);
}

// ---- PEFT files ----------------------------------------------------------------------------

namespace {

// target_modules / feedforward_modules: a list of names, or one name.
std::vector<std::string> module_list(const JsonValue& v) {
  std::vector<std::string> out;
  if (v.raw().is_string()) {
    out.push_back(v.string());
  } else {
    for (const JsonValue& m : v.elements()) out.push_back(m.string());
  }
  return out;
}

}  // namespace

Ia3Spec read_peft_ia3_config(const std::string& dir, const model::ModelSpec& spec) {
  std::string path;
  const nlohmann::json doc = read_adapter_config(dir, path);
  const JsonValue j(doc, path);
  const std::string peft_type = j.string_or("peft_type", "(missing)");
  if (peft_type != Ia3::kPeftType)
    throw_user_error(path, "peft_type: {} is not supported (IA3)", peft_type);
  if (j.boolean_or("fan_in_fan_out", false)) throw_user_error(path, "fan_in_fan_out: not supported");
  if (const auto v = j.find("modules_to_save"); v && !v->raw().is_null() && !v->elements().empty())
    throw_user_error(path, "modules_to_save: not supported");
  if (const auto v = j.find("exclude_modules"); v && !v->raw().is_null())
    throw_user_error(path, "exclude_modules: not supported");
  const model::Family& family = family_of(spec);
  Ia3Spec s;
  const auto t = j.find("target_modules");
  s.targets = t && !t->raw().is_null() ? module_list(*t) : family.peft_ia3_targets();
  const auto f = j.find("feedforward_modules");
  s.feedforward = f && !f->raw().is_null() ? module_list(*f) : family.peft_ia3_feedforward();
  static const std::set<std::string> kKnown = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                               "up_proj", "down_proj", "all-linear"};
  if (s.targets.empty()) throw_user_error(path, "target_modules: empty");
  for (const std::string& m : s.targets)
    if (!kKnown.contains(m))
      throw_user_error(path, "target_modules: {} is not a linear Tailor can adapt", m);
  for (const std::string& m : s.feedforward)
    if (!kKnown.contains(m))
      throw_user_error(path, "feedforward_modules: {} is not a linear Tailor can adapt", m);
  return s;
}

void Ia3::load_adapter(const std::string& dir, model::Transformer& model, backend::Ops& ops) const {
  const std::string path = dir + "/adapter_model.safetensors";
  const checkpoint::SafetensorsFile file(path);
  std::set<std::string> used;
  for (Parameter& p : model.params().all()) {
    if (p.method != kName) continue;
    const std::string name = "base_model.model." + p.name;
    if (!file.has(name)) throw_user_error(path, "missing tensor '{}'", name);
    const auto& info = file.info(name);
    const std::int64_t n = p.global_shape[0];
    const bool ff = spec_.feedforward_module(module_of(p.name));
    const std::vector<std::int64_t> want =
        ff ? std::vector<std::int64_t>{1, n} : std::vector<std::int64_t>{n, 1};
    if (info.shape != want)
      throw_user_error(path, "tensor '{}' has shape [{}], the model needs [{}, {}]", name,
                       fmt::format("{}", fmt::join(info.shape, ", ")), want[0], want[1]);
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
      throw_user_error(path, "unexpected tensor '{}' (not an IA3 vector of the configured modules)",
                       t.name);
}

void Ia3::export_adapter(const std::string& dir, const ExportContext& ctx) const {
  // GPT-2's fused c_attn has no per-projection PEFT layout: its runs export the merged model only.
  if (ctx.hf.family().peft_lora_unsupported().empty()) save_peft(dir, ctx);
}

void Ia3::save_peft(const std::string& dir, const ExportContext& ctx) const {
  TAILOR_CHECK_USER(ctx.hf.family().peft_lora_unsupported().empty(), dir,
                    "PEFT export of IA3 on this family is not supported (a fused projection holds "
                    "one vector in PEFT, several in Tailor); export --format hf (merged) instead");
  TAILOR_ASSERT(ctx.model.tp_layout().size == 1, "PEFT export needs TP = 1");
  std::vector<checkpoint::HfTensor> tensors =
      method_tensors(ctx.model, ctx.ops, kName, "base_model.model.");
  for (checkpoint::HfTensor& t : tensors) {  // peft's shapes: [1, in] or [out, 1]
    const std::int64_t n = t.shape.numel();
    const std::string param = t.name.substr(std::string("base_model.model.").size());
    t.shape = spec_.feedforward_module(module_of(param)) ? Shape{1, n} : Shape{n, 1};
  }
  checkpoint::OutputDir out(dir);
  const std::string& tmp = out.tmp();
  checkpoint::write_hf_tensors(tmp + "/adapter_model.safetensors", std::move(tensors),
                               DType::kF32);
  const bool all = spec_.targets.size() == 1 && spec_.targets[0] == "all-linear";
  const std::vector<std::string> every = {"q_proj", "k_proj", "v_proj", "o_proj",
                                          "gate_proj", "up_proj", "down_proj"};
  std::vector<std::string> targets = all ? every : spec_.targets;
  std::vector<std::string> ff;
  for (const std::string& m : every)
    if (spec_.feedforward_module(m)) ff.push_back(m);
  std::sort(targets.begin(), targets.end());
  nlohmann::json j;
  j["peft_type"] = std::string(kPeftType);
  j["task_type"] = "CAUSAL_LM";
  j["base_model_name_or_path"] = ctx.base_dir;
  j["target_modules"] = targets;
  j["feedforward_modules"] = ff;
  j["fan_in_fan_out"] = false;
  j["init_ia3_weights"] = true;
  j["inference_mode"] = true;
  write_adapter_config(tmp + "/adapter_config.json", j);
  out.commit();
  log::info("exported the IA3 adapter (PEFT format) to {}", dir);
}

}  // namespace tailor::peft
