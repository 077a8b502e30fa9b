#!/usr/bin/env python3
"""Builds the tokenizer fixtures of tests/data/tokenizer_test.cpp with the reference libraries.

The Hub is not reachable here, so each family's tokenizer is rebuilt from that family's exact
normalizer / pre-tokenizer / decoder / added-token settings over a small BPE trained locally with
Hugging Face `tokenizers` on datasets/devils-dictionary plus tests/golden/tokenizers/
multilingual_train.txt. What the references compute (ids, decoded text, pre-tokenizer splits) is
recorded in tests/golden/tokenizers/expected.json; the C++ tests must reproduce it exactly.

Families (tests/golden/tokenizers/<family>/tokenizer.json):
  gpt2     ByteLevel pre-tokenizer (GPT-2 regex) + ByteLevel decoder; a normalized added token.
  llama3   Split(Llama-3 regex) + ByteLevel(use_regex=false), ignore_merges, Llama-3 special tokens.
  qwen2    NFC normalizer + Split(Qwen2 regex) + ByteLevel(use_regex=false); tokenizer_config.json.
  llama2   SentencePiece-style BPE with byte_fallback: Prepend("▁") + Replace(" ", "▁") normalizer,
           Replace/ByteFallback/Fuse/Strip decoder (what transformers writes for Llama-2).
  mistral  the same model with the Metaspace pre-tokenizer (prepend_scheme "first", split false),
           [INST] tokens and an lstrip/rstrip token.
  metaspace_digits  Metaspace (always, split) + Digits(individual) + Metaspace decoder.
  gemma    Gemma's settings on the same byte-fallback model: Replace(" ", "▁") normalizer with no
           dummy prefix (no Prepend), no pre-tokenizer, Replace/ByteFallback/Fuse decoder (no
           Strip), <bos> post-processor, <start_of_turn> / <end_of_turn> added tokens.
plus sentencepiece/tokenizer.model, trained with the `sentencepiece` package.

Usage: pip install tokenizers sentencepiece; python3 tests/golden/make_tokenizer_fixtures.py
Deterministic for fixed package versions (recorded in expected.json).

  make_tokenizer_fixtures.py --real DIR   for real downloaded models instead: in every directory
  under DIR holding a tokenizer.json (or only a tokenizer.model), writes tailor_expected_ids.json
  with the reference's ids and decodings of the test texts; the TAILOR_HF_DIR=DIR test compares.
"""
import json
import os

# One thread: the BPE trainer breaks ties between equally frequent pairs in a thread-dependent order.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import random
import shutil
import sys
import tempfile

import sentencepiece as spm
import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "tokenizers")

GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
            r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

VOCAB_SIZE = 1500
SP = "\u2581"

# The multilingual test text: Latin with diacritics, Cyrillic, Greek, Arabic, Hindi, Chinese,
# Japanese, Korean, emoji (ZWJ sequences, skin tones, flags), combining marks, whitespace runs,
# digit runs, contractions, and special tokens written in the text.
MULTILINGUAL = (
    "Hello, world! It's a naïve café — déjà vu at the Hôtel Ærø in Zürich.\n"
    "Привет, мир! Съешь же ещё этих мягких французских булок.\n"
    "Γειά σου Κόσμε! Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.\n"
    "مرحبا بالعالم! اللغة العربية جميلة.\n"
    "नमस्ते दुनिया! हिन्दी भाषा।\n"
    "你好，世界！我们今天去公园散步。\n"
    "こんにちは世界！カタカナとひらがな、漢字。\n"
    "안녕하세요 세계! 한국어는 한글로 씁니다.\n"
    "Emoji: 😀👍🏽 👨\u200d👩\u200d👧\u200d👦 🏳️\u200d🌈 🇺🇸 ❤️ 🤖\n"
    "Combining: e\u0301 a\u0308 n\u0303 Z\u0334\u0321a\u0337\u0353l\u0338\u0322g\u0335o\u0336 "
    "\u1100\u1161\u11a8 क\u093f\n"
    "Whitespace:\t\ttabs,  two spaces,     five spaces,\n\n\nthree newlines,\r\nCRLF, "
    "trailing   \n"
    "Digits: 0 7 42 123 2024 1234567 3.14159 1,000,000 ١٢٣٤ ４５６ ²³ ½ Ⅻ\n"
    "Contractions: I'm you're we've they'll she'd it's DON'T WE'LL IT'S\n"
)

CASES_COMMON = [
    "",
    " ",
    "   ",
    "a",
    "hello world",
    " hello world",
    "hello  world   ",
    "\t\tindented\n\tline\n",
    "line one\nline two\r\nline three\n\n\n",
    "x  \n\n  y\t\t",
    "It's I'M they'RE we'Ve you'LL he'd 'tis",
    "1234567890 12 345 6789",
    "naïve café Zürich Ærø façade",
    "e\u0301 vs \u00e9, a\u0308 vs \u00e4, \u1100\u1161 vs \uac00",
    "Привет мир",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "你好世界",
    "こんにちは世界",
    "안녕하세요 세계",
    "👨\u200d👩\u200d👧\u200d👦👍🏽🏳️\u200d🌈",
    "\u00a0nbsp\u3000ideographic\u2028line\x85nel\x1cfs\u200bzwsp",
    "▁already▁has▁metaspace ▁",
    "<0x41> literal byte token text",
    "ſ 'ſ K 'K",
    "it'ſa they'REa we'Vex I'Ma he'Dx 'LLy 'tx 'Tx 'sa",  # contraction, not ' + letters
    MULTILINGUAL,
]

FUZZ_POOL = (list("abcxyzABCXYZ") + list("0123456789") + [" "] * 6 + ["\t", "\n", "\r", "'"] * 2
             + list(".,!?\"-()#$%&*+/:;<=>@[]^_`{|}~")
             + ["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "LL", "\u017f", "\u212a"]
             + ["é", "e\u0301", "ñ", "ü", "Ж", "ж", "Ω", "ά", "ب", "ع", "\u064b", "क", "ि", "्",
                "中", "文", "日", "の", "カ", "한", "\u1100\u1161", "😀", "\u200d", "👨", "\ufe0f",
                "🏽", "🇺", "١", "٣", "５", "Ⅻ", "½", "²", "\u00a0", "\u3000", "\u2028", "\x85",
                "\x1c", "\u200b", "\ufeff", "▁", "\u0301", "\u0308"])


def fuzz_strings(seed, count, extra=()):
    rng = random.Random(seed)
    pool = FUZZ_POOL + list(extra)
    out = []
    for _ in range(count):
        n = rng.randint(1, 24)
        out.append("".join(rng.choice(pool) for _ in range(n)))
    return out


def training_lines():
    with open(os.path.join(ROOT, "datasets", "devils-dictionary", "devils_dictionary.txt"),
              encoding="utf-8") as f:
        english = f.read().splitlines()
    with open(os.path.join(OUT, "multilingual_train.txt"), encoding="utf-8") as f:
        multilingual = f.read().splitlines()
    # The multilingual sample is small: repeat it so its merges compete with English ones.
    return english + multilingual * 40


def train_byte_level(pre_tokenizer, normalizer=None, ignore_merges=False, specials=()):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2,
                                  special_tokens=list(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_lines(), trainer=trainer)
    return tok


def make_gpt2():
    tok = train_byte_level(pre_tokenizers.ByteLevel(add_prefix_space=False),
                           specials=["<|endoftext|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_tokens([AddedToken("New York", normalized=True, special=False)])
    return tok


def make_llama3():
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|eot_id|>"]
    tok = train_byte_level(
        pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]),
        ignore_merges=True, specials=specials)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    return tok


def make_qwen2():
    tok = train_byte_level(
        pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_RE), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]),
        normalizer=normalizers.NFC(), specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_tokens([AddedToken("caf\u00e9", normalized=True, special=False)])
    return tok


def train_sentencepiece_style():
    """A SentencePiece-like BPE: <unk> <s> </s>, then <0x00>..<0xFF>, then the learned pieces."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SP, prepend_scheme="always",
                                                 split=True)
    # A limited alphabet (so rarer characters take the byte fallback), chosen here: the trainer's
    # own limit_alphabet breaks frequency ties in a random order.
    counts = {}
    for line in training_lines():
        for ch in line.replace(" ", SP):
            counts[ch] = counts.get(ch, 0) + 1
    alphabet = sorted(counts, key=lambda ch: (-counts[ch], ord(ch)))[:120]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - 256, min_frequency=2,
                                  special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=alphabet, limit_alphabet=len(alphabet),
                                  show_progress=False)
    tok.train_from_iterator(training_lines(), trainer=trainer)
    spec = json.loads(tok.to_str())
    old = spec["model"]["vocab"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for token, _ in sorted(old.items(), key=lambda kv: kv[1]):
        if token not in vocab:
            vocab[token] = len(vocab)
    spec["model"]["vocab"] = vocab
    for t in spec["added_tokens"]:
        t["id"] = vocab[t["content"]]
    return spec


def sp_decoder():
    return {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": SP}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}


def bos_template():
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}


def make_llama2(base):
    spec = json.loads(json.dumps(base))
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": SP},
        {"type": "Replace", "pattern": {"String": " "}, "content": SP}]}
    spec["pre_tokenizer"] = None
    spec["decoder"] = sp_decoder()
    spec["post_processor"] = bos_template()
    # Merges in the older "a b" string form (the byte-level families keep the pair form).
    spec["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m
                               for m in spec["model"]["merges"]]
    text = json.dumps(spec, ensure_ascii=False, separators=(",", ":"))
    return Tokenizer.from_str(text), text


def make_mistral(base):
    spec = json.loads(json.dumps(base))
    spec["normalizer"] = None
    spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": SP, "prepend_scheme": "first",
                             "split": False}
    spec["decoder"] = sp_decoder()
    spec["post_processor"] = bos_template()
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.add_special_tokens([AddedToken("[INST]", special=True, normalized=False),
                            AddedToken("[/INST]", special=True, normalized=False),
                            AddedToken("<mask>", special=True, normalized=False, lstrip=True,
                                       rstrip=True)])
    return tok


def make_metaspace_digits(base):
    spec = json.loads(json.dumps(base))
    spec["normalizer"] = None
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Metaspace", "replacement": SP, "prepend_scheme": "always", "split": True},
        {"type": "Digits", "individual_digits": True}]}
    spec["decoder"] = {"type": "Metaspace", "replacement": SP, "prepend_scheme": "always",
                       "split": True}
    return Tokenizer.from_str(json.dumps(spec))


def make_gemma(base):
    spec = json.loads(json.dumps(base))
    spec["normalizer"] = {"type": "Replace", "pattern": {"String": " "}, "content": SP}
    spec["pre_tokenizer"] = None
    spec["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": SP}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}]}
    spec["post_processor"] = bos_template()
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.add_special_tokens([AddedToken("<start_of_turn>", special=True, normalized=False),
                            AddedToken("<end_of_turn>", special=True, normalized=False)])
    return tok


def family_cases(tok, name, specials):
    texts = list(CASES_COMMON)
    for s in specials:
        texts += [s, f"{s}hello", f"hello{s}", f"a {s} b", f"{s}{s} x", f"\n{s}\n"]
    texts += fuzz_strings(hash_seed(name), 60, extra=specials)
    cases = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        cases.append({"text": t, "ids": ids,
                      "decoded": tok.decode(ids, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    return cases


def decode_cases(tok, name):
    """Decoding of arbitrary id sequences: partial UTF-8 (lossy replacement), stray byte-fallback
    tokens, special tokens, ids outside the vocabulary (dropped)."""
    rng = random.Random(hash_seed(name) + 1)
    n = tok.get_vocab_size(with_added_tokens=True)
    low = list(range(0, min(n, 300)))  # specials and byte tokens live at the bottom
    out = []
    for _ in range(40):
        ids = [rng.choice(low) if rng.random() < 0.5 else rng.randrange(n)
               for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.2:
            ids.insert(rng.randrange(len(ids) + 1), n + 5)
        out.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                    "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    return out


def hash_seed(name):
    return sum((i + 1) * ord(c) for i, c in enumerate(name))


def write_real_expectations(root):
    count = 0
    for dirpath, _, files in os.walk(root, followlinks=True):
        if dirpath[len(root):].count(os.sep) > 4:
            continue
        cases = []
        if "tokenizer.json" in files:
            tok = Tokenizer.from_file(os.path.join(dirpath, "tokenizer.json"))
            for t in CASES_COMMON:
                ids = tok.encode(t, add_special_tokens=False).ids
                cases.append({"text": t, "ids": ids,
                              "decoded": tok.decode(ids, skip_special_tokens=False)})
        elif "tokenizer.model" in files:
            sp = spm.SentencePieceProcessor(model_file=os.path.join(dirpath, "tokenizer.model"))
            for t in CASES_COMMON:
                ids = sp.encode(t)
                cases.append({"text": t, "ids": ids, "decoded": sp.decode(ids)})
        else:
            continue
        out = os.path.join(dirpath, "tailor_expected_ids.json")
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"versions": {"tokenizers": tokenizers.__version__,
                                    "sentencepiece": spm.__version__}, "cases": cases},
                      f, ensure_ascii=False)
        print(f"wrote {out}")
        count += 1
    if count == 0:
        sys.exit(f"make_tokenizer_fixtures: no tokenizer.json or tokenizer.model under {root}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--real":
        write_real_expectations(os.path.abspath(sys.argv[2]))
        return
    os.makedirs(OUT, exist_ok=True)
    expected = {"versions": {"tokenizers": tokenizers.__version__,
                             "sentencepiece": spm.__version__,
                             "python": sys.version.split()[0]},
                "families": {}, "splits": {}}
    base = train_sentencepiece_style()
    families = {
        "gpt2": (make_gpt2(), ["<|endoftext|>", "New York"]),
        "llama3": (make_llama3(), ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>"]),
        "qwen2": (make_qwen2(), ["<|im_start|>", "<|im_end|>", "caf\u00e9"]),
        "llama2": (make_llama2(base), ["<s>", "</s>", "<unk>"]),
        "mistral": (make_mistral(base), ["[INST]", "[/INST]", "<mask>", "</s>"]),
        "metaspace_digits": (make_metaspace_digits(base), ["<s>", "</s>"]),
        "gemma": (make_gemma(base), ["<start_of_turn>", "<end_of_turn>", "<s>"]),
    }
    for name, (tok, specials) in families.items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        if isinstance(tok, tuple):  # written as built (llama2 keeps its "a b" merges)
            tok, text = tok
            with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
                f.write(text)
        else:
            tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
        entry = {"vocab_size": tok.get_vocab_size(with_added_tokens=True),
                 "cases": family_cases(tok, name, specials),
                 "decode_cases": decode_cases(tok, name)}
        expected["families"][name] = entry
        print(f"{name}: {entry['vocab_size']} tokens, "
              f"{os.path.getsize(os.path.join(d, 'tokenizer.json'))} bytes")
    with open(os.path.join(OUT, "qwen2", "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
                  f, indent=1)
        f.write("\n")

    # Pre-tokenizer splits of each pattern, by `tokenizers` (Oniguruma) itself.
    split_texts = CASES_COMMON + fuzz_strings(7, 250)
    for name, pattern in (("gpt2", GPT2_RE), ("llama3", LLAMA3_RE), ("qwen2", QWEN2_RE)):
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)
        expected["splits"][name] = {
            "regex": pattern,
            "cases": [{"text": t, "pieces": [p for p, _ in split.pre_tokenize_str(t)]}
                      for t in split_texts]}

    # SentencePiece .model, trained by the sentencepiece package.
    sp_dir = os.path.join(OUT, "sentencepiece")
    os.makedirs(sp_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Relative paths: the trainer records them in the model, which must not depend on tmp.
        cwd = os.getcwd()
        os.chdir(tmp)
        with open("corpus.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(training_lines()) + "\n")
        spm.SentencePieceTrainer.train(
            input="corpus.txt", model_prefix="sp", vocab_size=1000, model_type="bpe",
            byte_fallback=True, character_coverage=0.9995, num_threads=1, minloglevel=2,
            normalization_rule_name="identity",
            user_defined_symbols=["<|im_start|>"])
        shutil.copy("sp.model", os.path.join(sp_dir, "tokenizer.model"))
        os.chdir(cwd)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(sp_dir, "tokenizer.model"))
    sp_cases = []
    for t in CASES_COMMON + ["<|im_start|>user", "<s>not special</s>"] + fuzz_strings(11, 60):
        ids = sp.encode(t)
        sp_cases.append({"text": t, "ids": ids, "decoded": sp.decode(ids)})
    expected["sentencepiece"] = {"vocab_size": sp.get_piece_size(), "bos": sp.bos_id(),
                                 "eos": sp.eos_id(), "unk": sp.unk_id(), "cases": sp_cases}
    print(f"sentencepiece: {sp.get_piece_size()} pieces, "
          f"{os.path.getsize(os.path.join(sp_dir, 'tokenizer.model'))} bytes")

    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"expected.json: {os.path.getsize(os.path.join(OUT, 'expected.json'))} bytes")


if __name__ == "__main__":
    main()
