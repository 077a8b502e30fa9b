#include "checkpoint/inspect.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/error.h"

namespace tailor::checkpoint {
namespace {

namespace fs = std::filesystem;

bool has_manifest(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "manifest.json", ec);
}

std::string human_bytes(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.2f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{:.0f} B", b);
}

std::string human_count(std::int64_t n) {
  const auto d = static_cast<double>(n);
  if (n >= 1'000'000'000) return fmt::format("{:.2f}B", d / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f}M", d / 1e6);
  if (n >= 10'000) return fmt::format("{:.1f}k", d / 1e3);
  return std::to_string(n);
}

// Groups the datasets of the files named `prefix`* by name; files that did not verify are not
// opened. Adds a problem for a file that cannot be read, for pieces of one tensor that disagree,
// and (when every file of the kind was read) for tensors whose pieces do not cover them.
std::vector<TensorSummary> read_index(Inspection& ins, const std::string& prefix) {
  std::map<std::string, TensorSummary> by_name;
  bool all_read = true;
  for (const FileCheck& fc : ins.files) {
    if (fc.name.rfind(prefix, 0) != 0) continue;
    if (!fc.problem.empty()) {
      all_read = false;
      continue;
    }
    const std::string path = ins.dir + "/" + fc.name;
    try {
      const h5::File f = h5::File::open(path);
      for (h5::DatasetInfo& info : f.list()) {
        TensorSummary& t = by_name[info.path];
        if (t.pieces.empty()) {
          t.name = info.path;
          t.global_shape = info.placement.global_shape;
          t.dtype = info.dtype;
        } else if (!(t.global_shape == info.placement.global_shape) || t.dtype != info.dtype) {
          ins.problems.push_back(
              {path, fmt::format("tensor {}: {} {} here, {} {} in {}", info.path,
                                 dtype_name(info.dtype), info.placement.global_shape.str(),
                                 dtype_name(t.dtype), t.global_shape.str(), t.pieces.front().file)});
        }
        t.held += info.placement.flat_end - info.placement.flat_begin;
        t.pieces.push_back({fc.name, std::move(info)});
      }
    } catch (const UserError& e) {
      all_read = false;
      ins.problems.push_back({path, e.reason()});
    } catch (const Error& e) {
      all_read = false;
      ins.problems.push_back({path, e.what()});
    }
  }
  std::vector<TensorSummary> out;
  for (auto& [name, t] : by_name) {
    if (all_read && t.held != t.global_shape.numel())
      ins.problems.push_back({ins.dir, fmt::format("tensor {}: the files hold {} of its {} elements",
                                                   name, t.held, t.global_shape.numel())});
    out.push_back(std::move(t));
  }
  return out;
}

void format_tensors(std::string& s, const char* title, const std::vector<TensorSummary>& ts) {
  std::int64_t elements = 0;
  std::size_t name_w = 4, shape_w = 5;
  for (const TensorSummary& t : ts) {
    elements += t.global_shape.numel();
    name_w = std::max(name_w, t.name.size());
    shape_w = std::max(shape_w, t.global_shape.str().size());
  }
  s += fmt::format("{} ({}, {} elements)\n", title, ts.size(), human_count(elements));
  for (const TensorSummary& t : ts) {
    s += fmt::format("  {:<{}}  {:<{}}  {:<4}", t.name, name_w, t.global_shape.str(), shape_w,
                     dtype_name(t.dtype));
    for (std::size_t i = 0; i < t.pieces.size(); ++i)
      s += (i == 0 ? "  " : "; ") + describe_piece(t.pieces[i]);
    s += "\n";
  }
}

}  // namespace

std::string resolve_checkpoint_dir(const std::string& path) {
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) throw_user_error(path, "no such file or directory");
  if (has_manifest(p)) return path;
  for (const fs::path& ckdir : {p, p / "checkpoints"}) {
    if (!fs::is_directory(ckdir, ec)) continue;
    if (const auto latest = latest_checkpoint(ckdir.string())) return *latest;
    if (fs::exists(ckdir / "latest", ec) || fs::is_symlink(ckdir / "latest", ec))
      throw_user_error((ckdir / "latest").string(), "does not name a step_<N> directory");
    const std::vector<CheckpointRef> all = list_checkpoints(ckdir.string());
    if (!all.empty())
      throw_user_error(ckdir.string(), "has no `latest` link (newest checkpoint: {}); name the "
                                       "step directory itself", all.back().dir);
  }
  if (fs::exists(p / "config.resolved.yaml", ec))
    throw_user_error(path, "a run directory with no checkpoint (its run saved none: "
                           "checkpoint.every_steps was 0); its trained model is {}",
                     fs::exists(p / "export", ec) ? "in " + (p / "export").string() +
                                                        " (a model directory: --model)"
                                                  : "not exported either");
  throw_user_error(path, "not a checkpoint: no manifest.json here, no latest/ or "
                         "checkpoints/latest under it");
}

std::string describe_piece(const StoredPiece& piece) {
  const h5::Placement& p = piece.info.placement;
  std::string slab;
  for (int d = 0; d < p.global_shape.rank(); ++d) {
    const std::int64_t lo = p.shard_dim == d ? p.shard_offset : 0;
    const std::int64_t hi = lo + p.local_shape[d];
    slab += fmt::format("{}{}:{}", d == 0 ? "" : ", ", lo, hi);
  }
  std::string out = fmt::format("{} [{}]", piece.file, slab);
  if (p.flat_begin != 0 || p.flat_end != p.local_shape.numel())
    out += fmt::format(" elements [{}, {})", p.flat_begin, p.flat_end);
  return out;
}

Inspection inspect_checkpoint(const std::string& dir) {
  Inspection ins;
  ins.dir = dir;
  ins.manifest = read_manifest(dir);
  const Manifest& m = ins.manifest;
  // The directory's name and the manifest agree (as resume requires).
  std::string base = fs::path(dir).filename().string();
  std::error_code ec;
  if (fs::is_symlink(dir, ec)) base = fs::read_symlink(dir, ec).filename().string();
  if (base.rfind("step_", 0) == 0 && base != "step_" + std::to_string(m.step))
    ins.problems.push_back({dir + "/manifest.json",
                            fmt::format("says step {}, the directory is {}", m.step, base)});
  ins.files = check_checkpoint_files(dir, m);
  std::set<std::string> listed{"manifest.json"};
  for (const FileCheck& f : ins.files) {
    listed.insert(f.name);
    if (!f.problem.empty()) ins.problems.push_back({dir + "/" + f.name, f.problem});
  }
  for (const ManifestFile& f : m.files)
    if (f.name == "config.yaml" && f.sha256 != m.config_sha256)
      ins.problems.push_back({dir + "/manifest.json",
                              "config.sha256 differs from the hash listed for config.yaml"});
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (!listed.count(e.path().filename().string()))
      ins.unlisted.push_back(e.path().filename().string());
  std::sort(ins.unlisted.begin(), ins.unlisted.end());
  const auto state_ok = std::find_if(ins.files.begin(), ins.files.end(), [](const FileCheck& f) {
    return f.name == "state-rank0.json" && f.problem.empty();
  });
  if (state_ok != ins.files.end()) {
    try {
      ins.state = read_rank_state(dir, ins.manifest, 0);
    } catch (const UserError& e) {
      ins.problems.push_back({e.where(), e.reason()});
    }
  }
  ins.model = read_index(ins, "model-");
  ins.optimizer = read_index(ins, "optim-");
  return ins;
}

std::string format_inspection(const Inspection& ins) {
  const Manifest& m = ins.manifest;
  std::string s;
  const auto row = [&](const char* key, const std::string& value) {
    s += fmt::format("{:<12} {}\n", key, value);
  };
  row("checkpoint", ins.dir);
  row("step", std::to_string(m.step));
  row("layout", fmt::format("tensor {} x data {} ({} rank{}){}", m.tensor, m.data, m.world,
                            m.world == 1 ? "" : "s",
                            m.zero ? ", ZeRO-1 (optimizer state sharded over data ranks)" : ""));
  row("dtype", m.dtype);
  row("optimizer", fmt::format("{}, {} updates applied", m.optimizer, m.optimizer_steps));
  if (m.peft_method == "none") {
    row("peft", "none (full model)");
  } else {
    row("peft", fmt::format("{}: trainable tensors only; base {} (identity {})", m.peft_method,
                            m.base_model.empty() ? "seeded init of the config's model"
                                                 : m.base_model,
                            m.base_identity.substr(0, 16)));
  }
  row("data", fmt::format("tokenized cache {}", m.data_fingerprint));
  row("config", fmt::format("config.yaml (sha256 {})", m.config_sha256.substr(0, 16)));
  if (ins.state)
    row("counters", fmt::format("data cursor {}, skipped steps {} ({} in a row), seed {}",
                                ins.state->data_cursor, ins.state->skipped_steps,
                                ins.state->consecutive_skips, ins.state->seed));
  s += "determinism\n";
  for (const auto& [k, v] : m.determinism) s += fmt::format("  {:<18} {}\n", k, v);

  std::uint64_t total = 0;
  std::size_t bad = 0;
  for (const FileCheck& f : ins.files) {
    total += f.bytes;
    bad += f.problem.empty() ? 0 : 1;
  }
  s += fmt::format("files ({}, {})\n", ins.files.size(), human_bytes(static_cast<double>(total)));
  std::size_t name_w = 4;
  for (const FileCheck& f : ins.files) name_w = std::max(name_w, f.name.size());
  for (const FileCheck& f : ins.files) {
    const ManifestFile* mf = nullptr;
    for (const ManifestFile& x : m.files)
      if (x.name == f.name) mf = &x;
    s += fmt::format("  {:<3} {:>12}  {:<{}}  ", f.problem.empty() ? "ok" : "BAD", f.bytes, f.name,
                     name_w);
    s += f.problem.empty() ? fmt::format("sha256 {} verifies", mf->sha256.substr(0, 16))
                           : f.problem;
    s += "\n";
  }
  for (const std::string& u : ins.unlisted)
    s += fmt::format("  {:<3} {:>12}  {}  not in the manifest (ignored)\n", "-", "", u);

  format_tensors(s, "model tensors", ins.model);
  format_tensors(s, "optimizer tensors", ins.optimizer);

  std::int64_t model_elements = 0;
  for (const TensorSummary& t : ins.model) model_elements += t.global_shape.numel();
  std::string summary = fmt::format(
      "summary: step {}, {} files ({}), {}; {} model tensors ({} elements), {} optimizer tensors",
      m.step, ins.files.size(), human_bytes(static_cast<double>(total)),
      bad == 0 ? std::string("all verify") : fmt::format("{} do not verify", bad), ins.model.size(),
      human_count(model_elements), ins.optimizer.size());
  if (ins.problems.empty()) {
    summary += ": OK";
  } else {
    summary += fmt::format(": {} problem{}", ins.problems.size(), ins.problems.size() == 1 ? "" : "s");
    for (const Problem& p : ins.problems) s += fmt::format("problem: {}: {}\n", p.where, p.reason);
  }
  s += summary + "\n";
  return s;
}

}  // namespace tailor::checkpoint
