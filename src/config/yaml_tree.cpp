// Builds a YamlNode tree from yaml-cpp's event parser; the only file that includes yaml-cpp.
#include "config/yaml_tree.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <map>
#include <sstream>
#include <utility>

namespace tailor::config {

const YamlEntry* YamlNode::find(std::string_view key) const {
  for (const auto& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

YamlEntry* YamlNode::find(std::string_view key) {
  for (auto& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

namespace {

// A scalar is "plain" (may be read as a number, bool or null) when it was neither quoted nor given
// a tag other than a core-schema one. yaml-cpp reports "?" for plain and "!" for quoted scalars.
bool is_plain_tag(const std::string& tag) {
  return tag == "?" || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
         tag == "tag:yaml.org,2002:bool";
}

class TreeBuilder final : public YAML::EventHandler {
 public:
  explicit TreeBuilder(const std::string& source) : source_(source) {}

  [[nodiscard]] Location at(const YAML::Mark& mark) const {
    if (mark.is_null()) return Location::whole_file(source_);
    return Location::in_file(source_, mark.line + 1, mark.column + 1);
  }

  void fail(const Location& where, std::string reason) {
    if (failed_) return;  // the first problem is the one to fix
    failed_ = true;
    error_where_ = where;
    error_reason_ = std::move(reason);
  }

  [[nodiscard]] bool failed() const noexcept { return failed_; }
  [[nodiscard]] const Location& error_where() const noexcept { return error_where_; }
  [[nodiscard]] const std::string& error_reason() const noexcept { return error_reason_; }
  std::optional<YamlNode>& root() noexcept { return root_; }

  void OnDocumentStart(const YAML::Mark& /*mark*/) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    YamlNode node;
    node.loc = at(mark);
    finish(std::move(node), anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      // An alias inside the node it names (a recursive structure): no config needs one.
      fail(at(mark), "YAML alias refers to a node that is not complete");
      YamlNode node;
      node.loc = at(mark);
      finish(std::move(node), 0);
      return;
    }
    finish(it->second, 0);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    YamlNode node;
    node.kind = YamlNode::Kind::kScalar;
    node.loc = at(mark);
    node.scalar = value;
    node.plain = is_plain_tag(tag);
    finish(std::move(node), anchor);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value /*style*/) override {
    open(YamlNode::Kind::kSequence, mark, anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    open(YamlNode::Kind::kMap, mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    YamlNode node;
    YAML::anchor_t anchor = 0;
    bool has_key = false;  // kMap: a key was read and waits for its value
    std::string key;
    Location key_loc;
  };

  void open(YamlNode::Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    Frame frame;
    frame.node.kind = kind;
    frame.node.loc = at(mark);
    frame.anchor = anchor;
    stack_.push_back(std::move(frame));
  }

  void close() {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    finish(std::move(frame.node), frame.anchor);
  }

  // Attaches a complete node to its parent (or makes it the root).
  void finish(YamlNode node, YAML::anchor_t anchor) {
    if (anchor != 0) anchors_[anchor] = node;
    if (stack_.empty()) {
      root_ = std::move(node);
      return;
    }
    Frame& top = stack_.back();
    if (top.node.kind == YamlNode::Kind::kSequence) {
      top.node.items.push_back(std::move(node));
      return;
    }
    if (!top.has_key) {
      if (node.kind != YamlNode::Kind::kScalar) {
        fail(node.loc, "YAML mapping keys must be scalars");
      }
      top.has_key = true;
      top.key = std::move(node.scalar);
      top.key_loc = node.loc;
      return;
    }
    // yaml-cpp marks an empty value (`key:` and nothing) at the token after it; its key is the
    // place a reader looks at.
    if (node.kind == YamlNode::Kind::kNull) node.loc = top.key_loc;
    top.node.entries.push_back({std::move(top.key), top.key_loc, std::move(node)});
    top.has_key = false;
  }

  std::string source_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, YamlNode> anchors_;
  std::optional<YamlNode> root_;
  bool failed_ = false;
  Location error_where_;
  std::string error_reason_;
};

}  // namespace

YamlParse parse_yaml(const std::string& text, const std::string& source) {
  YamlParse result;
  std::istringstream in(text);
  TreeBuilder builder(source);
  try {
    YAML::Parser parser(in);
    if (parser.HandleNextDocument(builder)) {
      result.root = std::move(builder.root());
      TreeBuilder second(source);
      if (!builder.failed() && parser.HandleNextDocument(second)) {
        const Location where = second.root() ? second.root()->loc : Location::whole_file(source);
        builder.fail(where, "a config is one YAML document; found a second one");
      }
    }
  } catch (const YAML::Exception& e) {
    result.failed = true;
    result.root.reset();
    result.error_where = builder.at(e.mark);
    result.error_reason = fmt::format("YAML syntax error: {}", e.msg);
    return result;
  }
  if (builder.failed()) {
    result.failed = true;
    result.root.reset();
    result.error_where = builder.error_where();
    result.error_reason = builder.error_reason();
  }
  return result;
}

void relocate(YamlNode& node, const Location& loc) {
  node.loc = loc;
  for (auto& item : node.items) relocate(item, loc);
  for (auto& e : node.entries) {
    e.key_loc = loc;
    relocate(e.value, loc);
  }
}

void check_duplicate_keys(const YamlNode& node, const std::string& path, Problems& problems) {
  if (node.kind == YamlNode::Kind::kSequence) {
    for (std::size_t i = 0; i < node.items.size(); ++i) {
      check_duplicate_keys(node.items[i], fmt::format("{}[{}]", path, i), problems);
    }
    return;
  }
  for (std::size_t i = 0; i < node.entries.size(); ++i) {
    const YamlEntry& e = node.entries[i];
    const std::string key_path = path.empty() ? e.key : path + "." + e.key;
    for (std::size_t j = 0; j < i; ++j) {
      const YamlEntry& first = node.entries[j];
      if (first.key != e.key) continue;
      if (first.key_loc.line > 0) {
        problems.add(e.key_loc, key_path,
                     fmt::format("duplicate key (first defined at line {})", first.key_loc.line));
      } else {
        problems.add(e.key_loc, key_path, "duplicate key");
      }
      break;
    }
    check_duplicate_keys(e.value, key_path, problems);
  }
}

}  // namespace tailor::config
