// JSONL records and their errors, FLORES codes, prompt templates and loss masks, packing with
// masks, and mixing sources by weight.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/corpus_builder.h"
#include "data/flores.h"
#include "data/jsonl_dataset.h"
#include "data/packing.h"
#include "data/template.h"

namespace tailor::data {
namespace {

std::string error_of(const std::string& text) {
  try {
    (void)parse_jsonl(text, "d.jsonl", false);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Jsonl, DetectsRecordKindsPerLine) {
  const JsonlData d = parse_jsonl(
      "{\"text\": \"hello\"}\n"
      "\n"
      "{\"prompt\": \"Q: 2+2?\\n\", \"completion\": \"4\", \"rationale\": \"2+2 is 4.\", \"id\": 7}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
      "\"content\": \"hello\"}]}\n"
      "{\"src\": \"Open file\", \"tgt\": \"Datei öffnen\", \"src_lang\": \"eng_Latn\", "
      "\"tgt_lang\": \"deu_Latn\"}\n",
      "d.jsonl", false);
  ASSERT_EQ(d.records.size(), 4u);
  EXPECT_EQ(d.records[0].kind, RecordKind::kText);
  EXPECT_EQ(d.records[1].kind, RecordKind::kPromptCompletion);
  EXPECT_EQ(d.records[1].line, 3);
  EXPECT_EQ(d.records[1].rationale, "2+2 is 4.");
  EXPECT_EQ(d.records[2].kind, RecordKind::kChat);
  EXPECT_EQ(d.records[2].messages[1].content, "hello");
  EXPECT_EQ(d.records[3].kind, RecordKind::kTranslation);
  EXPECT_EQ(d.records[3].tgt, "Datei öffnen");
}

TEST(Jsonl, BadLinesNameFileLineAndReason) {
  const std::string ok = "{\"text\": \"x\"}\n";
  EXPECT_EQ(error_of(ok + "{\"text\": \"x\"\n"), "d.jsonl:2: malformed JSON at column 13");
  EXPECT_EQ(error_of("{\"text\": \"x\", \"n\": 1e999}\n"),
            "d.jsonl:1: malformed JSON: a number is out of range");
  EXPECT_EQ(error_of(ok + "[1, 2]\n"), "d.jsonl:2: expected a JSON object, got an array");
  EXPECT_EQ(error_of("{\"prompt\": \"q\"}\n"), "d.jsonl:1: missing field \"completion\"");
  EXPECT_EQ(error_of("{\"text\": 3}\n"), "d.jsonl:1: field \"text\" must be a string, got a number");
  EXPECT_EQ(error_of("{\"text\": \"\"}\n"), "d.jsonl:1: field \"text\" is empty");
  EXPECT_EQ(error_of(ok + ok + "{\"text\": \"a\xff\"}\n"),
            "d.jsonl:3: invalid UTF-8 (byte 0xff at column 12)");
  EXPECT_EQ(error_of("\xEF\xBB\xBF" + ok),
            "d.jsonl:1: the file starts with a UTF-8 byte order mark (BOM); save it without one");
  EXPECT_EQ(error_of(ok + "{\"text\": \"cut"),
            "d.jsonl:2: truncated last line (no newline at the end and not valid JSON)");
  EXPECT_EQ(error_of(ok + "{\"text\": \"fine without newline\"}"), "(no error)");
  EXPECT_EQ(error_of("{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}\n"),
            "d.jsonl:1: messages[0].role: unknown role \"bot\" (expected system, user or assistant)");
  EXPECT_EQ(error_of("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n"),
            "d.jsonl:1: no assistant message in \"messages\" (nothing to train on)");
  EXPECT_EQ(error_of("{\"messages\": \"hi\"}\n"),
            "d.jsonl:1: field \"messages\" must be an array, got a string");
  EXPECT_EQ(error_of("{\"src\": \"a\", \"tgt\": \"b\", \"src_lang\": \"en\", \"tgt_lang\": \"deu_Latn\"}\n"),
            "d.jsonl:1: unknown language code \"en\" in \"src_lang\" (expected a FLORES-200 code "
            "such as eng_Latn or deu_Latn)");
  EXPECT_EQ(error_of("{\"id\": 1}\n"),
            "d.jsonl:1: no known fields: expected \"text\", \"prompt\"/\"completion\", \"messages\", "
            "\"src\"/\"tgt\"/\"src_lang\"/\"tgt_lang\" or \"prompt\"/\"chosen\"/\"rejected\"");
  EXPECT_EQ(error_of(""), "d.jsonl:1: no records (the file is empty)");
}

TEST(Jsonl, SkipInvalidCountsPerReason) {
  const JsonlData d = parse_jsonl(
      "{\"text\": \"a\"}\n{bad\n[]\n{\"text\": \"\"}\n{nope\n{\"text\": \"b\"}\n", "d.jsonl", true);
  EXPECT_EQ(d.records.size(), 2u);
  EXPECT_EQ(d.skipped.at("malformed JSON"), 2);
  EXPECT_EQ(d.skipped.at("not an object"), 1);
  EXPECT_EQ(d.skipped.at("empty field"), 1);
  EXPECT_EQ(d.skipped_total(), 4);
  try {
    (void)parse_jsonl("{bad\n", "d.jsonl", true);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "d.jsonl:1: no valid records (1 lines skipped as invalid)");
  }
}

TEST(Jsonl, EveryBadLineIsReportedUpToACap) {
  // Two bad lines: both, one per line, in file order.
  EXPECT_EQ(error_of("{\"text\": \"a\"}\n{bad\n[]\n"),
            "d.jsonl:2: malformed JSON at column 2\nd.jsonl:3: expected a JSON object, got an array");
  // 30 bad lines of 31: the first 20 listed, then how many more and how many in all.
  std::string text = "{\"text\": \"ok\"}\n";
  for (int i = 0; i < 30; ++i) text += "{\"text\": 1}\n";
  try {
    (void)parse_jsonl(text, "d.jsonl", false);
    FAIL() << "no error";
  } catch (const UserErrors& e) {
    ASSERT_EQ(e.problems().size(), 21u);
    for (int i = 0; i < 20; ++i)
      EXPECT_EQ(e.problems()[static_cast<std::size_t>(i)],
                fmt::format("d.jsonl:{}: field \"text\" must be a string, got a number", i + 2));
    EXPECT_EQ(e.problems()[20], "d.jsonl: 10 more bad lines not listed (30 of 31 lines are bad; "
                                "data.skip_invalid: true leaves them out)");
  }
}

TEST(Jsonl, ThreadsGiveTheSameRecordsAndBadLines) {
  std::string text;
  for (int i = 1; i <= 1000; ++i)
    text += i == 700 || i == 900 ? "{oops\n" : "{\"text\": \"line " + std::to_string(i) + "\"}\n";
  for (int threads : {1, 3, 8}) {
    SCOPED_TRACE(threads);
    try {
      (void)parse_jsonl(text, "d.jsonl", false, threads);
      FAIL();
    } catch (const UserError& e) {
      EXPECT_EQ(std::string(e.what()),
                "d.jsonl:700: malformed JSON at column 2\nd.jsonl:900: malformed JSON at column 2");
    }
    const JsonlData d = parse_jsonl(text, "d.jsonl", true, threads);
    ASSERT_EQ(d.records.size(), 998u);
    EXPECT_EQ(d.records[698].line, 699);
    EXPECT_EQ(d.records[699].line, 701);
    EXPECT_EQ(d.records[699].text, "line 701");
    EXPECT_EQ(d.skipped.at("malformed JSON"), 2);
  }
}

TEST(Flores, KnowsTheCodes) {
  EXPECT_EQ(flores_language_count(), 204u);
  EXPECT_EQ(flores_language_name("eng_Latn"), "English");
  EXPECT_EQ(flores_language_name("deu_Latn"), "German");
  EXPECT_EQ(flores_language_name("zho_Hans"), "Chinese (Simplified)");
  EXPECT_EQ(flores_language_name("zul_Latn"), "Zulu");
  EXPECT_EQ(flores_language_name("ace_Arab"), "Acehnese (Arabic script)");
  EXPECT_FALSE(flores_language_name("en").has_value());
  EXPECT_FALSE(flores_language_name("eng_latn").has_value());
}

Record prompt_record(std::string prompt, std::string completion, std::string rationale = "") {
  Record r;
  r.kind = RecordKind::kPromptCompletion;
  r.prompt = std::move(prompt);
  r.completion = std::move(completion);
  r.rationale = std::move(rationale);
  return r;
}

Record translation_record() {
  Record r;
  r.kind = RecordKind::kTranslation;
  r.src = "Open file";
  r.tgt = "Datei öffnen";
  r.src_lang = "eng_Latn";
  r.tgt_lang = "deu_Latn";
  return r;
}

Record chat_record() {
  Record r;
  r.kind = RecordKind::kChat;
  r.messages = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", " Hello! "},
                {"user", "Bye"}, {"assistant", "Bye."}};
  return r;
}

std::string masked(const std::vector<Segment>& segs) {
  std::string out;
  for (const auto& s : segs) out += (s.loss ? "[" : "<") + s.text + (s.loss ? "]" : ">");
  return out;
}

TEST(Template, PlainPromptWithSystemFewShotAndRationale) {
  TemplateSpec t;
  t.system = "You add numbers.";
  t.few_shot = {{"1+1=", "2"}, {"2+2=", "4"}};
  EXPECT_EQ(masked(render_record(prompt_record("3+4=", "7", "3+4 is 7."), t)),
            "<You add numbers.\n\n1+1=2\n\n2+2=4\n\n3+4=>[3+4 is 7.\n7]");
  t.train_on_prompt = true;
  EXPECT_EQ(masked(render_record(prompt_record("3+4=", "7"), t)),
            "[You add numbers.\n\n1+1=2\n\n2+2=4\n\n3+4=7]");
}

TEST(Template, TranslationNamesTheLanguages) {
  TemplateSpec t;
  EXPECT_EQ(masked(render_record(translation_record(), t)),
            "<Translate from English to German:\nOpen file\n>[Datei öffnen]");
  t.translation = "{src_lang}->{tgt_lang}: {src} = ";
  EXPECT_EQ(masked(render_record(translation_record(), t)), "<eng_Latn->deu_Latn: Open file = >[Datei öffnen]");
  EXPECT_EQ(translation_template_problem("{src} {x}"),
            "unknown placeholder {x} (known: {src}, {src_lang}, {tgt_lang}, {src_lang_name}, "
            "{tgt_lang_name})");
  EXPECT_EQ(translation_template_problem("{tgt_lang_name}"),
            "no {src} placeholder (the sentence to translate)");
  EXPECT_EQ(translation_template_problem(kDefaultTranslationTemplate), "");
}

TEST(Template, ChatPresetsUseEachFamilysTokens) {
  TemplateSpec t;
  t.preset = ChatPreset::kLlama3;
  EXPECT_EQ(masked(render_record(chat_record(), t)),
            "<<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n>[Hello!<|eot_id|>]"
            "<<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n>[Bye.<|eot_id|>]");
  t.preset = ChatPreset::kChatml;
  EXPECT_EQ(masked(render_record(chat_record(), t)),
            "<<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n>[ Hello! <|im_end|>]<\n<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n>[Bye.<|im_end|>]<\n>");
  t.preset = ChatPreset::kMistral;
  EXPECT_EQ(masked(render_record(chat_record(), t)),
            "<<s>[INST] Be brief.\n\nHi [/INST]>[ Hello! </s>]<[INST] Bye [/INST]>[Bye.</s>]");
  t.preset = ChatPreset::kPlain;
  EXPECT_EQ(masked(render_record(chat_record(), t)),
            "<Be brief.\n\nUser: Hi\nAssistant: >[ Hello! \n]<User: Bye\nAssistant: >[Bye.]");
  // A prompt/completion record under a chat preset is a two-turn conversation.
  t.preset = ChatPreset::kChatml;
  t.system = "S";
  EXPECT_EQ(masked(render_record(prompt_record("Q", "A"), t)),
            "<<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n>[A<|im_end|>]<\n>");
}

TEST(Template, TokensCarryTheMaskAndEosClosesTheResponse) {
  const ByteTokenizer tok;
  std::vector<std::int32_t> ids;
  std::vector<std::uint8_t> loss;
  tokenize_record({{"ab", false}, {"c", true}}, ChatPreset::kPlain, tok, ids, loss);
  EXPECT_EQ(ids, (std::vector<std::int32_t>{'a', 'b', 'c', ByteTokenizer::kEos}));
  EXPECT_EQ(loss, (std::vector<std::uint8_t>{0, 0, 1, 1}));
}

TEST(Template, FewShotChoiceDependsOnSeedOnly) {
  std::vector<FewShotExample> pool;
  for (int i = 0; i < 20; ++i) pool.push_back({std::to_string(i), "x"});
  const auto a = choose_few_shot(pool, 3, 7);
  const auto b = choose_few_shot(pool, 3, 7);
  const auto c = choose_few_shot(pool, 3, 8);
  ASSERT_EQ(a.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(a[i].prompt, b[i].prompt);
  bool differs = false;
  for (std::size_t i = 0; i < 3; ++i) differs = differs || a[i].prompt != c[i].prompt;
  EXPECT_TRUE(differs);
  EXPECT_EQ(choose_few_shot(pool, 50, 7).size(), 20u);
}

TEST(Packing, PromptTokensAreNotTargets) {
  // One record: prompt "ab" (no loss), response "c" + EOS (loss); then a text document "xy" + EOS.
  TokenizedCorpus c;
  c.tokens = {'a', 'b', 'c', 256, 'x', 'y', 256, 'z'};
  c.loss = {0, 0, 1, 1, 1, 1, 1, 1};
  c.doc_start = {0, 4, 7, 8};
  const PackedSequences packed(c, 7, "t");
  std::vector<std::int32_t> ids(7), targets(7), pos(7), docs(7);
  packed.fill(0, ids, targets, pos, docs);
  // a→b (prompt: ignored), b→c (trained), c→EOS (trained), EOS→x (document boundary: ignored),
  // x→y, y→EOS, EOS→z (boundary).
  EXPECT_EQ(targets, (std::vector<std::int32_t>{-100, 'c', 256, -100, 'y', 256, -100}));
  EXPECT_EQ(pos, (std::vector<std::int32_t>{0, 1, 2, 3, 0, 1, 2}));
}

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path() / "tailor_jsonl_test";
  std::filesystem::create_directories(dir);
  const auto p = dir / name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

TEST(Corpus, MixesSourcesByWeightDeterministically) {
  std::string a, b;
  for (int i = 0; i < 10; ++i) a += "{\"text\": \"a" + std::to_string(i) + "\"}\n";
  for (int i = 0; i < 10; ++i) b += "{\"text\": \"b" + std::to_string(i) + "\"}\n";
  const auto pa = write_temp("a.jsonl", a), pb = write_temp("b.jsonl", b);
  CorpusSpec spec;
  spec.format = DataFormat::kJsonl;
  spec.sources = {{pa.string(), 2.0}, {pb.string(), 0.5}};
  spec.seed = 3;
  const ByteTokenizer tok;
  CorpusStats stats;
  const TokenizedCorpus c1 = build_corpus(spec, tok, stats);
  EXPECT_EQ(c1.num_documents(), 25);  // 2 x 10 + 0.5 x 10
  std::int64_t from_a = 0;
  for (std::int64_t d = 0; d < c1.num_documents(); ++d)
    from_a += c1.tokens[static_cast<std::size_t>(c1.doc_start[static_cast<std::size_t>(d)])] == 'a';
  EXPECT_EQ(from_a, 20);
  spec.threads = 4;
  const TokenizedCorpus c2 = build_corpus(spec, tok, stats);
  EXPECT_EQ(c1.tokens, c2.tokens);
  EXPECT_EQ(c1.loss, c2.loss);
  spec.seed = 4;
  EXPECT_NE(build_corpus(spec, tok, stats).tokens, c1.tokens);
}

TEST(Corpus, OverlongDocumentsFollowThePolicy) {
  const auto p = write_temp("long.jsonl", "{\"text\": \"abcdefghij\"}\n{\"text\": \"xy\"}\n");
  CorpusSpec spec;
  spec.format = DataFormat::kJsonl;
  spec.sources = {{p.string(), 1.0}};
  spec.max_doc_tokens = 5;
  const ByteTokenizer tok;
  CorpusStats split_stats, trunc_stats, drop_stats;
  const TokenizedCorpus split = build_corpus(spec, tok, split_stats);
  EXPECT_EQ(split.tokens.size(), 14u);  // 10 + EOS, 2 + EOS
  EXPECT_EQ(split_stats.overlong, 1);
  spec.overlong = OverlongPolicy::kTruncate;
  const TokenizedCorpus trunc = build_corpus(spec, tok, trunc_stats);
  EXPECT_EQ(trunc.doc_start, (std::vector<std::int64_t>{0, 5, 8}));
  EXPECT_EQ(trunc_stats.overlong_tokens_removed, 6);
  spec.overlong = OverlongPolicy::kDrop;
  const TokenizedCorpus drop = build_corpus(spec, tok, drop_stats);
  EXPECT_EQ(drop.tokens, (std::vector<std::int32_t>{'x', 'y', ByteTokenizer::kEos}));
  EXPECT_EQ(drop_stats.overlong_tokens_removed, 11);
  spec.max_doc_tokens = 2;
  CorpusStats none;
  EXPECT_THROW((void)build_corpus(spec, tok, none), UserError);
}

TEST(Corpus, ThreadCountDoesNotChangeTokens) {
  std::string text;
  for (int i = 0; i < 500; ++i)
    text += "{\"prompt\": \"q" + std::to_string(i) + "\", \"completion\": \"a\"}\n";
  const auto p = write_temp("many.jsonl", text);
  CorpusSpec spec;
  spec.format = DataFormat::kJsonl;
  spec.sources = {{p.string(), 1.0}};
  const ByteTokenizer tok;
  CorpusStats stats;
  const TokenizedCorpus one = build_corpus(spec, tok, stats);
  spec.threads = 3;
  const TokenizedCorpus three = build_corpus(spec, tok, stats);
  EXPECT_EQ(one.tokens, three.tokens);
  EXPECT_EQ(one.loss, three.loss);
  EXPECT_EQ(one.doc_start, three.doc_start);
  EXPECT_EQ(one.num_documents(), 500);
}

}  // namespace
}  // namespace tailor::data
