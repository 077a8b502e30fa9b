#include "trainer/checkpointing.h"
#include "trainer/export.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/sha256.h"
#include "peft/registry.h"
#include "trainer/from_config.h"
#include "trainer/model_builder.h"
#include "trainer/prepare.h"

namespace tailor::trainer {
namespace {

namespace fs = std::filesystem;
using checkpoint::TensorPiece;
using checkpoint::h5::Placement;

Placement placement_of(const model::Parameter& p, std::int64_t begin, std::int64_t end) {
  Placement pl;
  pl.global_shape = p.global_shape.rank() == 0 ? p.shape : p.global_shape;
  pl.local_shape = p.shape;
  pl.shard_dim = p.shard_dim;
  pl.shard_offset = p.shard_offset;
  pl.flat_begin = begin;
  pl.flat_end = end;
  return pl;
}

// A tensor replicated over TP ranks is saved by the first rank of its replica group (ranks
// sharing a KV head are contiguous; norms and replicated LoRA factors have replicas = T).
bool saved_here(const model::Parameter& p, int tp_rank) { return tp_rank % p.replicas == 0; }

// The parameters a checkpoint holds: all of them, or only the trainable ones of a PEFT run.
bool checkpointed(const model::Parameter& p, bool peft) { return p.trainable || !peft; }

// A run with a PEFT method (peft.method's registry row; "none" has none).
bool is_peft(const config::ExperimentConfig& cfg) {
  return peft::find_method(config::name_of(cfg.peft.method)) != nullptr;
}

// The checkpoint writer reads host memory: a device tensor is copied into `staging` (which must
// outlive the synchronous write) and its host copy given instead.
backend::Tensor host_view(backend::Ops& ops, const backend::Tensor& t,
                          std::vector<backend::Buffer>& staging) {
  if (t.device == backend::Device::kCpu) return t;
  staging.emplace_back(t.dtype, t.shape);
  ops.copy(staging.back().tensor(), t);
  return staging.back().tensor();
}

// The global shape parameter p has in a checkpoint saved with `saved_tp` TP ranks: its own,
// except that a vocabulary table's rows are padded for that TP degree (docs/parallelism.md).
Shape stored_shape(const model::Parameter& p, const model::ModelSpec& spec, int saved_tp) {
  const Shape s = p.global_shape.rank() == 0 ? p.shape : p.global_shape;
  if (p.role != model::ParamRole::kVocabTable) return s;
  std::vector<std::int64_t> dims = s.dims();
  if (!dims.empty()) dims.front() = spec.padded_vocab(saved_tp);
  return Shape::of(dims);
}

// Reads a stored tensor into dst wherever it lives, converting the stored dtype to dst's (a bf16
// checkpoint evaluated in f32 on the CPU, an f32 one continued in bf16 on a GPU). Its stored
// global shape must be `stored_global` in every dim (checked before anything is allocated).
void read_into(checkpoint::CheckpointReader& reader, backend::Ops& ops, const std::string& name,
               const Placement& placement, const backend::Tensor& dst, const Shape& stored_global) {
  const DType stored = reader.dtype(name);
  if (dst.device == backend::Device::kCpu && stored == dst.dtype) {
    reader.read(name, placement, dst, &stored_global);
    return;
  }
  backend::Buffer host(stored, dst.shape);
  reader.read(name, placement, host.tensor(), &stored_global);
  ops.copy(dst, host.tensor());
}

std::map<std::string, std::string> determinism_record(const CheckpointContext& ctx) {
  utsname u{};
  uname(&u);
  std::string cpu;
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  return {{"backend", ctx.determinism_backend},
          {"dtype", std::string(config::name_of(ctx.cfg->runtime.dtype))},
          {"layout", fmt::format("tensor {} x data {}{}", ctx.grid->tp_size(), ctx.grid->dp_size(),
                                 ctx.cfg->optimizer.zero ? " (ZeRO-1)" : "")},
          {"build", fmt::format("compiler {}", __VERSION__)},
          {"machine", fmt::format("{} {} ({})", u.sysname, u.machine, cpu)},
          {"hardware_threads", std::to_string(std::thread::hardware_concurrency())}};
}

// The config a checkpoint was trained with (its config.yaml). With `any_data`, paths of data
// files that no longer resolve (relative to another working directory, moved) are set aside: the
// model does not depend on them.
config::ExperimentConfig read_checkpoint_config(const std::string& dir, bool any_data) {
  const std::string cfg_path = dir + "/config.yaml";
  std::ifstream f(cfg_path);
  if (!f) throw_user_error(cfg_path, "cannot read");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  try {
    return config::load_config_text(text, cfg_path);
  } catch (const config::ConfigError& e) {
    if (any_data) {
      try {
        return config::load_config_text(text, cfg_path,
                                        {"data.train=" + cfg_path, "data.valid=\"\""});
      } catch (const config::ConfigError&) {
      }
    }
    throw_user_error(cfg_path, "the checkpoint's config does not load: {}", e.problems().front());
  }
}

}  // namespace

void load_model_tensors(const std::string& dir, const checkpoint::Manifest& manifest,
                        model::Transformer& model, backend::Ops& ops, bool peft) {
  checkpoint::CheckpointReader reader(dir, manifest, "model-");
  for (model::Parameter& p : model.params().all()) {
    if (!checkpointed(p, peft)) continue;
    read_into(reader, ops, p.name, placement_of(p, 0, p.shape.numel()),
              p.value.view(Shape{p.shape.numel()}), stored_shape(p, model.spec(), manifest.tensor));
  }
}

CheckpointModel load_checkpoint_model(const std::string& dir, backend::Ops& ops) {
  CheckpointModel out;
  out.manifest = checkpoint::read_manifest(dir);
  {  // config.yaml and the model files must verify; optimizer files are not read at all
    checkpoint::Manifest needed = out.manifest;
    std::erase_if(needed.files, [](const checkpoint::ManifestFile& f) {
      return f.name != "config.yaml" && f.name.rfind("model-", 0) != 0;
    });
    checkpoint::verify_checkpoint(dir, needed);
  }
  out.cfg = read_checkpoint_config(dir, true);
  const config::ExperimentConfig& cfg = out.cfg;
  const bool peft = is_peft(cfg);
  // The model as the trainer builds it, on one rank.
  out.setup = model_setup(cfg);
  checkpoint::HfModelConfig& hf = out.setup.hf;
  out.tokenizer = tokenizer_from_config(cfg);
  if (!out.setup.from_hf) {
    hf.bos_token_id = out.tokenizer->bos_token_id().value_or(-1);
    hf.eos_token_id = out.tokenizer->eos_token_id().value_or(-1);
  }
  if (peft && out.manifest.base_identity != base_model_identity(cfg))
    throw_user_error(dir, "the base model differs from the one this adapter checkpoint was trained "
                          "on ({})",
                     out.manifest.base_model.empty() ? "seeded init" : out.manifest.base_model);
  out.model = build_model(cfg, out.setup, ops, nullptr, InitialWeights::kBase);
  load_model_tensors(dir, out.manifest, *out.model, ops, peft);
  log::info("loaded step {} of {} ({}; trained as tensor {} x data {})", out.manifest.step, dir,
            hf.spec.summary(), out.manifest.tensor, out.manifest.data);
  return out;
}

void export_checkpoint(const std::string& dir, const std::string& out_dir,
                       const CheckpointExport& options) {
  if (options.format == "peft") {  // a usage error: before any work (and any log line)
    const std::string method(config::name_of(read_checkpoint_config(dir, true).peft.method));
    const peft::MethodEntry* m = peft::find_method(method);
    TAILOR_CHECK_USER(m != nullptr && m->peft_format, "--format",
                      "peft writes {} adapters; this checkpoint's run used peft.method {} (use "
                      "--format hf)",
                      peft::peft_format_methods(), method);
  }
  backend::CpuOps ops(options.threads);
  CheckpointModel cm = load_checkpoint_model(dir, ops);
  const config::ExperimentConfig& cfg = cm.cfg;
  const checkpoint::HfModelConfig& hf = cm.setup.hf;
  TAILOR_CHECK_USER(!hf.model_type.empty(), dir,
                    "this architecture (norm/position/MLP mix) matches no Hugging Face family: "
                    "nothing to export");
  const bool from_hf = cm.setup.from_hf;
  model::Transformer& model = *cm.model;
  const std::string base_dir = from_hf ? cfg.model.path : "";
  if (options.format == "peft") {
    cm.setup.method->save_peft(out_dir, {hf, model, ops, base_dir});
    return;
  }
  export_hf(out_dir, cm.setup, model, ops, base_dir, options.bf16, "the model");
}

std::string base_model_identity(const config::ExperimentConfig& cfg) {
  if (cfg.model.path.empty())
    return sha256_hex(fmt::format("seeded init: seed {}", cfg.train.seed));
  Sha256 h;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(cfg.model.path)) {
    const std::string n = e.path().filename().string();
    if (n == "config.json" || n.ends_with(".safetensors")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    const std::string n = f.filename().string();
    h.update(n.data(), n.size());
    const auto size = static_cast<std::uint64_t>(fs::file_size(f));
    h.update(&size, sizeof size);
    std::ifstream in(f, std::ios::binary);
    std::uint64_t header = 0;
    std::string bytes;
    if (n == "config.json") {
      std::stringstream ss;
      ss << in.rdbuf();
      bytes = ss.str();
    } else if (in.read(reinterpret_cast<char*>(&header), 8) && header < (100u << 20)) {
      bytes.resize(header);
      in.read(bytes.data(), static_cast<std::streamsize>(header));
    }
    h.update(bytes.data(), bytes.size());
  }
  return h.hex();
}

checkpoint::PendingSave save_training_checkpoint(const CheckpointContext& ctx,
                                                 const checkpoint::RankState& state, bool best) {
  const config::ExperimentConfig& cfg = *ctx.cfg;
  comm::ProcessGrid& grid = *ctx.grid;
  checkpoint::SaveRequest req;
  req.checkpoints_dir = cfg.output.dir + "/checkpoints";
  req.step = state.step;
  req.tp_rank = grid.tp_rank();
  req.tp_size = grid.tp_size();
  req.dp_rank = grid.dp_rank();
  req.dp_size = grid.dp_size();
  const bool peft = is_peft(cfg);
  std::vector<backend::Buffer> staging;  // host copies of device tensors, until written
  req.write_model = grid.dp_rank() == 0;
  if (req.write_model)
    for (const model::Parameter& p : ctx.model->params().all())
      if (checkpointed(p, peft) && saved_here(p, grid.tp_rank()))
        req.model.push_back({p.name, placement_of(p, 0, p.shape.numel()),
                             host_view(*ctx.ops, p.value, staging)});
  // Optimizer state: every DP rank's ZeRO range, or DP rank 0's copy of the whole.
  optim::DataParallelOptimizer& opt = *ctx.optimizer;
  req.write_optimizer = opt.sharded() || grid.dp_rank() == 0;
  if (req.write_optimizer) {
    const auto& slices = opt.slices();
    for (const optim::StateTensor& st : opt.optimizer().state()) {
      const optim::ParamSlice& s = slices[st.slice];
      const model::Parameter& p = ctx.model->params().at(s.name);
      if (!saved_here(p, grid.tp_rank())) continue;
      req.optimizer.push_back({st.kind + "/" + p.name,
                               placement_of(p, s.flat_begin, s.flat_begin + s.value.numel()),
                               host_view(*ctx.ops, st.value, staging)});
    }
  }
  req.state = state;
  req.state.rank = grid.world().rank();
  req.state.tp_rank = grid.tp_rank();
  req.state.dp_rank = grid.dp_rank();
  if (grid.world().rank() == 0) {
    checkpoint::Manifest& m = req.manifest;
    m.tensor = grid.tp_size();
    m.data = grid.dp_size();
    m.world = grid.world().size();
    m.zero = opt.sharded();
    m.dtype = std::string(dtype_name(ctx.model->dtype()));
    m.optimizer = std::string(config::name_of(cfg.optimizer.name));
    m.optimizer_steps = opt.optimizer().steps_taken();
    m.determinism = determinism_record(ctx);
    m.peft_method = std::string(config::name_of(cfg.peft.method));
    if (peft) {
      m.base_model = cfg.model.path;
      m.base_identity = ctx.base_identity;
    }
    m.data_fingerprint = ctx.data_fingerprint;
    req.config_yaml = config::to_yaml(cfg);
    req.keep_last = cfg.checkpoint.keep_last;
    req.keep_every = cfg.checkpoint.keep_every;
    req.best = best;
  }
  return checkpoint::begin_save(req, grid.world());
}

checkpoint::RankState load_training_checkpoint(const CheckpointContext& ctx,
                                               const std::string& dir,
                                               const checkpoint::Manifest& manifest) {
  const config::ExperimentConfig& cfg = *ctx.cfg;
  comm::ProcessGrid& grid = *ctx.grid;
  // The run being continued must be the same run: same config (but for the keys that may
  // change), same base model, same data, same optimizer.
  const config::ExperimentConfig saved = read_checkpoint_config(dir, false);
  const std::vector<std::string> conflicts = config::resume_conflicts(saved, cfg);
  if (!conflicts.empty())
    throw_user_error(dir, "cannot resume with a different {} (only steps, logging, checkpoint "
                          "cadence, layout and threads may change; see docs/checkpoints.md)",
                     conflicts.front());
  if (is_peft(cfg) && manifest.base_identity != ctx.base_identity)
    throw_user_error(dir, "the base model differs from the one this adapter checkpoint was trained "
                          "on ({})", manifest.base_model.empty() ? "seeded init" : manifest.base_model);
  if (manifest.data_fingerprint != ctx.data_fingerprint)
    throw_user_error(dir, "the training data changed since this checkpoint (tokenized cache {} then, "
                          "{} now); resume needs the same data",
                     manifest.data_fingerprint, ctx.data_fingerprint);
  const std::string here = fmt::format("tensor {} x data {}{}", grid.tp_size(), grid.dp_size(),
                                       ctx.optimizer->sharded() ? " (ZeRO-1)" : "");
  const auto rec = manifest.determinism.find("layout");
  if (rec != manifest.determinism.end() && rec->second != here)
    log::warn("resuming a {} checkpoint as {}: tensors are resharded exactly, but reductions "
              "now sum in another order, so losses will not be bitwise those of the original layout",
              rec->second, here);

  // Model tensors.
  load_model_tensors(dir, manifest, *ctx.model, *ctx.ops, is_peft(cfg));
  // Optimizer state, slice by slice. Master weights a checkpoint lacks (it was trained in f32 and
  // continues in bf16) start from its stored weights, exactly.
  {
    checkpoint::CheckpointReader reader(dir, manifest, "optim-");
    std::optional<checkpoint::CheckpointReader> weights;
    optim::DataParallelOptimizer& opt = *ctx.optimizer;
    const auto& slices = opt.slices();
    for (const optim::StateTensor& st : opt.optimizer().state()) {
      const optim::ParamSlice& s = slices[st.slice];
      const model::Parameter& p = ctx.model->params().at(s.name);
      const Placement where = placement_of(p, s.flat_begin, s.flat_begin + s.value.numel());
      const std::string name = st.kind + "/" + p.name;
      const Shape stored = stored_shape(p, ctx.model->spec(), manifest.tensor);
      if (st.kind == "master" && !reader.has(name)) {
        if (!weights) weights.emplace(dir, manifest, "model-");
        read_into(*weights, *ctx.ops, p.name, where, st.value, stored);
        continue;
      }
      read_into(reader, *ctx.ops, name, where, st.value, stored);
    }
    opt.optimizer().set_steps_taken(manifest.optimizer_steps);
  }
  // Counters: every rank saved the same ones; rank 0's file exists under any layout.
  checkpoint::RankState state = checkpoint::read_rank_state(dir, manifest, 0);
  TAILOR_CHECK_USER(state.step == manifest.step, dir + "/state-rank0.json",
                    "step {} differs from the manifest's {}", state.step, manifest.step);
  TAILOR_CHECK_USER(state.data_cursor == manifest.step * cfg.train.global_batch,
                    dir + "/state-rank0.json", "data cursor {} is not step {} x {} sequences",
                    state.data_cursor, manifest.step, cfg.train.global_batch);
  return state;
}

}  // namespace tailor::trainer
