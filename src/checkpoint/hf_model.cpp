// Hugging Face weights <-> Tailor parameters, driven by the family's tensor table
// (model/family.h).
//
// Each Hugging Face tensor is described by the Tailor parameters it is made of ("parts"): one part
// with the same layout for most, several for a fused tensor (GPT-2's c_attn), transposed for a
// Conv1D. Loading builds each parameter's global tensor from its HF source, then copies this
// rank's shard (global element indices, so any TP layout loads). Vocabulary rows past vocab_size
// (padding) are zero.
#include <algorithm>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>

#include "checkpoint/hf_model.h"
#include "checkpoint/hf_model_internal.h"
#include "checkpoint/output_dir.h"
#include "checkpoint/safetensors.h"
#include "checkpoint/sharded_safetensors.h"

namespace tailor::checkpoint {
namespace {

using model::Parameter;

using Part = model::HfTensorPart;
using HfSpec = model::HfTensorLayout;

// Tensors some checkpoints carry that are not parameters: the family's, and a tied head saved
// anyway (it is the embedding again).
bool ignorable(const std::string& name, const HfModelConfig& cfg) {
  if (cfg.family().ignorable(name)) return true;
  return cfg.spec.tie_embeddings && name == "lm_head.weight";
}

std::string shape_str(const std::vector<std::int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

// Element (r, c) of a part's parameter, in the parameter's own [rows, cols] layout, maps to this
// element of the HF tensor (row-major over hf_shape).
std::int64_t hf_index(const HfSpec& h, const Part& part, std::int64_t r, std::int64_t c) {
  if (h.shape.size() == 1) return part.offset + r;  // 1-D: the part's element r (c == 0)
  const std::int64_t hf_cols = h.shape[1];
  if (part.transpose) return c * hf_cols + part.offset + r;  // ours [out, in], HF [in, out]
  return (part.offset + r) * hf_cols + c;  // rows [offset, offset + rows) of a fused tensor
}

// Rows of a part's parameter that exist in the HF tensor: vocabulary tensors are padded in Tailor
// past HF's rows (the padding is zero and never exported).
std::int64_t rows_in_hf(const HfSpec& h, const Part& part, std::int64_t rows) {
  const bool whole_matrix = h.parts.size() == 1 && !part.transpose && h.shape.size() == 2;
  return whole_matrix ? std::min(rows, h.shape[0]) : rows;
}

}  // namespace

namespace {

// The HF tensors the model needs, each checked against the safetensors headers (present, shape,
// dtype), and no tensor left over: everything but the bytes themselves.
std::vector<HfSpec> checked_tensors(const ShardedSafetensors& st, const std::string& dir,
                                    const HfModelConfig& cfg) {
  const model::Family& family = cfg.family();
  const std::string prefix = family.load_prefix([&](const std::string& n) { return st.has(n); });
  std::vector<HfSpec> specs = family.tensors(cfg.spec, prefix);
  std::set<std::string> used;
  for (const HfSpec& h : specs) {
    if (!st.has(h.name))
      throw_user_error(dir, "missing tensor '{}' (expected by config.json for {})", h.name,
                       cfg.model_type);
    const SafetensorsTensorInfo& info = st.info(h.name);
    if (info.shape != h.shape)
      throw_user_error(st.file_of(h.name), "tensor '{}' has shape {}, config.json implies {}",
                       h.name, shape_str(info.shape), shape_str(h.shape));
    if (!info.element)
      throw_user_error(st.file_of(h.name), "tensor '{}': dtype {} is not supported (F32, BF16, F16)",
                       h.name, info.dtype);
    used.insert(h.name);
  }
  for (const std::string& name : st.names())
    if (!used.contains(name) && !ignorable(name, cfg))
      throw_user_error(st.file_of(name), "unexpected tensor '{}' (not part of a {} model with this config.json)",
                       name, cfg.model_type);
  return specs;
}

}  // namespace

void check_hf_weights(const std::string& dir, const HfModelConfig& cfg) {
  const ShardedSafetensors st(dir);
  (void)checked_tensors(st, dir, cfg);
}

void load_hf_weights(const std::string& dir, const HfModelConfig& cfg, model::Transformer& model,
                     backend::Ops& ops) {
  const ShardedSafetensors st(dir);
  const std::vector<HfSpec> specs = checked_tensors(st, dir, cfg);
  // Global values of each Tailor parameter, assembled from its HF sources.
  std::map<std::string, std::vector<double>> global;
  for (const HfSpec& h : specs) {
    const SafetensorsTensorInfo& info = st.info(h.name);
    std::vector<double> values(static_cast<std::size_t>(info.numel));
    st.read_f64(h.name, values);
    for (const Part& part : h.parts) {
      const Parameter* p = model.params().find(part.param);
      TAILOR_ASSERT(p != nullptr, "no parameter {} for {}", part.param, h.name);
      const std::int64_t rows = p->global_shape.rank() == 2 ? p->global_shape[0] : p->global_shape.numel();
      const std::int64_t cols = p->global_shape.rank() == 2 ? p->global_shape[1] : 1;
      const std::int64_t hf_rows = rows_in_hf(h, part, rows);
      auto& g = global[part.param];
      g.assign(static_cast<std::size_t>(rows * cols), 0.0);
      for (std::int64_t r = 0; r < hf_rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
          g[static_cast<std::size_t>(r * cols + c)] =
              values[static_cast<std::size_t>(hf_index(h, part, r, c))] + part.value_offset;
    }
  }
  for (Parameter& p : model.params().all()) {
    if (model::is_method_param(p.role)) continue;  // a PEFT method's, not a base weight
    const auto it = global.find(p.name);
    TAILOR_ASSERT(it != global.end(), "parameter {} has no Hugging Face source", p.name);
    backend::Buffer host(DType::kF64, p.shape);
    double* h = host.ptr<double>();
    for (std::int64_t i = 0; i < p.shape.numel(); ++i)
      h[i] = it->second[static_cast<std::size_t>(p.global_index(i))];
    ops.copy(p.value, host.tensor());
  }
}

std::vector<HfTensor> to_hf_tensors(const HfModelConfig& cfg, const model::Transformer& model,
                                    backend::Ops& ops, bool gradients) {
  TAILOR_ASSERT(model.tp_layout().size == 1, "to_hf_tensors needs the whole model (TP = 1)");
  std::vector<HfTensor> out;
  const model::Family& family = cfg.family();
  for (const HfSpec& h : family.tensors(cfg.spec, family.export_prefix())) {
    HfTensor t;
    t.name = h.name;
    t.shape = h.shape.size() == 1 ? Shape{h.shape[0]} : Shape{h.shape[0], h.shape[1]};
    t.data.assign(static_cast<std::size_t>(t.shape.numel()), 0.0f);
    for (const Part& part : h.parts) {
      const Parameter* p = model.params().find(part.param);
      TAILOR_ASSERT(p != nullptr, "no parameter {} for {}", part.param, h.name);
      const backend::Tensor src = gradients ? p->grad : p->value;
      TAILOR_ASSERT(src.data != nullptr, "parameter {} has no {}", p->name, gradients ? "gradient" : "value");
      backend::Buffer host(DType::kF32, p->shape);
      // A weight (or bias) with linear adapters (LoRA, IA3) is exported merged: W + each one's
      // delta, or W rescaled, in f32 on the model's device.
      const std::vector<const model::LinearAdapter*> adapters =
          gradients ? std::vector<const model::LinearAdapter*>{} : model.adapters_on(*p);
      if (!adapters.empty()) {
        const backend::Buffer w = ops.alloc(DType::kF32, p->shape);
        ops.copy(w.tensor(), src);
        for (const model::LinearAdapter* a : adapters) {
          if (p->shape.rank() == 2) a->merge_into(ops, w.tensor());
          else a->merge_bias_into(ops, w.tensor());
        }
        ops.copy(host.tensor(), w.tensor());
      } else {
        ops.copy(host.tensor(), src);
      }
      const float* v = host.ptr<float>();
      const auto offset = static_cast<float>(gradients ? 0.0 : part.value_offset);
      const std::int64_t rows = p->shape.rank() == 2 ? p->shape[0] : p->shape.numel();
      const std::int64_t cols = p->shape.rank() == 2 ? p->shape[1] : 1;
      const std::int64_t hf_rows = rows_in_hf(h, part, rows);
      for (std::int64_t r = 0; r < hf_rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
          t.data[static_cast<std::size_t>(hf_index(h, part, r, c))] = v[r * cols + c] - offset;
    }
    out.push_back(std::move(t));
  }
  return out;
}

void write_hf_tensors(const std::string& path, std::vector<HfTensor> tensors, DType dtype,
                      const std::map<std::string, std::string>& metadata) {
  std::sort(tensors.begin(), tensors.end(),
            [](const HfTensor& a, const HfTensor& b) { return a.name < b.name; });
  std::vector<std::vector<std::byte>> encoded;
  std::vector<SafetensorsWriteTensor> write;
  encoded.reserve(tensors.size());
  for (const HfTensor& t : tensors) {
    encoded.push_back(encode_f32(t.data, dtype));
    std::vector<std::int64_t> shape;
    for (int i = 0; i < t.shape.rank(); ++i) shape.push_back(t.shape[i]);
    write.push_back({t.name, dtype, shape, encoded.back().data()});
  }
  write_safetensors(path, write, metadata);
}

void save_hf_model(const std::string& out_dir, const HfModelConfig& cfg,
                   const model::Transformer& model, backend::Ops& ops,
                   const std::string& tokenizer_dir, bool bf16,
                   const std::map<std::string, std::string>& files) {
  namespace fs = std::filesystem;
  OutputDir out(out_dir);
  const std::string& tmp = out.tmp();
  write_hf_tensors(tmp + "/model.safetensors", to_hf_tensors(cfg, model, ops, /*gradients=*/false),
                   bf16 ? DType::kBF16 : DType::kF32);
  // config.json and the files given (inside the uncommitted directory, so no tmp + rename each).
  const auto write_text = [&](const std::string& name, const std::string& content) {
    const std::string path = tmp + "/" + name;
    std::ofstream f(path, std::ios::binary);
    f << content;
    f.close();  // the data reaches the file here: a full disk shows now
    if (!f) throw_runtime_error("{}: cannot write: {}", path, std::strerror(errno));
  };
  write_text("config.json", hf_config_json(cfg, bf16 ? "bfloat16" : "float32"));
  if (!tokenizer_dir.empty()) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                             "tokenizer.model", "generation_config.json"}) {
      const fs::path src = fs::path(tokenizer_dir) / name;
      if (!fs::exists(src)) continue;
      std::error_code ec;
      fs::copy_file(src, fs::path(tmp) / name, fs::copy_options::overwrite_existing, ec);
      if (ec) throw_runtime_error("{}: cannot copy: {}", src.string(), ec.message());
    }
  }
  for (const auto& [name, content] : files) write_text(name, content);
  out.commit();
}

}  // namespace tailor::checkpoint
