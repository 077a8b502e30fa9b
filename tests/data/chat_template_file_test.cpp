// The chat templates shipped in configs/templates/ render exactly what the built-in presets render:
// on the conversations of tests/golden/chat_templates/chat_templates.json (what transformers'
// apply_chat_template produced with each family's documented template), so the files are checked
// against transformers through those fixtures; and, for plain (not a transformers template),
// against the built-in renderer on chats, prompt/completion and translation records.
#include <fstream>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "config/config.h"
#include "data/template.h"
#include "trainer/from_config.h"

namespace tailor::data {
namespace {

ChatFormat shipped(const std::string& name) {
  return trainer::chat_format_from_config(config::load_chat_template(
      std::string(TAILOR_SOURCE_DIR "/configs/templates/") + name + ".yaml"));
}

void expect_same_segments(const std::vector<Segment>& a, const std::vector<Segment>& b) {
  ASSERT_EQ(a.size(), b.size()) << join_segments(a) << "\nvs\n" << join_segments(b);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].text, b[i].text) << i;
    EXPECT_EQ(a[i].loss, b[i].loss) << i;
  }
}

TEST(ChatTemplateFile, ShippedFilesAreTheBuiltInPresets) {
  for (ChatPreset p : kChatPresets) {
    const std::string name(chat_preset_name(p));
    SCOPED_TRACE(name);
    EXPECT_TRUE(shipped(name) == builtin_chat_format(p));
  }
}

TEST(ChatTemplateFile, ShippedFilesRenderLikeTransformers) {
  std::ifstream f(TAILOR_SOURCE_DIR "/tests/golden/chat_templates/chat_templates.json");
  ASSERT_TRUE(f) << "fixture missing";
  const nlohmann::json cases = nlohmann::json::parse(f);
  ASSERT_EQ(cases.size(), 46u);  // chat_template_golden_test.cpp says which
  for (const auto& c : cases) {
    const std::string preset = c["preset"].get<std::string>();
    SCOPED_TRACE(c["template"].get<std::string>() + " conversation " +
                 std::to_string(c["conversation"].get<int>()));
    Record r;
    r.kind = RecordKind::kChat;
    for (const auto& m : c["messages"]) r.messages.push_back({m["role"], m["content"]});
    TemplateSpec from_file;
    from_file.format = shipped(preset);
    TemplateSpec built_in;
    built_in.preset = *parse_chat_preset(preset);
    const std::vector<Segment> segs = render_record(r, from_file);
    EXPECT_EQ(join_segments(segs), c["rendered"].get<std::string>());
    expect_same_segments(segs, render_record(r, built_in));  // the same loss mask too
  }
}

TEST(ChatTemplateFile, ShippedFilesRenderRecordsLikeTheBuiltInPresets) {
  std::vector<Record> records;
  Record chat;
  chat.kind = RecordKind::kChat;
  chat.messages = {{"system", " Be brief. "},
                   {"user", "Hi"},
                   {"assistant", " Hello! "},
                   {"user", "Bye"},
                   {"assistant", "Bye."}};
  records.push_back(chat);
  chat.messages.erase(chat.messages.begin());
  records.push_back(chat);
  Record pc;
  pc.kind = RecordKind::kPromptCompletion;
  pc.prompt = "Q: 17 + 25?\nA: ";
  pc.rationale = "17 + 25 = 42.";
  pc.completion = "42";
  records.push_back(pc);
  Record tr;
  tr.kind = RecordKind::kTranslation;
  tr.src = "Open file";
  tr.tgt = "Datei öffnen";
  tr.src_lang = "eng_Latn";
  tr.tgt_lang = "deu_Latn";
  records.push_back(tr);
  Record text;
  text.kind = RecordKind::kText;
  text.text = "Just text.";
  records.push_back(text);
  for (ChatPreset p : kChatPresets) {
    for (bool train_on_prompt : {false, true}) {
      TemplateSpec built_in;
      built_in.preset = p;
      built_in.system = "You are terse.";
      built_in.few_shot = {{"Q: 2 + 2?\nA: ", "4"}};
      built_in.train_on_prompt = train_on_prompt;
      TemplateSpec from_file = built_in;
      from_file.preset = ChatPreset::kPlain;  // ignored: the format replaces it
      from_file.format = shipped(std::string(chat_preset_name(p)));
      for (std::size_t i = 0; i < records.size(); ++i) {
        SCOPED_TRACE(std::string(chat_preset_name(p)) + " record " + std::to_string(i));
        expect_same_segments(render_record(records[i], from_file),
                             render_record(records[i], built_in));
      }
    }
  }
}

}  // namespace
}  // namespace tailor::data
