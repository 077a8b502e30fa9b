// Tailor's chat presets against transformers' apply_chat_template: the conversations of
// tests/golden/chat_templates/chat_templates.json (made by make_chat_template_fixtures.py with
// each family's documented template) must render to exactly the same text, and the loss mask
// must cover exactly the assistant turns.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data/template.h"
#include "data/tokenizer.h"

namespace tailor::data {
namespace {

TEST(ChatTemplateGolden, RendersLikeTransformers) {
  std::ifstream f(TAILOR_SOURCE_DIR "/tests/golden/chat_templates/chat_templates.json");
  ASSERT_TRUE(f) << "fixture missing";
  const nlohmann::json cases = nlohmann::json::parse(f);
  ASSERT_EQ(cases.size(), 15u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["preset"].get<std::string>() + " conversation " +
                 std::to_string(c["conversation"].get<int>()));
    Record r;
    r.kind = RecordKind::kChat;
    for (const auto& m : c["messages"]) r.messages.push_back({m["role"], m["content"]});
    TemplateSpec spec;
    spec.preset = *parse_chat_preset(c["preset"].get<std::string>());
    const std::vector<Segment> segs = render_record(r, spec);
    EXPECT_EQ(join_segments(segs), c["rendered"].get<std::string>());
    // The trained text is exactly the assistant contents (trimmed by llama3) with their end tokens.
    std::string trained, expected;
    for (const auto& s : segs)
      if (s.loss) trained += s.text;
    const std::string end = spec.preset == ChatPreset::kLlama3   ? "<|eot_id|>"
                            : spec.preset == ChatPreset::kChatml ? "<|im_end|>"
                                                                 : "</s>";
    for (const auto& m : r.messages) {
      if (m.role != "assistant") continue;
      std::string content = m.content;
      if (spec.preset == ChatPreset::kLlama3) {
        content.erase(0, content.find_first_not_of(" \n"));
        content.erase(content.find_last_not_of(" \n") + 1);
      }
      expected += content + end;
    }
    EXPECT_EQ(trained, expected);
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
