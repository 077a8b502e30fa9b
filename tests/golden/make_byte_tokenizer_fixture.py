#!/usr/bin/env python3
"""What Hugging Face makes of the byte tokenizer's files that Tailor writes into every export of a
byte-tokenizer model (data::ByteTokenizer::hf_files): tests/data/tokenizer_test.cpp checks that
today's writer still produces tests/golden/tokenizers/byte/{tokenizer.json,tokenizer_config.json}
byte for byte, and that Tailor's HfTokenizer reading them gives the ids transformers gives here.

The two files are copied from an export (`tailor train configs/quickstart.yaml train.steps=1
output.dir=/tmp/b && cp /tmp/b/export/tokenizer*.json tests/golden/tokenizers/byte/`, after
changing the writer). Then: pip install transformers tokenizers;
python3 tests/golden/make_byte_tokenizer_fixture.py  -> tests/golden/tokenizers/byte/expected.json
"""
import json
import os

import tokenizers
import transformers
from transformers import AutoTokenizer

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenizers", "byte")

TEXTS = [
    "",
    "a",
    "Hello, world!",
    "  two leading spaces and\ttabs\nand newlines\r\n",
    "Wörterbuch: Übersetzung ins Deutsche",
    "日本語のテキスト",
    "emoji 🙂 and math ∑",
    "control \x01\x02\x1f and DEL \x7f",
    "digits 1234567890 and punctuation !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "an end token <|endoftext|> inside text",
    "".join(chr(c) for c in range(32, 127)),
    "".join(chr(c) for c in range(160, 256)),
]


def main():
    tok = AutoTokenizer.from_pretrained(HERE)
    cases = []
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=True)
        cases.append({
            "text": text,
            "ids": ids,
            "decoded": tok.decode(ids),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })
    out = {
        "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
        "class": type(tok).__name__,
        "vocab_size": len(tok),
        "eos_token_id": tok.eos_token_id,
        "bos_token_id": tok.bos_token_id,
        "cases": cases,
    }
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
