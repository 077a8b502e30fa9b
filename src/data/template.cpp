// Template rendering: records → (text, loss) segments → tokens + loss flags.
#include "data/template.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "core/error.h"
#include "core/rng.h"
#include "data/flores.h"

namespace tailor::data {
namespace {

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const auto b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

// The response of a prompt/completion record: the rationale (chain of thought) before the answer.
std::string response_text(const Record& r) {
  if (r.rationale.empty()) return r.completion;
  return r.rationale + "\n" + r.completion;
}

// Any non-text record as a conversation: system prompt, few-shot turns, the record's turns.
std::vector<Message> as_messages(const Record& r, const TemplateSpec& spec) {
  std::vector<Message> m;
  const bool own_system = r.kind == RecordKind::kChat && !r.messages.empty() &&
                          r.messages.front().role == "system";
  if (!spec.system.empty() && !own_system) m.push_back({"system", spec.system});
  for (const auto& ex : spec.few_shot) {
    m.push_back({"user", ex.prompt});
    m.push_back({"assistant", ex.completion});
  }
  switch (r.kind) {
    case RecordKind::kChat:
      m.insert(m.end(), r.messages.begin(), r.messages.end());
      break;
    case RecordKind::kPromptCompletion:
      m.push_back({"user", r.prompt});
      m.push_back({"assistant", response_text(r)});
      break;
    case RecordKind::kTranslation:
      m.push_back({"user", render_translation_prompt(spec.translation, r)});
      m.push_back({"assistant", r.tgt});
      break;
    case RecordKind::kText:
    case RecordKind::kPreference:  // (rendered as preference_answer)
      TAILOR_ASSERT(false, "text records and pairs have no conversation of their own");
  }
  return m;
}

class Segments {
 public:
  void add(std::string_view text, bool loss) {
    if (text.empty()) return;
    if (!out_.empty() && out_.back().loss == loss) {
      out_.back().text += text;
    } else {
      out_.push_back({std::string(text), loss});
    }
  }
  std::vector<Segment> take() { return std::move(out_); }

 private:
  std::vector<Segment> out_;
};

// The index of the last assistant message (the one closed by EOS).
std::size_t last_assistant(const std::vector<Message>& m) {
  for (std::size_t i = m.size(); i-- > 0;)
    if (m[i].role == "assistant") return i;
  return m.size();
}

// A prompt/completion or translation record as text (ChatFormat::records_as_text: plain).
void render_as_text(const Record& r, const TemplateSpec& spec, Segments& s) {
  if (!spec.system.empty()) s.add(spec.system + "\n\n", false);
  for (const auto& ex : spec.few_shot) s.add(ex.prompt + ex.completion + "\n\n", false);
  if (r.kind == RecordKind::kPromptCompletion) {
    s.add(r.prompt, false);
    s.add(response_text(r), true);
  } else {
    s.add(render_translation_prompt(spec.translation, r), false);
    s.add(r.tgt, true);
  }
}

// The one chat renderer: every preset, built in or from a file, is a ChatFormat.
void render_chat(const ChatFormat& f, const std::vector<Message>& m, Segments& s) {
  s.add(f.bos, false);
  const std::size_t last = last_assistant(m);
  std::string pending_system;  // SystemPlacement::kFirstUser: waits for the next user turn
  for (std::size_t i = 0; i < m.size(); ++i) {
    const bool system = m[i].role == "system", user = m[i].role == "user";
    const ChatRole& r = system ? f.system : user ? f.user : f.assistant;
    std::string_view content = r.trim ? trim(m[i].content) : std::string_view(m[i].content);
    if (system) {
      const std::string turn = r.prefix + std::string(content) + r.suffix + r.separator;
      if (f.system_placement == SystemPlacement::kFirstUser) {
        pending_system += turn;
      } else {
        s.add(turn, false);
      }
    } else if (user) {
      s.add(r.prefix + pending_system + std::string(content) + r.suffix + r.separator, false);
      pending_system.clear();
    } else if (i == last) {
      const auto from = content.find_first_not_of(f.assistant_final_lstrip);
      content = from == std::string_view::npos ? std::string_view() : content.substr(from);
      s.add(f.assistant_final_prefix, false);
      s.add(std::string(content) + f.assistant_final_suffix, true);
      s.add(r.separator, false);
    } else {
      s.add(r.prefix, false);
      s.add(std::string(content) + r.suffix, true);
      s.add(r.separator, false);
    }
  }
  s.add(f.end, true);
}

ChatFormat make_plain() {
  ChatFormat f;
  f.name = "plain";
  f.tokenizer_bos = true;
  f.system = {"", "\n\n", ""};
  f.user = {"User: ", "\n", ""};
  f.assistant = {"Assistant: ", "\n", ""};
  f.assistant_final_prefix = f.assistant.prefix;
  f.assistant_final_suffix = "";  // the tokenizer's EOS ends the record
  f.records_as_text = true;
  return f;
}

ChatFormat make_llama3() {
  ChatFormat f;
  f.name = "llama3";
  f.bos = "<|begin_of_text|>";
  for (auto [role, name] : {std::pair{&f.system, "system"}, std::pair{&f.user, "user"},
                            std::pair{&f.assistant, "assistant"}})
    *role = {fmt::format("<|start_header_id|>{}<|end_header_id|>\n\n", name), "<|eot_id|>", "",
             /*trim=*/true};
  f.assistant_final_prefix = f.assistant.prefix;
  f.assistant_final_suffix = "<|eot_id|>";
  f.special_tokens = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                      "<|eot_id|>"};
  return f;
}

ChatFormat make_chatml() {
  ChatFormat f;
  f.name = "chatml";
  for (auto [role, name] : {std::pair{&f.system, "system"}, std::pair{&f.user, "user"},
                            std::pair{&f.assistant, "assistant"}})
    *role = {fmt::format("<|im_start|>{}\n", name), "<|im_end|>", "\n"};
  f.assistant_final_prefix = f.assistant.prefix;
  f.assistant_final_suffix = "<|im_end|>";
  f.special_tokens = {"<|im_start|>", "<|im_end|>"};
  return f;
}

ChatFormat make_mistral() {
  ChatFormat f;
  f.name = "mistral";
  f.bos = "<s>";
  f.system_placement = SystemPlacement::kFirstUser;  // no system role: it opens the user turn
  f.system = {"", "\n\n", ""};
  f.user = {"[INST] ", " [/INST]", ""};
  f.assistant = {"", "</s>", ""};
  f.assistant_final_suffix = "</s>";
  f.special_tokens = {"<s>", "</s>"};
  return f;
}

// Qwen3's template with thinking off: chatml, but the reply that ends the conversation opens with
// an empty thinking block, and leading newlines of that reply are dropped (earlier replies are
// written as they are).
ChatFormat make_qwen3() {
  ChatFormat f = make_chatml();
  f.name = "qwen3";
  f.assistant_final_prefix = f.assistant.prefix + "<think>\n\n</think>\n\n";
  f.assistant_final_lstrip = "\n";
  f.special_tokens = {"<|im_start|>", "<|im_end|>", "<think>", "</think>"};
  return f;
}

// Phi-3 (mini/small/medium instruct, Phi-3.5 mini): a header line per role, <|end|> closing each
// turn, and the EOS after the last one.
ChatFormat make_phi3() {
  ChatFormat f;
  f.name = "phi3";
  for (auto [role, name] : {std::pair{&f.system, "system"}, std::pair{&f.user, "user"},
                            std::pair{&f.assistant, "assistant"}})
    *role = {fmt::format("<|{}|>\n", name), "<|end|>", "\n"};
  f.assistant_final_prefix = f.assistant.prefix;
  f.assistant_final_suffix = "<|end|>";
  f.end = "<|endoftext|>";
  f.special_tokens = {"<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>"};
  return f;
}

// Gemma 2 and 3: turns of `user` and `model`, contents trimmed; no system role, so the system
// prompt (not trimmed) and a blank line open the first user turn, as Gemma 3's template does.
ChatFormat make_gemma() {
  ChatFormat f;
  f.name = "gemma";
  f.bos = "<bos>";
  f.system_placement = SystemPlacement::kFirstUser;
  f.system = {"", "\n\n", ""};
  f.user = {"<start_of_turn>user\n", "<end_of_turn>", "\n", /*trim=*/true};
  f.assistant = {"<start_of_turn>model\n", "<end_of_turn>", "\n", /*trim=*/true};
  f.assistant_final_prefix = f.assistant.prefix;
  f.assistant_final_suffix = "<end_of_turn>";
  f.special_tokens = {"<bos>", "<start_of_turn>", "<end_of_turn>"};
  return f;
}

}  // namespace

std::optional<ChatPreset> parse_chat_preset(std::string_view name) {
  if (name == "plain") return ChatPreset::kPlain;
  if (name == "llama3") return ChatPreset::kLlama3;
  if (name == "chatml") return ChatPreset::kChatml;
  if (name == "mistral") return ChatPreset::kMistral;
  if (name == "qwen3") return ChatPreset::kQwen3;
  if (name == "phi3") return ChatPreset::kPhi3;
  if (name == "gemma") return ChatPreset::kGemma;
  return std::nullopt;
}

std::string_view chat_preset_name(ChatPreset preset) {
  switch (preset) {
    case ChatPreset::kLlama3: return "llama3";
    case ChatPreset::kChatml: return "chatml";
    case ChatPreset::kMistral: return "mistral";
    case ChatPreset::kQwen3: return "qwen3";
    case ChatPreset::kPhi3: return "phi3";
    case ChatPreset::kGemma: return "gemma";
    case ChatPreset::kPlain: break;
  }
  return "plain";
}

std::vector<std::string> chat_preset_special_tokens(ChatPreset preset) {
  return builtin_chat_format(preset).special_tokens;
}

const ChatFormat& builtin_chat_format(ChatPreset preset) {
  static const ChatFormat plain = make_plain(), llama3 = make_llama3(), chatml = make_chatml(),
                          mistral = make_mistral(), qwen3 = make_qwen3(), phi3 = make_phi3(),
                          gemma = make_gemma();
  switch (preset) {
    case ChatPreset::kLlama3: return llama3;
    case ChatPreset::kChatml: return chatml;
    case ChatPreset::kMistral: return mistral;
    case ChatPreset::kQwen3: return qwen3;
    case ChatPreset::kPhi3: return phi3;
    case ChatPreset::kGemma: return gemma;
    case ChatPreset::kPlain: break;
  }
  return plain;
}

std::string translation_template_problem(std::string_view tmpl) {
  bool has_src = false;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '{') continue;
    const auto close = tmpl.find('}', i);
    if (close == std::string_view::npos)
      return fmt::format("unclosed placeholder at offset {}", i);
    const std::string_view name = tmpl.substr(i + 1, close - i - 1);
    if (std::find(std::begin(kTranslationPlaceholders), std::end(kTranslationPlaceholders),
                  name) == std::end(kTranslationPlaceholders))
      return fmt::format("unknown placeholder {{{}}} (known: {{src}}, {{src_lang}}, {{tgt_lang}}, "
                         "{{src_lang_name}}, {{tgt_lang_name}})",
                         name);
    has_src = has_src || name == "src";
    i = close;
  }
  if (!has_src) return "no {src} placeholder (the sentence to translate)";
  return "";
}

std::string render_translation_prompt(std::string_view tmpl, const Record& r) {
  std::string out;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    const auto close = tmpl[i] == '{' ? tmpl.find('}', i) : std::string_view::npos;
    if (close == std::string_view::npos) {
      out += tmpl[i];
      continue;
    }
    const std::string_view name = tmpl.substr(i + 1, close - i - 1);
    if (name == "src") out += r.src;
    else if (name == "src_lang") out += r.src_lang;
    else if (name == "tgt_lang") out += r.tgt_lang;
    else if (name == "src_lang_name") out += flores_language_name(r.src_lang).value_or(r.src_lang);
    else if (name == "tgt_lang_name") out += flores_language_name(r.tgt_lang).value_or(r.tgt_lang);
    else out += tmpl.substr(i, close - i + 1);  // unknown: left as written (validated earlier)
    i = close;
  }
  return out;
}

Record preference_answer(const Record& pair, const std::string& answer) {
  TAILOR_ASSERT(pair.kind == RecordKind::kPreference, "not a preference pair");
  Record r;
  r.line = pair.line;
  if (pair.messages.empty()) {
    r.kind = RecordKind::kPromptCompletion;
    r.prompt = pair.prompt;
    r.completion = answer;
  } else {
    r.kind = RecordKind::kChat;
    r.messages = pair.messages;
    r.messages.push_back({"assistant", answer});
  }
  return r;
}

std::vector<Segment> render_record(const Record& record, const TemplateSpec& spec) {
  if (record.kind == RecordKind::kPreference)
    return render_record(preference_answer(record, record.chosen), spec);
  Segments s;
  const ChatFormat& format = spec.chat_format();
  if (record.kind == RecordKind::kText) {
    s.add(record.text, true);
  } else if (format.records_as_text && record.kind != RecordKind::kChat) {
    render_as_text(record, spec, s);
  } else {
    render_chat(format, as_messages(record, spec), s);
  }
  std::vector<Segment> out = s.take();
  if (spec.train_on_prompt && out.size() > 1) return {{join_segments(out), true}};
  if (spec.train_on_prompt && out.size() == 1) out.front().loss = true;
  return out;
}

std::string join_segments(const std::vector<Segment>& segments) {
  std::string out;
  for (const auto& s : segments) out += s.text;
  return out;
}

void tokenize_record(const std::vector<Segment>& segments, ChatPreset preset,
                     const Tokenizer& tokenizer, std::vector<std::int32_t>& tokens,
                     std::vector<std::uint8_t>& loss) {
  tokenize_record(segments, builtin_chat_format(preset), tokenizer, tokens, loss);
}

void tokenize_record(const std::vector<Segment>& segments, const ChatFormat& format,
                     const Tokenizer& tokenizer, std::vector<std::int32_t>& tokens,
                     std::vector<std::uint8_t>& loss) {
  const std::optional<std::int32_t> eos = tokenizer.eos_token_id();
  TAILOR_ASSERT(eos.has_value(), "the tokenizer has no EOS (checked by the caller)");
  if (format.tokenizer_bos) {
    if (const auto bos = tokenizer.bos_token_id()) {
      tokens.push_back(*bos);
      loss.push_back(0);
    }
  }
  // The whole text is tokenized at once, so the tokens are exactly the tokenizer's own for the
  // rendered text (no extra SentencePiece prefix space or broken merge at a segment boundary).
  // A segment ends after the tokens that encoding the text up to its end has in common with the
  // whole: a token that straddles a boundary belongs to the segment after it.
  std::string text;
  std::vector<std::size_t> ends;
  for (const auto& seg : segments) {
    text += seg.text;
    ends.push_back(text.size());
  }
  const std::vector<std::int32_t> ids = tokenizer.encode(text);
  std::optional<std::int32_t> last_trained;
  std::size_t from = 0;
  for (std::size_t k = 0; k < segments.size(); ++k) {
    std::size_t to = ids.size();
    if (k + 1 < segments.size()) {
      const std::vector<std::int32_t> prefix = tokenizer.encode(std::string_view(text).substr(0, ends[k]));
      const auto diff = std::mismatch(prefix.begin(), prefix.end(), ids.begin(), ids.end());
      to = std::max(from, static_cast<std::size_t>(diff.second - ids.begin()));
    }
    for (std::size_t i = from; i < to; ++i) {
      tokens.push_back(ids[i]);
      loss.push_back(segments[k].loss ? 1 : 0);
      if (segments[k].loss) last_trained = ids[i];
    }
    from = to;
  }
  if (last_trained != eos) {
    tokens.push_back(*eos);
    loss.push_back(1);  // the model learns to stop
  }
}

std::vector<std::size_t> choose_few_shot_indices(std::size_t pool_size, std::int64_t count,
                                                 std::uint64_t seed) {
  const auto n = static_cast<std::int64_t>(pool_size);
  std::vector<std::size_t> idx(pool_size);
  std::iota(idx.begin(), idx.end(), 0);
  if (count >= n) return idx;
  const CounterRng rng(seed, stream_id("data.few_shot"));
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(
        rng.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(i + 1)));
    std::swap(idx[static_cast<std::size_t>(i)], idx[static_cast<std::size_t>(j)]);
  }
  idx.resize(static_cast<std::size_t>(count));
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<FewShotExample> choose_few_shot(const std::vector<FewShotExample>& pool,
                                            std::int64_t count, std::uint64_t seed) {
  std::vector<FewShotExample> out;
  for (const std::size_t i : choose_few_shot_indices(pool.size(), count, seed))
    out.push_back(pool[i]);
  return out;
}

}  // namespace tailor::data
