// ShardedSafetensors: model.safetensors, or model.safetensors.index.json and its shards, checked
// against each other. See sharded_safetensors.h.
#include "checkpoint/sharded_safetensors.h"

#include <filesystem>
#include <fstream>
#include <system_error>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_reader.h"

namespace tailor::checkpoint {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr std::uintmax_t kMaxIndexBytes = 100'000'000;

// True when `p` names something, a dangling symlink included (opening it then says what is wrong).
bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

bool is_bare_file_name(std::string_view f) {
  return !f.empty() && f != "." && f != ".." && f.find_first_of(std::string_view("/\\\0", 3)) ==
                                                   std::string_view::npos;
}

std::string read_index(const std::string& path) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) throw UserError(path, fmt::format("cannot open: {}", ec.message()));
  if (size > kMaxIndexBytes)
    throw UserError(path, fmt::format("file is {} bytes, over the limit of {}", size, kMaxIndexBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path, "cannot open");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size) throw_runtime_error("{}: cannot read", path);
  return text;
}

// Parses the index JSON; a name given twice in weight_map is an error (JSON would keep the last).
Json parse_index(const std::string& text, const std::string& path) {
  std::string top_key;
  std::unordered_set<std::string> weight_names;
  const auto on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key) {
      if (depth == 1) {
        top_key = parsed.get<std::string>();
      } else if (depth == 2 && top_key == "weight_map" &&
                 !weight_names.insert(parsed.get<std::string>()).second) {
        throw UserError(path, fmt::format("weight_map entry '{}': appears twice",
                                          printable_name(parsed.get<std::string>())));
      }
    }
    return true;
  };
  // nlohmann's tokenizer takes a NUL byte for the end of input; in JSON text it is never valid.
  if (const auto nul = text.find('\0'); nul != std::string::npos)
    throw UserError(path, fmt::format("not valid JSON (error at byte {})", nul + 1));
  try {
    return Json::parse(text, on_event);
  } catch (const Json::parse_error& e) {
    throw UserError(path, fmt::format("not valid JSON (error at byte {})", e.byte));
  } catch (const Json::exception& e) {  // a number out of range (1e999), ...
    throw UserError(path, "not valid JSON: " + json_error_reason(e));
  }
}

}  // namespace

ShardedSafetensors::ShardedSafetensors(std::string dir) : dir_(std::move(dir)) {
  const fs::path single = fs::path(dir_) / kSafetensorsFile;
  const fs::path index = fs::path(dir_) / kSafetensorsIndexFile;
  if (present(single)) {
    files_.emplace_back(single.string());
    names_ = files_.front().names();
    for (const std::string& n : names_) owner_.emplace(n, 0);
  } else if (present(index)) {
    open_index(index.string());
  } else {
    throw UserError(dir_, fmt::format("no {} or {} in this directory", kSafetensorsFile,
                                      kSafetensorsIndexFile));
  }
}

void ShardedSafetensors::open_index(const std::string& index_path) {
  const Json root = parse_index(read_index(index_path), index_path);
  if (!root.is_object()) throw UserError(index_path, "not a JSON object");
  const auto wm = root.find("weight_map");
  if (wm == root.end()) throw UserError(index_path, "no weight_map");
  if (!wm->is_object()) throw UserError(index_path, "weight_map is not an object");
  if (wm->empty()) throw UserError(index_path, "weight_map is empty");

  std::vector<std::string> shards;                     // in order of first mention
  std::unordered_map<std::string, std::size_t> shard_of_name;
  std::vector<std::string> first_tensor;               // per shard, for messages
  for (const auto& [tensor, value] : wm->items()) {
    const std::string shown = printable_name(tensor);
    if (const std::string problem = tensor_name_problem(tensor); !problem.empty())
      throw UserError(index_path, fmt::format("weight_map entry '{}': {}", shown, problem));
    if (!value.is_string())
      throw UserError(index_path, fmt::format("weight_map entry '{}': file name is not a string", shown));
    const auto& file = value.get_ref<const std::string&>();
    if (!is_bare_file_name(file))
      throw UserError(index_path,
                      fmt::format("weight_map entry '{}': file name '{}' must be a bare file name "
                                  "in the model directory", shown, printable_name(file)));
    const auto [it, added] = shard_of_name.emplace(file, shards.size());
    if (added) {
      shards.push_back(file);
      first_tensor.push_back(tensor);
    }
    names_.push_back(tensor);
    owner_.emplace(tensor, it->second);
  }

  files_.reserve(shards.size());
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const fs::path p = fs::path(dir_) / shards[i];
    if (!present(p))
      throw UserError(index_path, fmt::format("weight_map entry '{}': file '{}' does not exist",
                                              printable_name(first_tensor[i]), printable_name(shards[i])));
    files_.emplace_back(p.string());
  }

  // The index and the shards must describe the same tensors, each in exactly one place.
  std::unordered_map<std::string, std::size_t> found;
  for (std::size_t i = 0; i < files_.size(); ++i) {
    for (const SafetensorsTensorInfo& t : files_[i].tensors()) {
      const std::string shown = printable_name(t.name);
      if (const auto prev = found.find(t.name); prev != found.end())
        throw UserError(files_[i].path(), fmt::format("tensor '{}': also in {}", shown,
                                                      printable_name(shards[prev->second])));
      found.emplace(t.name, i);
      const auto listed = owner_.find(t.name);
      if (listed == owner_.end())
        throw UserError(files_[i].path(),
                        fmt::format("tensor '{}': not listed in {}", shown, kSafetensorsIndexFile));
      if (listed->second != i)
        throw UserError(files_[i].path(),
                        fmt::format("tensor '{}': in this file, but {} lists it in {}", shown,
                                    kSafetensorsIndexFile, printable_name(shards[listed->second])));
    }
  }
  for (const std::string& name : names_)
    if (!found.contains(name))
      throw UserError(files_[owner_.at(name)].path(),
                      fmt::format("tensor '{}': listed in {} but not in this file",
                                  printable_name(name), kSafetensorsIndexFile));
}

const SafetensorsFile& ShardedSafetensors::file(const std::string& name) const {
  const auto it = owner_.find(name);
  if (it == owner_.end())
    throw UserError(dir_, fmt::format("tensor '{}': not in the model", printable_name(name)));
  return files_[it->second];
}

}  // namespace tailor::checkpoint
