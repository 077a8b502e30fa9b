// Generation prompts (eval/generation_prompt.h): records rendered with the training templates up
// to the response, tokenized as training tokenizes them, with the record's answer as reference;
// the lenient JSONL reader; the ids that end a response under each template.
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/tokenizer.h"
#include "eval/generation_prompt.h"
#include "generate_test_util.h"
#include "trainer/test_dirs.h"

namespace tailor::eval {
namespace {

class GenerationPromptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = data::load_tokenizer(testing::source_path("tests/golden/tokenizers/llama3"));
  }
  std::vector<std::int32_t> encode(const std::string& text, bool bos) const {
    std::vector<std::int32_t> ids;
    if (bos) ids.push_back(*tok_->bos_token_id());
    const auto t = tok_->encode(text);
    ids.insert(ids.end(), t.begin(), t.end());
    return ids;
  }
  GenerationPrompt render(const data::Record& r, data::ChatPreset preset,
                          const std::string& system = "") const {
    data::TemplateSpec spec;
    spec.preset = preset;
    spec.system = system;
    return generation_prompt(r, spec, *tok_);
  }
  static data::Record prompt_record(const std::string& prompt, const std::string& completion = "") {
    data::Record r;
    r.kind = data::RecordKind::kPromptCompletion;
    r.prompt = prompt;
    r.completion = completion;
    return r;
  }
  static data::Record chat(std::vector<data::Message> m) {
    data::Record r;
    r.kind = data::RecordKind::kChat;
    r.messages = std::move(m);
    return r;
  }
  std::unique_ptr<data::Tokenizer> tok_;
};

TEST_F(GenerationPromptTest, PlainIsBosAndThePrompt) {
  const GenerationPrompt p = render(prompt_record("Hi there", "Hello"), data::ChatPreset::kPlain);
  EXPECT_EQ(p.ids, encode("Hi there", true));
  EXPECT_EQ(p.prompt, "Hi there");
  EXPECT_EQ(p.reference, "Hello");
  EXPECT_EQ(render(prompt_record("Hi"), data::ChatPreset::kPlain, "Be brief.").ids,
            encode("Be brief.\n\nHi", true));
  EXPECT_FALSE(render(prompt_record("Hi"), data::ChatPreset::kPlain).reference.has_value());
}

// A record with a rationale: the model is prompted as without one (the reasoning is its to
// write), the reference is the answer alone, and what is scored of a generation is its last
// non-blank line (data.md: the rationale comes before the answer, separated by a newline).
TEST_F(GenerationPromptTest, ReasonedRecordsScoreTheLineAfterTheReasoning) {
  data::Record r = prompt_record("Q: 17 + 25?\nA: ", "42");
  r.rationale = "17 + 25 = 17 + 20 + 5 = 42.";
  const GenerationPrompt p = render(r, data::ChatPreset::kPlain);
  EXPECT_EQ(p.ids, encode("Q: 17 + 25?\nA: ", true));
  EXPECT_EQ(p.reference, "42");
  EXPECT_TRUE(p.reasoned);
  EXPECT_EQ(final_answer(p, "17 + 25 = 42.\n42"), "42");
  EXPECT_EQ(final_answer(p, "first\nsecond\n42\n\n"), "42\n\n");  // trailing blank lines stay
  EXPECT_EQ(final_answer(p, "42"), "42");                             // no reasoning written
  // Without a rationale the whole generation is the answer.
  const GenerationPrompt plain = render(prompt_record("Q: 1 + 1?\nA: ", "2"), data::ChatPreset::kPlain);
  EXPECT_FALSE(plain.reasoned);
  EXPECT_EQ(final_answer(plain, "so\n2"), "so\n2");
}

TEST_F(GenerationPromptTest, ChatPresetsEndWithTheAssistantHeader) {
  EXPECT_EQ(render(prompt_record("Hi"), data::ChatPreset::kLlama3, "Be brief.").ids,
            encode("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief."
                   "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n",
                   false));
  EXPECT_EQ(render(prompt_record("Hi"), data::ChatPreset::kChatml).ids,
            encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", false));
  EXPECT_EQ(render(prompt_record("Hi"), data::ChatPreset::kMistral).ids,
            encode("<s>[INST] Hi [/INST]", false));
}

TEST_F(GenerationPromptTest, ChatHistoryIsKeptAndATrailingAnswerIsTheReference) {
  const data::Record r =
      chat({{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}});
  const GenerationPrompt p = render(r, data::ChatPreset::kPlain);
  EXPECT_EQ(p.ids, encode("User: a\nAssistant: b\nUser: c\nAssistant: ", true));
  EXPECT_EQ(p.prompt, "c");
  EXPECT_EQ(p.reference, "d");
  const GenerationPrompt open = render(chat({{"user", "a"}}), data::ChatPreset::kChatml);
  EXPECT_EQ(open.ids, encode("<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n", false));
  EXPECT_FALSE(open.reference.has_value());
}

TEST_F(GenerationPromptTest, TranslationAndTextRecords) {
  data::Record t;
  t.kind = data::RecordKind::kTranslation;
  t.src = "Guten Morgen";
  t.src_lang = "deu_Latn";
  t.tgt_lang = "eng_Latn";
  t.tgt = "Good morning";
  const GenerationPrompt p = render(t, data::ChatPreset::kPlain);
  EXPECT_EQ(p.ids, encode("Translate from German to English:\nGuten Morgen\n", true));
  EXPECT_EQ(p.prompt, "Guten Morgen");
  EXPECT_EQ(p.reference, "Good morning");
  data::Record text;
  text.kind = data::RecordKind::kText;
  text.text = "Once upon";
  EXPECT_EQ(render(text, data::ChatPreset::kLlama3).ids, encode("Once upon", true));
}

TEST_F(GenerationPromptTest, ResponseEndIdsAddTheTemplatesEndOfTurn) {
  const std::int32_t eos = *tok_->eos_token_id();
  EXPECT_EQ(response_end_ids(data::ChatPreset::kPlain, *tok_), std::vector<std::int32_t>{eos});
  EXPECT_EQ(response_end_ids(data::ChatPreset::kLlama3, *tok_),
            (std::vector<std::int32_t>{eos, *tok_->token_to_id("<|eot_id|>")}));
  // This tokenizer has no <|im_end|>: EOS only.
  EXPECT_EQ(response_end_ids(data::ChatPreset::kChatml, *tok_), std::vector<std::int32_t>{eos});
}

TEST(GenerationRecords, AnswersAreOptionalAndBadLinesNameTheLine) {
  tailor::testing::TempDir tmp;
  const std::string path = tmp / "p.jsonl";
  std::ofstream(path) << "{\"prompt\": \"a\"}\n\n{\"messages\": [{\"role\": \"user\", \"content\": "
                         "\"b\"}]}\n{\"src\": \"c\", \"src_lang\": \"deu_Latn\", \"tgt_lang\": "
                         "\"eng_Latn\"}\n{\"text\": \"d\"}\n";
  const std::vector<data::Record> r = read_generation_records(path);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].kind, data::RecordKind::kPromptCompletion);
  EXPECT_EQ(r[1].kind, data::RecordKind::kChat);
  EXPECT_EQ(r[1].line, 3);
  EXPECT_EQ(r[2].kind, data::RecordKind::kTranslation);
  EXPECT_EQ(r[3].kind, data::RecordKind::kText);
  // A dev record's rationale is read: the generation it is compared with has its reasoning first.
  std::ofstream(path) << "{\"prompt\": \"q\", \"rationale\": \"because\", \"completion\": \"a\"}\n";
  EXPECT_EQ(read_generation_records(path).at(0).rationale, "because");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"prompt\": \"ok\"}\n{\"prompt\": 3}\n", ":2: field \"prompt\" must be a string"},
      {"not json\n", ":1: not valid JSON"},
      {"{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n", ":1: unknown role"},
      {"{\"other\": 1}\n", ":1: expected a \"prompt\""},
      {"{\"prompt\": \"q\", \"rationale\": 7, \"completion\": \"a\"}\n", ":1: field \"rationale\""},
      {"\n\n", ": no records"},
  };
  for (const auto& [text, reason] : bad) {
    std::ofstream(path) << text;
    try {
      (void)read_generation_records(path);
      ADD_FAILURE() << text;
    } catch (const UserError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path + reason, 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace tailor::eval
