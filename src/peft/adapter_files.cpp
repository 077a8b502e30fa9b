#include "peft/adapter_files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tailor::peft {

nlohmann::json read_adapter_config(const std::string& dir, std::string& path) {
  path = dir + "/adapter_config.json";
  std::ifstream f(path);
  if (!f) throw_user_error(path, "cannot read (a PEFT adapter directory needs adapter_config.json)");
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw_user_error(path, "not a JSON object");
  return j;
}

std::string read_peft_type(const std::string& dir) {
  std::string path;
  const nlohmann::json j = read_adapter_config(dir, path);
  return j.contains("peft_type") && j["peft_type"].is_string() ? j["peft_type"].get<std::string>()
                                                               : "";
}

void write_adapter_config(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  f.close();  // the data reaches the file here: a full disk shows now
  if (!f) throw_runtime_error("{}: cannot write: {}", path, std::strerror(errno));
}

std::vector<checkpoint::HfTensor> method_tensors(const model::Transformer& model,
                                                 backend::Ops& ops, std::string_view method,
                                                 const std::string& prefix) {
  std::vector<checkpoint::HfTensor> out;
  for (const model::Parameter& p : model.params().all()) {
    if (p.method != method) continue;
    checkpoint::HfTensor t{prefix + p.name, p.shape,
                           std::vector<float>(static_cast<std::size_t>(p.shape.numel()))};
    backend::Tensor host{t.data.data(), DType::kF32, p.shape, backend::Device::kCpu};
    ops.copy(host, p.value);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace tailor::peft
