#!/usr/bin/env python3
"""Builds the metric fixtures of tests/eval/metrics_test.cpp and metrics_cli_test.cpp.

Every expected value is what the reference computed, never Tailor's output:
  - BLEU, chrF, chrF++: sacreBLEU's BLEU() and CHRF() classes with their defaults (the objects
    behind sacrebleu.corpus_bleu / corpus_chrf), plus CHRF(eps_smoothing=True) for the option;
    signatures from metric.get_signature().format();
  - ROUGE-L: rouge_score.rouge_scorer.RougeScorer(['rougeL']) (default tokenizer, no stemmer),
    .score(target, prediction) per pair, .score_multi for several references; the corpus value is
    the plain mean of the F-measures (Tailor's documented aggregation);
  - exact match: Python's strip() equality, and the SQuAD v1.1 evaluation script's normalize_answer;
  - tokenize_13a: sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()(text).

Writes tests/golden/metrics/cases.json, and cli_hyp.txt / cli_ref_a.txt / cli_ref_b.txt with their
expected values (read as sacreBLEU's command line reads files: split at "\\n", each line rstrip()ed).

Usage: pip install sacrebleu rouge-score; python3 tests/golden/make_metric_fixtures.py
Deterministic for fixed package versions (recorded in cases.json). Tailor's kSacrebleuVersion
(src/eval/metrics.h) must equal the sacreBLEU version recorded here.
"""
import json
import os
import random
import re
import string
import sys
import unicodedata
from importlib import metadata

from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "metrics")
ROOT = os.path.dirname(os.path.dirname(HERE))


# ---- references ---------------------------------------------------------------------------------

def squad_normalize(s):
    """normalize_answer of the SQuAD v1.1 evaluation script."""
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def exact_match(hyps, refs, normalize):
    if not hyps:
        return 0.0
    norm = squad_normalize if normalize else (lambda s: s.strip())
    hits = 0
    for i, h in enumerate(hyps):
        if any(norm(h) == norm(stream[i]) for stream in refs):
            hits += 1
    return hits / len(hyps)


SCORER = rouge_scorer.RougeScorer(["rougeL"])


def rouge_l_mean(hyps, refs):
    fs = []
    for i, h in enumerate(hyps):
        targets = [stream[i] for stream in refs]
        s = SCORER.score(targets[0], h) if len(targets) == 1 else SCORER.score_multi(targets, h)
        fs.append(s["rougeL"].fmeasure)
    return sum(fs) / len(fs), fs


def chrf(hyps, refs, **kwargs):
    m = CHRF(**kwargs)
    s = m.corpus_score(hyps, refs)
    return {"score": s.score, "signature": m.get_signature().format()}


def all_metrics(hyps, refs):
    bleu = BLEU()
    b = bleu.corpus_score(hyps, refs)
    rouge, per_sentence = rouge_l_mean(hyps, refs)
    return {
        "bleu": {
            "score": b.score, "precisions": list(b.precisions), "counts": list(b.counts),
            "totals": list(b.totals), "bp": b.bp, "ratio": b.ratio, "sys_len": b.sys_len,
            "ref_len": b.ref_len, "signature": bleu.get_signature().format(),
        },
        "chrf": chrf(hyps, refs),
        "chrf_pp": chrf(hyps, refs, word_order=2),
        "chrf_eps": chrf(hyps, refs, eps_smoothing=True),
        "chrf_pp_eps": chrf(hyps, refs, word_order=2, eps_smoothing=True),
        "rouge_l": rouge,
        "rouge_l_sentences": per_sentence,
        "exact_match": exact_match(hyps, refs, False),
        "exact_match_squad": exact_match(hyps, refs, True),
    }


# ---- inputs -------------------------------------------------------------------------------------

TOKENIZER_INPUTS = [
    "Hello, world!",
    "The U.S.A. costs $1,000.50 (approx.), e.g. 3.14 or 2,5 -- and 10-20 items.",
    "1,000 1.000 1.000,50 ,5 .5 5. 5, 3.5.7 a.b,c a..b a... ...a ... ,,",
    "x-y 5-6 5--6 -5 5- a-5 2024-01-05",
    "&quot;quoted&quot; &amp;amp; &amp;lt; &lt;tag&gt; &apos; & amp;",
    "<skipped>text and <skip<skipped>ped> more",
    "line-\nbreak\nnext\r\nend-",
    "«Bonjour», dit-il… — „Hallo“ “curly” ‘single’ ‹x›",
    "中文，句号。数字１２３.４和3.5。",
    "مرحبا، كيف حالك؟ ١٢٣,٤",
    "tab\tand\u3000ideographic\u00a0nbsp\u2009thin\u202fnarrow\u1680ogham\u0085nel",
    "\x1cfile\x1dgroup\x1erecord\x1funit\x0bvt\x0cff",
    "it's don't 'quoted' rock'n'roll",
    "price: $5.00, 10% off; (see [1]) {x} a|b ~c ^d _e `f` @g #h *i +j =k <l> /m \\n ?o !p",
    "".join(chr(c) for c in range(0x21, 0x7F)),
    "Привет, мир! Ёлка 2024-01-05. Т.е. 3,14 — пи.",
    "Ünïcödé façade naïve coöperate Ærø Øre İstanbul ΟΔΟΣ",
    "e-mail: john.doe@example.com http://x.org/a?b=c&d=e",
    "emoji 👍🏽 test.👍 ok,😀",
    "word.\u0301 x,\u0301 1.\u0663 ٣.5",
    "",
    "   ",
    ".",
    "-",
    "a",
    "Mr. Smith's 3rd-place finish (1:23.45) was 0.5s off.",
]

ROUGE_TOKENIZER_INPUTS = [
    "The quick brown fox, jumped!",
    "Café naïve İstanbul 5 \u212a Kelvin ΟΔΟΣ",
    "Привет мир 中文 مرحبا",
    "don't stop-believing 3.14 1,000 x2y",
    "",
    "  ...  ",
    "ÀÉÎõü straße",
]

SQUAD_INPUTS = [
    "The Eiffel Tower",
    "  an apple a day  ",
    "the-the a.the An",
    "théatre the théâtre athe thea",
    "ΟΔΥΣΣΕΥΣ",
    "ΟΔΟΣ ΟΔΟΣ.",
    "İstanbul",
    "Mr. O'Neil's \"café\"",
    "«the» „a“ — an",
    "a_the the_a",
    "",
    "1,000 vs 1000",
]

ROUGE_PAIRS = [
    ("the cat sat on the mat", "the cat was sitting on the mat"),
    ("police killed the gunman", "the gunman kill police"),
    ("", "something"),
    ("something", ""),
    ("Привет мир", "Привет мир"),
    ("İstanbul is big", "istanbul is large"),
    ("a b c d e f", "f e d c b a"),
]

CASES = {
    "english": (
        ["The cat is sitting on the mat.",
         "There is a cat on the mat.",
         "It is a guide to action which ensures that the military always obeys the commands of the party.",
         "He read the book because he was interested in world history.",
         "The weather forecast says it will rain tomorrow afternoon.",
         "I don't think that's right, is it?"],
        [["The cat sat on the mat.",
          "A cat is on the mat.",
          "It is a guide to action that ensures that the military will forever heed Party commands.",
          "He was interested in world history because he read the book.",
          "Tomorrow afternoon it is going to rain, according to the forecast.",
          "I do not think that is right, is it?"]],
    ),
    "german": (
        ["Der schnelle braune Fuchs springt über den faulen Hund.",
         "Er sagte: „Das kostet 1.234,56 Euro.“",
         "Die Straße ist nass, weil es geregnet hat.",
         "Bitte öffnen Sie die Datei »config.yaml« erneut.",
         "Größe: 3,5 m — Gewicht: 12 kg."],
        [["Der flinke braune Fuchs springt über den faulen Hund.",
          "Er sagte: „Das kostet 1.234,56 €.“",
          "Die Straße ist nass, da es geregnet hat.",
          "Öffnen Sie bitte die Datei »config.yaml« noch einmal.",
          "Größe: 3,5 m – Gewicht: 12 kg."]],
    ),
    "french": (
        ["« Bonjour », dit-elle\u202f; puis elle est partie.",
         "L’hôtel se trouve à côté de la gare.",
         "Il a payé 12,50\u00a0€ pour le déjeuner.",
         "Qu’est-ce que c’est\u00a0?",
         "Les élèves ont étudié l’histoire de France."],
        [["« Bonjour », a-t-elle dit\u202f; puis elle est partie.",
          "L’hôtel est à côté de la gare.",
          "Il a payé 12,50\u00a0€ pour son déjeuner.",
          "Qu’est-ce que c’est\u00a0?",
          "Les étudiants ont étudié l’histoire de la France."]],
    ),
    "russian": (
        ["Москва — столица России.",
         "Он сказал: «Я приду завтра».",
         "В 2023 году население составило 146,4 млн человек.",
         "Ёжик в тумане… и лошадка."],
        [["Москва является столицей России.",
          "Он сказал: «Я приду завтра».",
          "В 2023 г. население составляло 146,4 млн человек.",
          "Ёжик в тумане… и лошадь."]],
    ),
    "chinese": (
        ["我今天很高兴。",
         "这本书非常有意思，我读了两遍。",
         "北京是中国的首都。",
         "价格是３.５元，对吗？"],
        [["今天我很高兴。",
          "这本书很有意思，我读了两次。",
          "北京是中国的首都。",
          "价格是3.5元，是吗？"]],
    ),
    "arabic": (
        ["ذهب الولد إلى المدرسة صباحاً.",
         "هل تتكلم العربية؟",
         "الكتاب على الطاولة، والقلم في الحقيبة."],
        [["ذهب الولد إلى المدرسة في الصباح.",
          "هل تتحدث العربية؟",
          "الكتاب على الطاولة، والقلم في الحقيبة."]],
    ),
    "accented_latin": (
        ["El niño comió una manzana en el jardín.",
         "A ação foi concluída com êxito.",
         "Příliš žluťoučký kůň úpěl ďábelské ódy.",
         "Tiếng Việt có nhiều dấu thanh.",
         "Ærøskøbing ligger på Ærø."],
        [["El niño se comió una manzana en el jardín.",
          "A ação foi concluída com sucesso.",
          "Příliš žluťoučký kůň úpěl ďábelské ódy.",
          "Tiếng Việt có rất nhiều dấu thanh.",
          "Ærøskøbing ligger på øen Ærø."]],
    ),
    "unicode_punctuation": (
        ["«Wait…» — she said — „now“.",
         "He paused… then left—quickly.",
         "‹Yes›, “no”, ‘maybe’!",
         "Items: • one • two • three",
         "¿Qué? ¡Sí! «Ça va»"],
        [["«Wait…» — she said — „now“.",
          "He paused ... then left — quickly.",
          "‹Yes›, \"no\", 'maybe'!",
          "Items: • one • two • three.",
          "¿Qué? ¡Sí! « Ça va »"]],
    ),
    "numbers": (
        ["The population was 1,234,567 in 2020.",
         "Pi is roughly 3.14159, e is 2.718.",
         "Version 1.2.3 was released on 2021-03-04.",
         "It costs $5.00, or 4,50 €.",
         "Pages 10-20 and 30–40.",
         "Call 555-1234 at 9.30 a.m."],
        [["In 2020 the population was 1,234,567.",
          "Pi is approximately 3.14159, and e is 2.718.",
          "Version 1.2.3 came out on 2021-03-04.",
          "It costs $5.00 or 4,50 €.",
          "Pages 10-20 and 30-40.",
          "Call 555-1234 at 9:30 a.m."]],
    ),
    "empty_hypothesis_lines": (
        ["The cat sat on the mat.", "", "A quick test of empty lines.", ""],
        [["The cat sat on the mat.", "Nothing here.", "A quick test of the empty lines.", "Also nothing."]],
    ),
    "all_empty_hypothesis": (
        ["", "", ""],
        [["The first reference.", "The second one.", "Third."]],
    ),
    "single_sentence": (
        ["The quick brown fox jumps over the lazy dog."],
        [["A quick brown fox jumped over the lazy dog."]],
    ),
    "identical": (
        ["This sentence is exactly the same.", "So is this one, with punctuation!",
         "Und auch dieser deutsche Satz.", "И этот русский тоже."],
        [["This sentence is exactly the same.", "So is this one, with punctuation!",
          "Und auch dieser deutsche Satz.", "И этот русский тоже."]],
    ),
    "no_overlap": (
        ["alpha beta gamma delta", "one two three four five"],
        [["epsilon zeta eta theta", "six seven eight nine ten"]],
    ),
    "multiple_references": (
        ["It is a guide to action which ensures that the military always obeys the commands of the party.",
         "The cat sat on the mat.",
         "He went home early."],
        [["It is a guide to action that ensures that the military will forever heed Party commands.",
          "The cat is on the mat.",
          "He went home early."],
         ["It is the guiding principle which guarantees the military forces always being under the command of the Party.",
          "There is a cat on the mat.",
          "He left for home early."],
         ["It is the practical guide for the army always to heed the directions of the party.",
          "A cat sat upon the mat.",
          "Early, he went home."]],
    ),
    "multiple_references_with_empty": (
        ["a small test", "another small test here", "x"],
        [["a small test indeed", "", "x y"],
         ["", "another test here", "x"]],
    ),
    "short_sentences": (
        ["Yes.", "No", "Thank you.", "Ok", "Hi there!", "Go"],
        [["Yes.", "No.", "Thanks.", "OK", "Hi there!", "Go!"]],
    ),
    "very_short_no_4grams": (
        ["a b", "c"],
        [["a b", "c d"]],
    ),
    "exp_smoothing": (
        ["the cat the dog the bird", "sat mat hat"],
        [["the dog barked at the bird", "the cat sat on the mat"]],
    ),
    "hypothesis_longer": (
        ["This hypothesis is much longer than the reference sentence it is compared to.",
         "Short ref but long hypothesis with many extra words added here."],
        [["This hypothesis is longer.", "Short ref."]],
    ),
    "whitespace": (
        ["  leading and trailing  ", "tab\tseparated\twords", "ideographic\u3000space here",
         "no\u00a0break space", "many     spaces   here"],
        [["leading and trailing", "tab separated words", "ideographic space here",
          "no break space", "many spaces here"]],
    ),
    "exact_match_answers": (
        ["The Eiffel Tower", "1,000", "Barack Obama.", "an apple", "  Paris  ", "ΟΔΥΣΣΕΥΣ",
         "the  United   States", "Mont-Blanc"],
        [["Eiffel Tower", "1000", "Barack Obama", "apple", "Paris", "οδυσσευς",
          "United States", "Mont Blanc"],
         ["eiffel tower", "one thousand", "Obama", "the apple", "paris", "Οδυσσευς",
          "USA", "Mont-Blanc"]],
    ),
    "chrf_word_punctuation": (
        ["(hello world).", "'quoted' text...", "a. b, c!", "— — —", "中 文", "x",
         "\"Start and end\""],
        [["(hello world)", "\"quoted\" text.", "a b c", "—", "中文", "x.", "Start and end"]],
    ),
    "rouge_non_ascii": (
        ["Café au lait à Paris", "İstanbul büyük", "5 \u212a is cold", "Москва столица"],
        [["cafe au lait in Paris", "istanbul buyuk", "5 K is cold", "Москва — столица"]],
    ),
}


def perturb(sentence, rng, vocab):
    """A deterministic, translation-like corruption of a reference sentence."""
    words = sentence.split()
    if not words:
        return sentence
    op = rng.randrange(5)
    if op == 0 and len(words) > 1:  # drop a word
        del words[rng.randrange(len(words))]
    elif op == 1 and len(words) > 1:  # swap neighbours
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    elif op == 2:  # substitute a word from elsewhere in the corpus
        words[rng.randrange(len(words))] = rng.choice(vocab)
    elif op == 3:  # insert a word
        words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
    return " ".join(words)  # op 4: unchanged (modulo whitespace)


def gettext_case(limit=120):
    """Real translations (German, Chinese, Japanese, Spanish, Russian, French) from the committed
    gettext sample as references; hypotheses are seeded corruptions of them."""
    path = os.path.join(ROOT, "datasets", "gettext-translations", "dev.sample.jsonl")
    with open(path, encoding="utf-8") as f:
        refs = [json.loads(line)["tgt"] for line in f][:limit]
    vocab = sorted({w for r in refs for w in r.split()})
    rng = random.Random(20240510)
    hyps = [perturb(r, rng, vocab) for r in refs]
    return hyps, [refs]


# ---- the command-line fixture ---------------------------------------------------------------------

CLI_HYP = ("The cat sat on the mat.\n"
           "Das ist ein Test.   \n"
           "Москва — столица России.\r\n"
           "\n"
           "价格是3.5元。\n"
           "1,000 people came, e.g. 3.14 of them.\n")
CLI_REF_A = ("The cat is on the mat.\n"
             "Das ist ein Test.\n"
             "Москва является столицей России.\n"
             "Nothing.\n"
             "价格是3.5元。\n"
             "1,000 people came, e.g. 3 of them.")  # no final newline
CLI_REF_B = ("A cat sat on the mat.\n"
             "Dies ist ein Test.\n"
             "Москва — столица России.\n"
             "\n"
             "价格是三块五。\n"
             "A thousand people came.\n")


def read_like_sacrebleu_cli(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        return [line.rstrip() for line in f]


def write_cli_fixture():
    files = {"cli_hyp.txt": CLI_HYP, "cli_ref_a.txt": CLI_REF_A, "cli_ref_b.txt": CLI_REF_B}
    for name, text in files.items():
        with open(os.path.join(OUT, name), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    hyps = read_like_sacrebleu_cli(os.path.join(OUT, "cli_hyp.txt"))
    ref_a = read_like_sacrebleu_cli(os.path.join(OUT, "cli_ref_a.txt"))
    ref_b = read_like_sacrebleu_cli(os.path.join(OUT, "cli_ref_b.txt"))
    return {
        "hyp": "cli_hyp.txt",
        "refs": ["cli_ref_a.txt", "cli_ref_b.txt"],
        "one_ref": all_metrics(hyps, [ref_a]),
        "two_refs": all_metrics(hyps, [ref_a, ref_b]),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = Tokenizer13a()
    cases = dict(CASES)
    cases["gettext_dev"] = gettext_case()
    out = {
        "generator": "tests/golden/make_metric_fixtures.py",
        "versions": {
            "python": sys.version.split()[0],
            "unicode": unicodedata.unidata_version,
            "sacrebleu": metadata.version("sacrebleu"),
            "rouge_score": metadata.version("rouge-score"),
        },
        "tokenize_13a": [{"input": s, "output": tok(s)} for s in TOKENIZER_INPUTS],
        "rouge_tokenize": [{"input": s, "tokens": SCORER._tokenizer.tokenize(s)}
                           for s in ROUGE_TOKENIZER_INPUTS],
        "squad_normalize": [{"input": s, "output": squad_normalize(s)} for s in SQUAD_INPUTS],
        "rouge_l_pairs": [
            {"hyp": h, "ref": r, **{k: getattr(SCORER.score(r, h)["rougeL"], k)
                                    for k in ("precision", "recall", "fmeasure")}}
            for h, r in ROUGE_PAIRS],
        "cases": [{"name": name, "hyps": hyps, "refs": refs, **all_metrics(hyps, refs)}
                  for name, (hyps, refs) in cases.items()],
        "cli": write_cli_fixture(),
    }
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(out['cases'])} cases to {OUT}")


if __name__ == "__main__":
    main()
