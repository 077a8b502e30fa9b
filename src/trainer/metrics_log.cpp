#include "trainer/metrics_log.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_reader.h"
#include "trainer/run_dir.h"

namespace tailor::trainer {

MetricsLog::MetricsLog(const std::string& path, bool append) : path_(path) {
  file_ = std::fopen(path.c_str(), append ? "a" : "w");
  if (file_ == nullptr) throw_runtime_error("{}: cannot write: {}", path, std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

std::string MetricsLog::to_json(const StepRecord& r) {
  nlohmann::ordered_json j;
  j["step"] = r.step;
  j["loss"] = r.loss;
  j["lr"] = r.lr;
  j["grad_norm"] = r.grad_norm;
  j["tokens"] = r.tokens;
  j["loss_tokens"] = r.loss_tokens;
  for (const auto& [name, value] : r.objective) j[name] = value;
  j["tokens_per_s"] = r.tokens_per_s;
  j["step_time_s"] = r.step_time_s;
  return j.dump();
}

void MetricsLog::write_eval(std::int64_t step, double eval_loss, std::int64_t eval_tokens,
                            const std::vector<std::pair<std::string, double>>& metrics) {
  nlohmann::ordered_json j;
  j["step"] = step;
  j["eval_loss"] = eval_loss;
  j["eval_ppl"] = std::exp(eval_loss);
  j["eval_tokens"] = eval_tokens;
  for (const auto& [name, value] : metrics) j["eval_" + name] = value;
  const std::string line = j.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw_runtime_error("{}: write failed: {}", path_, std::strerror(errno));
}

void MetricsLog::write(const StepRecord& record) {
  const std::string line = to_json(record) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw_runtime_error("{}: write failed: {}", path_, std::strerror(errno));
}

void truncate_metrics(const std::string& path, std::int64_t step) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return;
  std::string kept, line;
  std::int64_t line_no = 0;
  try {
    for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) {
      if (c != '\n') {
        line += static_cast<char>(c);
        continue;
      }
      ++line_no;
      // A torn record (a crash mid-write) is dropped; a record whose step is not an integer was
      // written by something else.
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object() &&
          JsonValue(j, fmt::format("{}:{}", path, line_no)).integer_or("step", -1) <= step)
        kept += line + "\n";
      line.clear();
    }
  } catch (...) {
    std::fclose(f);
    throw;
  }
  std::fclose(f);
  write_file_atomic(path, kept);
}

}  // namespace tailor::trainer
