#include "peft/lora.h"

#include <algorithm>
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
#include "model/tp_mappings.h"
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
class LoraAdapter : public model::LinearAdapter {
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

 protected:
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

// The norms ||W_o + s (B A)_o|| of the rows o of a linear's weight w [out, in] (this rank's
// shard) with its LoRA factors a [r, in] and b [out, r], on the host in f64, as peft's
// get_weight_norm (torch.linalg.norm over the input dimension). W + s B A is formed in the
// accumulation dtype on the model's device; its per-row sums of squares come from rmsnorm with a
// unit weight and eps 0 (rstd = 1 / sqrt(sum / in)), an op every backend has. `reduce`: the TP
// group whose ranks hold the other columns of the rows (a row-parallel W), which sums the
// squares; nullptr when the rows are whole here.
std::vector<double> dora_row_norms(Ops& ops, const Tensor& w, const Tensor& a, const Tensor& b,
                                   double s, comm::Communicator* reduce) {
  const std::int64_t out = w.shape[0], in = w.shape[1];
  const DType acc = accum_dtype(w.dtype);
  const backend::Buffer wp = ops.alloc(acc, w.shape);
  ops.copy(wp.tensor(), w);
  {
    const backend::Buffer af = ops.alloc(acc, a.shape);
    const backend::Buffer bf = ops.alloc(acc, b.shape);
    ops.copy(af.tensor(), a);
    ops.copy(bf.tensor(), b);
    ops.gemm(bf.tensor(), false, af.tensor(), false, wp.tensor(), s, 1.0);  // W + s B A
  }
  const backend::Buffer ones = ops.alloc(acc, Shape{in});
  ops.fill(ones.tensor(), 1.0);
  const backend::Buffer y = ops.alloc(acc, w.shape);
  const backend::Buffer rstd = ops.alloc(acc, Shape{out});
  ops.rmsnorm_forward(wp.tensor(), ones.tensor(), 0.0, y.tensor(), rstd.tensor());
  backend::Buffer host(DType::kF64, Shape{out});
  ops.copy(host.tensor(), rstd.tensor());
  double* h = host.ptr<double>();
  for (std::int64_t o = 0; o < out; ++o) h[o] = static_cast<double>(in) / (h[o] * h[o]);
  if (reduce != nullptr && reduce->size() > 1) {
    const backend::Buffer sums = ops.alloc(acc, Shape{out});
    ops.copy(sums.tensor(), host.tensor());
    model::tp::reduce_from_region_forward(reduce, sums.tensor());  // a row-parallel sum
    ops.copy(host.tensor(), sums.tensor());
  }
  std::vector<double> norms(static_cast<std::size_t>(out));
  for (std::int64_t o = 0; o < out; ++o) norms[static_cast<std::size_t>(o)] = std::sqrt(h[o]);
  return norms;
}

std::vector<double> host_values(Ops& ops, const Tensor& t) {
  backend::Buffer host(DType::kF64, Shape{t.numel()});
  ops.copy(host.tensor(), t.flat_slice(0, t.numel()));
  return {host.ptr<double>(), host.ptr<double>() + t.numel()};
}

// DoRA (Liu et al., 2024) as peft computes it: LoRA's additive term, then the linear's output
// hook y = c (z - b) + b with z = x W^T + b + s (x A^T) B^T and c = m / ||W + s B A|| per output
// row, the norm a constant (detached): A and B get their gradients through c s (x A^T) B^T only.
// Saved: LoRA's u, then v = (z - b) / ||W + s B A|| [N, out] (dm += sum_n dy v). The scale c of
// the last forward stays with the adapter for the backward (the weights do not change between
// them).
class DoraAdapter final : public LoraAdapter {
 public:
  DoraAdapter(Parameter& a, Parameter& b, Parameter& m, const Parameter& w, const LoraSpec& spec,
              const model::LinearSite& site)
      : LoraAdapter(a, b, spec, site), m_(&m), w_(&w), out_(site.out),
        row_parallel_(site.parallel == model::Parallel::kRow) {}

  [[nodiscard]] model::AdapterBuffers buffers() const override {
    model::AdapterBuffers need = LoraAdapter::buffers();
    need.saved.push_back(out_);
    return need;
  }
  [[nodiscard]] model::LinearHooks hooks() const override {
    model::LinearHooks h;
    h.output = true;
    return h;
  }

  void output_forward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
                      const Tensor& y, const Tensor& b) const override {
    const std::vector<double> norm = dora_row_norms(
        ops, w_->value, a_->value, b_->value, scale_, row_parallel_ ? ctx.tp : nullptr);
    const std::vector<double> m = host_values(ops, m_->value);
    const std::vector<double> bias =
        b.data != nullptr ? host_values(ops, b) : std::vector<double>(norm.size(), 0.0);
    // Rows of vecs: c, 1 / norm, -b / norm, (1 - c) b.
    backend::Buffer host(DType::kF64, Shape{4, out_});
    double* h = host.ptr<double>();
    for (std::int64_t o = 0; o < out_; ++o) {
      const auto i = static_cast<std::size_t>(o);
      const double c = m[i] / norm[i];
      h[o] = c;
      h[out_ + o] = 1.0 / norm[i];
      h[2 * out_ + o] = -bias[i] / norm[i];
      h[3 * out_ + o] = (1.0 - c) * bias[i];
    }
    vecs_ = ops.alloc(y.dtype, Shape{4, out_});
    ops.copy(vecs_.tensor(), host.tensor());
    auto row = [&](std::int64_t k) { return vecs_.tensor().flat_slice(k * out_, (k + 1) * out_); };
    const Tensor& v = t.saved[1];
    ops.copy(v, y);
    ops.scale_columns(v, row(1));
    if (b.data != nullptr) ops.add_bias(v, row(2));
    ops.scale_columns(y, row(0));
    if (b.data != nullptr) ops.add_bias(y, row(3));
  }
  // dm += sum_n dy * v; dz = c dy.
  void output_backward(Ops& ops, const model::LayerContext& ctx, const model::AdapterTensors& t,
                       const Tensor& dy, const Tensor& b) const override {
    (void)ctx, (void)b;
    ops.scale_columns_backward(m_->grad, dy, t.saved[1]);
    ops.scale_columns(dy, vecs_.tensor().flat_slice(0, out_));
  }

  // W becomes c (W + s B A), c = m / ||W + s B A|| (peft's merge); the bias stays.
  void merge_into(Ops& ops, const Tensor& w) const override {
    const std::vector<double> norm = dora_row_norms(ops, w, a_->value, b_->value, scale_, nullptr);
    const std::vector<double> m = host_values(ops, m_->value);
    LoraAdapter::merge_into(ops, w);
    backend::Buffer host(DType::kF64, w.shape);
    ops.copy(host.tensor(), w);
    double* h = host.ptr<double>();
    const std::int64_t cols = w.shape[1];
    for (std::int64_t o = 0; o < w.shape[0]; ++o) {
      const auto i = static_cast<std::size_t>(o);
      for (std::int64_t k = 0; k < cols; ++k) h[o * cols + k] *= m[i] / norm[i];
    }
    ops.copy(w, host.tensor());
  }

 private:
  Parameter* m_;         // [out]: this rank's rows (whole for a row-parallel W)
  const Parameter* w_;   // the base weight [out, in], this rank's shard
  std::int64_t out_;
  bool row_parallel_;
  mutable backend::Buffer vecs_;  // [4, out]: c, 1 / norm, -b / norm, (1 - c) b of the last forward
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
  if (!spec_.use_dora) return std::make_unique<LoraAdapter>(*a, *b, spec_, site);
  // DoRA's magnitude follows the output it scales, as IA3's output vector: split like a
  // column-parallel W's rows (summed over the replicas of a shared KV head), whole on every rank
  // of a row-parallel W, whose output hook sees the all-reduced output (its gradient is then
  // complete everywhere).
  const std::string m_name = name + ".lora_magnitude_vector";
  Parameter* m = nullptr;
  if (site.parallel == model::Parallel::kColumn) {
    const bool split = site.out != site.out_global;
    m = &params.add(m_name, Shape{site.out}, ParamRole::kAdapterScale,
                    {Shape{site.out_global}, split ? 0 : -1, site.out_begin,
                     split ? site.replicas : t,
                     site.replicas > 1 ? GradSum::kKvReplicas : GradSum::kNone});
  } else {
    m = &params.add(m_name, Shape{site.out}, ParamRole::kAdapterScale,
                    {Shape{site.out_global}, -1, 0, t, GradSum::kNone});
  }
  const Parameter* w = params.find(name + ".weight");
  TAILOR_ASSERT(w != nullptr, "DoRA: no weight {}.weight", name);
  return std::make_unique<DoraAdapter>(*a, *b, *m, *w, spec_, site);
}

void Lora::initialize(model::Transformer& model, const InitContext& ctx) const {
  if (!spec_.use_dora) return;
  // m = ||W + s B A|| per output row (peft's update_layer): the base model at the start.
  TAILOR_ASSERT(ctx.ops != nullptr, "DoRA's initialization needs the model's ops");
  backend::Ops& ops = *ctx.ops;
  for (Parameter& m : model.params().all()) {
    if (m.method != kName || m.role != ParamRole::kAdapterScale) continue;
    const std::string linear = m.name.substr(0, m.name.rfind('.'));
    const Parameter& w = model.params().at(linear + ".weight");
    const Parameter& a = model.params().at(linear + ".lora_A.weight");
    const Parameter& b = model.params().at(linear + ".lora_B.weight");
    // A row-parallel W (its columns split, m whole) needs the other ranks' squares.
    const bool row_split = w.shard_dim == 1;
    const std::vector<double> norm =
        dora_row_norms(ops, w.value, a.value, b.value, spec_.scale(), row_split ? ctx.tp : nullptr);
    backend::Buffer host(DType::kF64, m.shape);
    std::copy(norm.begin(), norm.end(), host.ptr<double>());
    ops.copy(m.value, host.tensor());
  }
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
  s.use_dora = peft.use_dora;
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
  return fmt::format("peft: {} r={} alpha={} on {}: {} trainable parameters ({:.3f}% of "
                     "{:.2f}M); gradients and optimizer state for the frozen base saved: {:.1f} MB",
                     spec_.use_dora ? "DoRA" : "LoRA", spec_.rank, spec_.alpha,
                     fmt::join(spec_.targets, ","), trainable,
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
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (const auto v = j.find(k); v && !v->members().empty())
      throw_user_error(path, "{}: per-module ranks are not supported", k);
  if (const auto v = j.find("modules_to_save"); v && !v->elements().empty())
    throw_user_error(path, "modules_to_save: not supported");
  LoraSpec s;
  s.rank = j.at("r").integer(1, limits::kLoraRank);
  s.alpha = j.has("lora_alpha") ? j.at("lora_alpha").number() : 8.0;
  s.rslora = j.boolean_or("use_rslora", false);
  s.use_dora = j.boolean_or("use_dora", false);
  if (const auto v = j.find("lora_dropout")) {
    s.dropout = v->number();  // applies when training continues
    if (s.dropout < 0.0 || s.dropout >= 1.0)
      throw_user_error(path, "lora_dropout: expected a number in [0, 1)");
  }
  if (s.use_dora && s.dropout > 0.0) {
    // peft's DoRA with dropout computes its base term on the dropped-out input, which Tailor
    // does not (yet): training continues without dropout.
    log::warn("{}: lora_dropout {} with use_dora: Tailor's DoRA has no dropout, training from "
              "this adapter continues without it", path, s.dropout);
    s.dropout = 0.0;
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
    std::vector<std::int64_t> want;  // [r, in] / [out, r], DoRA's magnitude [out]
    for (int d = 0; d < p.global_shape.rank(); ++d) want.push_back(p.global_shape[d]);
    if (info.shape != want)
      throw_user_error(path, "tensor '{}' has shape [{}], the model needs [{}]", name,
                       fmt::format("{}", fmt::join(info.shape, ", ")),
                       fmt::format("{}", fmt::join(want, ", ")));
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
      throw_user_error(path, "unexpected tensor '{}' (not a LoRA factor{} of the configured modules)",
                       t.name, spec_.use_dora ? " or DoRA magnitude" : "");
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
  if (spec_.use_dora) j["use_dora"] = true;  // peft's default is false: plain LoRA's file as before
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
