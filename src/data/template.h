// Prompt templates: how a record (jsonl_dataset.h) becomes text, and which parts of it the model
// is trained on.
//
// A record renders to segments, each with a loss flag: prompt segments (system prompt, few-shot
// examples, the user's turn, role headers, the translation instruction) carry no loss unless
// train_on_prompt; response segments (the completion with its rationale before it, assistant
// turns with their end-of-turn token, the target sentence) do. Presets render conversations with
// each family's exact special tokens, spelled as text: a Hugging Face tokenizer recognises them
// as its added tokens; the byte tokenizer spells them out byte by byte.
//   plain    prompt + completion as they are; chats as "User: ...\nAssistant: ...\n"
//   llama3   <|begin_of_text|><|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>...
//            (content trimmed, as Meta's template does)
//   chatml   <|im_start|>ROLE\nCONTENT<|im_end|>\n...
//   mistral  <s>[INST] USER [/INST]ASSISTANT</s>[INST] ... (a system prompt opens the first user
//            turn, followed by a blank line)
//   qwen3    chatml, with the empty thinking block <think>\n\n</think>\n\n opening the last
//            assistant turn (leading newlines of its content dropped), as Qwen3's template writes
//            it with thinking off
//   phi3     <|system|>\nCONTENT<|end|>\n<|user|>\n...<|assistant|>\n...<|end|>\n, then
//            <|endoftext|> after the last turn
//   gemma    <bos><start_of_turn>user\nSYSTEM\n\nUSER<end_of_turn>\n<start_of_turn>model\n...
//            (user and assistant contents trimmed, the system prompt as it is; Gemma 2 and 3)
// All seven are ChatFormat values (builtin_chat_format) rendered by one renderer; a template file
// (data.template.preset: PATH, parsed by the config module) gives a ChatFormat of its own.
// Tokenization (tokenize_record) encodes the joined text in one piece, so the tokens are the
// tokenizer's own for the rendered text, and maps the segments' loss flags onto them (a token
// that straddles a boundary goes with the later segment). It adds the tokenizer's BOS for plain
// (the other presets write their own) and the tokenizer's EOS after the response unless the
// trained tokens already end with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/jsonl_dataset.h"
#include "data/tokenizer.h"

namespace tailor::data {

enum class ChatPreset { kPlain, kLlama3, kChatml, kMistral, kQwen3, kPhi3, kGemma };

// Every preset, in the order the docs list them.
inline constexpr ChatPreset kChatPresets[] = {ChatPreset::kPlain, ChatPreset::kLlama3,
                                              ChatPreset::kChatml, ChatPreset::kMistral,
                                              ChatPreset::kQwen3, ChatPreset::kPhi3,
                                              ChatPreset::kGemma};

// "plain" | "llama3" | "chatml" | "mistral" | "qwen3" | "phi3" | "gemma"; nullopt for anything
// else.
[[nodiscard]] std::optional<ChatPreset> parse_chat_preset(std::string_view name);
[[nodiscard]] std::string_view chat_preset_name(ChatPreset preset);
// The special tokens a preset writes, for checking that a tokenizer knows them.
[[nodiscard]] std::vector<std::string> chat_preset_special_tokens(ChatPreset preset);

// How one role's turn is written: prefix + content + suffix + separator. The prefix and the
// separator are never trained; an assistant turn's content and suffix (its end-of-turn token)
// are.
struct ChatRole {
  std::string prefix;
  std::string suffix;
  std::string separator;
  bool trim = false;  // strip whitespace around the content (llama3: every role; gemma: not system)
  bool operator==(const ChatRole&) const = default;
};

// Where the system prompt goes: a turn of its own, or inside the first user turn that follows it
// (after the user prefix, as system prefix + content + suffix + separator; mistral).
enum class SystemPlacement { kTurn, kFirstUser };

// A chat template: everything a family's chat template writes around the messages.
struct ChatFormat {
  std::string name;
  std::string bos;                  // written once before the first turn ("" = none)
  bool tokenizer_bos = false;       // open with the tokenizer's BOS id instead (plain)
  SystemPlacement system_placement = SystemPlacement::kTurn;
  ChatRole system, user, assistant;
  // The last assistant turn (the one a generation prompt opens) is written with these instead of
  // the assistant's prefix and suffix.
  std::string assistant_final_prefix;  // qwen3: the prefix + an empty <think></think> block
  std::string assistant_final_lstrip;  // dropped from the start of its content (qwen3: "\n")
  std::string assistant_final_suffix;  // plain: "", the tokenizer's EOS ends it
  // Written once after the last message, and trained (phi3: <|endoftext|>); never part of a
  // generation prompt, which ends where the response begins.
  std::string end;
  // Prompt/completion and translation records as text (system prompt and a blank line, few-shot
  // examples each followed by a blank line, then prompt + completion as they are: plain) instead
  // of a user turn and an assistant turn.
  bool records_as_text = false;
  std::vector<std::string> special_tokens;  // for checking that a tokenizer knows them
  bool operator==(const ChatFormat&) const = default;
};

// The format of a built-in preset.
[[nodiscard]] const ChatFormat& builtin_chat_format(ChatPreset preset);

inline constexpr std::string_view kDefaultTranslationTemplate =
    "Translate from {src_lang_name} to {tgt_lang_name}:\n{src}\n";

struct FewShotExample {
  std::string prompt;
  std::string completion;
};

struct TemplateSpec {
  ChatPreset preset = ChatPreset::kPlain;
  std::optional<ChatFormat> format;         // a template file's format: replaces `preset` when set
  std::string system;                       // empty: none
  std::vector<FewShotExample> few_shot;     // shown before every prompt, in this order
  std::string translation{kDefaultTranslationTemplate};
  bool train_on_prompt = false;

  // The format records are rendered with: `format`, else the preset's.
  [[nodiscard]] const ChatFormat& chat_format() const {
    return format ? *format : builtin_chat_format(preset);
  }
};

struct Segment {
  std::string text;
  bool loss = false;
};

// Placeholders a translation template may use.
inline constexpr std::string_view kTranslationPlaceholders[] = {
    "src", "src_lang", "tgt_lang", "src_lang_name", "tgt_lang_name"};

// The reason a translation template is unusable ("" when fine): an unknown or unclosed
// placeholder, or no {src}.
[[nodiscard]] std::string translation_template_problem(std::string_view tmpl);
[[nodiscard]] std::string render_translation_prompt(std::string_view tmpl, const Record& r);

// One side of a preference pair as the record it renders like: the prompt (a string: a
// prompt/completion record; messages: a conversation) answered by `answer` (its chosen or
// rejected answer), so that templates and presets apply to the prompt as to any record.
[[nodiscard]] Record preference_answer(const Record& pair, const std::string& answer);

// Segments of one record. Text records are one response segment whatever the preset; a
// preference pair renders its chosen side (preference_answer).
[[nodiscard]] std::vector<Segment> render_record(const Record& record, const TemplateSpec& spec);
// The segments joined: what the model reads.
[[nodiscard]] std::string join_segments(const std::vector<Segment>& segments);

// Tokens and loss flags of one record (BOS / EOS rules above), appended to `tokens` / `loss`.
void tokenize_record(const std::vector<Segment>& segments, const ChatFormat& format,
                     const Tokenizer& tokenizer, std::vector<std::int32_t>& tokens,
                     std::vector<std::uint8_t>& loss);
void tokenize_record(const std::vector<Segment>& segments, ChatPreset preset,
                     const Tokenizer& tokenizer, std::vector<std::int32_t>& tokens,
                     std::vector<std::uint8_t>& loss);

// `count` of `pool` chosen by `seed` alone (a seeded shuffle, then the first `count`, kept in
// pool order); all of them when count >= pool.size().
[[nodiscard]] std::vector<FewShotExample> choose_few_shot(const std::vector<FewShotExample>& pool,
                                                          std::int64_t count, std::uint64_t seed);
// The same choice as positions in a pool of `pool_size`, ascending.
[[nodiscard]] std::vector<std::size_t> choose_few_shot_indices(std::size_t pool_size,
                                                               std::int64_t count,
                                                               std::uint64_t seed);

}  // namespace tailor::data
