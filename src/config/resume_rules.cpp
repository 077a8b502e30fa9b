// Which config keys a resumed run may change (see config.h, resume_conflicts).
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/config.h"

namespace tailor::config {
namespace {

// Keys (or sections, ending in '.') that may differ from the checkpoint's config: how long to
// train, how often to log and save, where and with what layout and threads to run. Everything else
// (model, data, seed, batch, optimizer, schedule shape, PEFT, dtype) defines the run being continued.
// ZeRO sharding is part of the layout: its state reshards like the rest.
const char* const kMutable[] = {
    "output.dir",       "train.steps",         "train.resume",      "train.log_every",
    "train.micro_batch", "train.max_skipped_steps", "checkpoint.",   "parallel.",
    "runtime.threads",  "runtime.log_level",   "runtime.watchdog_s", "runtime.device",
    "data.cache_dir",   "optimizer.zero",      "train.eval_every",  "prompt_search.",
    "train.recompute",
};

bool is_mutable(const std::string& key) {
  for (const char* m : kMutable) {
    const std::string k(m);
    if (k.back() == '.' ? key.rfind(k, 0) == 0 : key == k) return true;
  }
  return false;
}

void flatten(const YAML::Node& n, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n)
      flatten(kv.second, prefix.empty() ? kv.first.as<std::string>()
                                        : prefix + "." + kv.first.as<std::string>(),
              out);
  } else {
    YAML::Emitter e;
    e << YAML::Flow << n;
    out[prefix] = e.c_str();
  }
}

std::map<std::string, std::string> flat(const ExperimentConfig& c) {
  std::map<std::string, std::string> out;
  flatten(YAML::Load(to_yaml(c)), "", out);
  return out;
}

}  // namespace

std::vector<std::string> resume_mutable_keys() {
  return {std::begin(kMutable), std::end(kMutable)};
}

std::vector<std::string> resume_conflicts(const ExperimentConfig& saved,
                                          const ExperimentConfig& now) {
  const auto a = flat(saved);
  const auto b = flat(now);
  std::vector<std::string> out;
  for (const auto& [key, va] : a) {
    if (is_mutable(key)) continue;
    const auto it = b.find(key);
    const std::string vb = it == b.end() ? "(absent)" : it->second;
    if (va != vb) out.push_back(fmt::format("{}: {} in the checkpoint, {} now", key, va, vb));
  }
  for (const auto& [key, vb] : b)
    if (!is_mutable(key) && a.count(key) == 0)
      out.push_back(fmt::format("{}: (absent) in the checkpoint, {} now", key, vb));
  return out;
}

}  // namespace tailor::config
