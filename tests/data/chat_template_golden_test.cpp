// Tailor's chat presets against transformers' apply_chat_template: the conversations of
// tests/golden/chat_templates/chat_templates.json (made by make_chat_template_fixtures.py with
// each family's published template) must render to exactly the same text, the loss mask must
// cover exactly the assistant turns, and the generation prompt of the conversation without its
// last reply must be what apply_chat_template(add_generation_prompt=True) writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "data/byte_tokenizer.h"
#include "data/template.h"
#include "data/tokenizer.h"
#include "eval/generation_prompt.h"

namespace tailor::data {
namespace {

// Seven conversations for each of llama3, chatml, mistral, qwen3, phi3 and gemma (Gemma 3's
// template), and the four without a system message for gemma again (Gemma 2's).
constexpr std::size_t kCases = 7 * 6 + 4;

nlohmann::json golden_cases() {
  std::ifstream f(TAILOR_SOURCE_DIR "/tests/golden/chat_templates/chat_templates.json");
  EXPECT_TRUE(f) << "fixture missing";
  return f ? nlohmann::json::parse(f) : nlohmann::json::array();
}

Record chat_record(const nlohmann::json& c) {
  Record r;
  r.kind = RecordKind::kChat;
  for (const auto& m : c["messages"]) r.messages.push_back({m["role"], m["content"]});
  return r;
}

std::string trimmed(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\n\r\f\v"));
  s.erase(s.find_last_not_of(" \t\n\r\f\v") + 1);
  return s;
}

TEST(ChatTemplateGolden, RendersLikeTransformers) {
  const nlohmann::json cases = golden_cases();
  ASSERT_EQ(cases.size(), kCases);
  // What closes a reply, in the family's own words.
  const std::map<std::string, std::string> end_of_turn = {
      {"llama3", "<|eot_id|>"}, {"chatml", "<|im_end|>"}, {"mistral", "</s>"},
      {"qwen3", "<|im_end|>"},  {"phi3", "<|end|>"},      {"gemma", "<end_of_turn>"}};
  for (const auto& c : cases) {
    const std::string preset = c["preset"].get<std::string>();
    SCOPED_TRACE(c["template"].get<std::string>() + " conversation " +
                 std::to_string(c["conversation"].get<int>()));
    const Record r = chat_record(c);
    TemplateSpec spec;
    spec.preset = *parse_chat_preset(preset);
    const std::vector<Segment> segs = render_record(r, spec);
    EXPECT_EQ(join_segments(segs), c["rendered"].get<std::string>());
    // The trained text is exactly the assistant contents (trimmed by llama3 and gemma; the last
    // one without leading newlines for qwen3) with their end tokens, and phi3's closing EOS.
    std::string trained, expected;
    for (const auto& s : segs)
      if (s.loss) trained += s.text;
    std::size_t last = 0;
    for (std::size_t i = 0; i < r.messages.size(); ++i)
      if (r.messages[i].role == "assistant") last = i;
    for (std::size_t i = 0; i < r.messages.size(); ++i) {
      if (r.messages[i].role != "assistant") continue;
      std::string content = r.messages[i].content;
      if (preset == "llama3" || preset == "gemma") content = trimmed(content);
      if (preset == "qwen3" && i == last) content.erase(0, content.find_first_not_of('\n'));
      expected += content + end_of_turn.at(preset);
    }
    if (preset == "phi3") expected += "<|endoftext|>";
    EXPECT_EQ(trained, expected);
  }
}

// The prompt `tailor generate` writes for a conversation whose last reply is the reference is
// transformers' generation prompt for the turns before it (the byte tokenizer spells text out
// byte by byte, so equal ids are equal text).
TEST(ChatTemplateGolden, GenerationPromptsLikeTransformers) {
  const nlohmann::json cases = golden_cases();
  ASSERT_EQ(cases.size(), kCases);
  const ByteTokenizer bytes;
  for (const auto& c : cases) {
    SCOPED_TRACE(c["template"].get<std::string>() + " conversation " +
                 std::to_string(c["conversation"].get<int>()));
    TemplateSpec spec;
    spec.preset = *parse_chat_preset(c["preset"].get<std::string>());
    const eval::GenerationPrompt p = eval::generation_prompt(chat_record(c), spec, bytes);
    const std::string want = c["generation_prompt"].get<std::string>();
    EXPECT_EQ(bytes.decode(p.ids), want);
    EXPECT_EQ(p.ids, bytes.encode(want));
    EXPECT_EQ(p.reference, c["messages"].back()["content"].get<std::string>());
  }
}

// The special tokens a preset writes become the Hugging Face tokenizer's added-token ids (one id
// each, never split into pieces), and the loss flags follow the segments.
TEST(ChatTemplateGolden, SpecialTokensEncodeAsAddedTokens) {
  const std::pair<ChatPreset, const char*> cases[] = {
      {ChatPreset::kLlama3, "llama3"}, {ChatPreset::kChatml, "qwen2"}, {ChatPreset::kMistral, "mistral"}};
  for (const auto& [preset, dir] : cases) {
    SCOPED_TRACE(dir);
    const auto tok = load_tokenizer(std::string(TAILOR_SOURCE_DIR "/tests/golden/tokenizers/") + dir);
    Record r;
    r.kind = RecordKind::kChat;
    r.messages = {{"system", "Be brief."}, {"user", "Hi there"}, {"assistant", "Hello!"}};
    TemplateSpec spec;
    spec.preset = preset;
    const auto segs = render_record(r, spec);
    std::vector<std::int32_t> ids;
    std::vector<std::uint8_t> loss;
    tokenize_record(segs, preset, *tok, ids, loss);
    ASSERT_EQ(ids.size(), loss.size());
    for (const std::string& special : chat_preset_special_tokens(preset)) {
      const auto id = tok->token_to_id(special);
      ASSERT_TRUE(id.has_value()) << special;
      EXPECT_NE(std::find(ids.begin(), ids.end(), *id), ids.end()) << special;
    }
    const std::string text = tok->decode(ids);
    EXPECT_EQ(text.substr(0, join_segments(segs).size()), join_segments(segs));
    // The trained tokens decode to the assistant turn and what closes it.
    std::vector<std::int32_t> trained;
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (loss[i]) trained.push_back(ids[i]);
    EXPECT_EQ(tok->decode(trained).rfind("Hello!", 0), 0u) << tok->decode(trained);
    EXPECT_EQ(trained.back(), *tok->eos_token_id());
  }
}

}  // namespace
}  // namespace tailor::data
