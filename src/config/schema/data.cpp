// The data section: training (and validation) data and how it becomes token sequences.
// data.train (a path or a list of sources) is read and written here by hand; data.template in
// prompt_templates.cpp.
#include <filesystem>

#include "config/scalars.h"
#include "config/schema.h"
#include "config/schema/prompt_templates.h"

namespace tailor::config {
namespace {

// data.train: a path, or a list of sources (a path, or {path, weight}).
void read_train(ReadContext& c, DataConfig& d) {
  SchemaReader& r = c.reader;
  const YamlNode* node = r.read_node("train");
  if (node == nullptr) {
    r.problem("data.train", "required key is missing");
    r.mark_bad("data.train");
    return;
  }
  const auto bad = [&](const Location& loc, const std::string& path, const std::string& reason) {
    r.problem_at(loc, path, reason);
    r.mark_bad("data.train");
  };
  if (node->kind == YamlNode::Kind::kScalar) {
    if (node->scalar.empty()) return bad(node->loc, "data.train", "must not be empty");
    d.train = node->scalar;
    d.sources = {{d.train, 1.0}};
    return;
  }
  if (node->kind != YamlNode::Kind::kSequence || node->items.empty()) {
    return bad(node->loc, "data.train",
               fmt::format("expected a file path or a non-empty list of {{path, weight}}, got {}",
                           describe(*node)));
  }
  d.train_is_list = true;
  d.sources.clear();
  for (std::size_t i = 0; i < node->items.size(); ++i) {
    const YamlNode& item = node->items[i];
    const std::string path = fmt::format("data.train[{}]", i);
    DataSourceConfig src;
    if (item.kind == YamlNode::Kind::kScalar) {
      src.path = item.scalar;
    } else if (item.kind == YamlNode::Kind::kMap) {
      for (const YamlEntry& e : item.entries) {
        if (e.key == "path") {
          if (e.value.kind != YamlNode::Kind::kScalar)
            bad(e.value.loc, path + ".path",
                fmt::format("expected a string, got {}", describe(e.value)));
          else
            src.path = e.value.scalar;
        } else if (e.key == "weight") {
          if (!r.convert_float(e.value, path + ".weight", src.weight, kPositive))
            r.mark_bad("data.train");
        } else {
          const auto hint = closest_key(e.key, {"path", "weight"});
          bad(e.key_loc, path + "." + e.key,
              hint ? fmt::format("unknown key (did you mean \"{}\"?)", *hint) : "unknown key");
        }
      }
      if (item.find("path") == nullptr) bad(item.loc, path + ".path", "required key is missing");
    } else {
      bad(item.loc, path,
          fmt::format("expected a file path or {{path, weight}}, got {}", describe(item)));
      continue;
    }
    if (item.kind == YamlNode::Kind::kScalar && src.path.empty())
      bad(item.loc, path, "must not be empty");
    d.sources.push_back(src);
  }
  if (!d.sources.empty()) d.train = d.sources.front().path;
}

void write_train(YamlWriter& w, const DataConfig& d) {
  if (!d.train_is_list) return w.line("train", yaml_string(d.train));
  w.line("train", "");
  for (const DataSourceConfig& src : d.sources)
    w.raw(fmt::format("    - {{path: {}, weight: {}}}\n", yaml_string(src.path),
                      yaml_float(src.weight)));
}

void check_cache_dir(SchemaReader& r, const std::string& path, const DataConfig& d) {
  if (!d.cache_dir.empty()) return;
  r.problem(path, "must not be empty");
  r.mark_bad(path);
}

void check_valid(SchemaReader& r, const std::string& path, const DataConfig& d) {
  std::error_code ec;
  if (!d.valid.empty() && !std::filesystem::is_regular_file(d.valid, ec))
    r.problem(path, fmt::format("file not found: {}", d.valid));
}

void check_valid_fraction(SchemaReader& r, const std::string& path, const DataConfig& d) {
  if (d.valid_fraction > 0.0 && !d.valid.empty())
    r.problem(path, "give data.valid (a file) or data.valid_fraction, not both");
}

// Text files have no template; JSONL records are not split.
bool is_text(const DataConfig& d) { return d.format == DataFormat::kText; }
bool is_jsonl(const DataConfig& d) { return d.format == DataFormat::kJsonl; }
bool has_valid(const DataConfig& d) { return !d.valid.empty(); }
bool has_prompt_limit(const DataConfig& d) { return d.max_prompt_tokens > 0; }

}  // namespace

const Section<DataConfig>& data_section() {
  using S = DataConfig;
  using F = Field<S>;
  static const Section<S> section{
      "data",
      &ExperimentConfig::data,
      {
          {"train", custom("string or list", Presence::kRequired, read_train, write_train),
           Resume::kFixed, "the training data: a path, or a list of {path, weight} sources"},
          {"format", choice(&S::format), Resume::kFixed,
           "plain text, or JSONL records (kind detected per line)"},
          {"tokenizer", choice(&S::tokenizer), Resume::kFixed,
           "bytes (256 + EOS), or the tokenizer files of model.path (the default with it)"},
          {"seq_len", integer(&S::seq_len, {2, std::nullopt}, Presence::kRequired), Resume::kFixed,
           "tokens per packed sequence"},
          F{"split", choice(&S::split), Resume::kFixed,
            "how a text file splits into documents (text only)"}
              .written_if(is_text),
          F{"template",
            custom("mapping", Presence::kOptional, read_data_template, write_data_template),
            Resume::kFixed, "how JSONL records become text (jsonl only)"}
              .written_if(is_jsonl),
          F{"train_on_prompt", boolean(&S::train_on_prompt), Resume::kFixed,
            "loss on prompt tokens too (default: responses only; jsonl only)"}
              .written_if(is_jsonl),
          F{"skip_invalid", boolean(&S::skip_invalid), Resume::kFixed,
            "skip bad lines (counted per reason) instead of failing (jsonl only)"}
              .written_if(is_jsonl),
          // The cache holds the same tokens wherever it is.
          F{"cache_dir", text(&S::cache_dir), Resume::kMayChange,
            "where tokenized caches are written (relative to the working directory)"}
              .checked_by(check_cache_dir),
          {"overlong", choice(&S::overlong), Resume::kFixed,
           "documents longer than seq_len: split, truncated or dropped"},
          {"packing", choice(&S::packing), Resume::kFixed,
           "documents concatenated, or one per sequence (padded)"},
          F{"max_prompt_tokens", integer(&S::max_prompt_tokens, kAtLeast0), Resume::kFixed,
            "preference pairs: the prompt's tokens kept when a pair exceeds seq_len (0: half)"}
              .written_if(has_prompt_limit),
          F{"valid", text(&S::valid), Resume::kFixed,
            "a validation file (same format and template)"}
              .checked_by(check_valid)
              .written_if(has_valid),
          F{"valid_fraction", real(&S::valid_fraction, {0.0, false, 0.5, false}), Resume::kFixed,
            "or this fraction of the training documents, held out (chosen by train.seed)"}
              .checked_by(check_valid_fraction),
      }};
  return section;
}

}  // namespace tailor::config
