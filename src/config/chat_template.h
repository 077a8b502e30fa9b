// Chat templates given as data (data.template.preset: a file path or an inline mapping), read into
// ChatTemplateConfig. The schema, in a file's terms (configs/templates/*.yaml are examples):
//     name: llama3                 bos: "<|begin_of_text|>"      tokenizer_bos: false
//     trim: true                   prompt_completion: chat       special_tokens: [...]
//     system:    {placement: turn | first_user, prefix, suffix, separator, trim}
//     user:      {prefix, suffix, separator, trim}
//     assistant: {prefix, suffix, separator, trim, final_prefix, final_lstrip, final_suffix}
//     end: "<|endoftext|>"
// (top-level `trim` is the default of each role's `trim`; final_prefix and final_suffix default to
// the assistant's prefix and suffix).
// Every key is optional (strings default to ""; `key:` with no value is "" too). Problems are
// "where: key.path: reason" with key paths relative to the file (or below data.template.preset).
#pragma once

#include <string>

#include "config/config.h"
#include "config/problems.h"
#include "config/yaml_tree.h"

namespace tailor::config {

// Reads the mapping `node` (a file's root, or the inline value) whose key path is `path` ("" for
// a file's root) into `out`; every problem goes to `problems`.
void read_chat_template(const YamlNode& node, const std::string& path, Problems& problems,
                        ChatTemplateConfig& out);

// Reads and parses a template file; `name` defaults to the file's stem. False, with `error` set,
// when the file cannot be read; parse and schema problems go to `problems`.
bool read_chat_template_file(const std::string& file, Problems& problems, ChatTemplateConfig& out,
                             std::string& error);

}  // namespace tailor::config
