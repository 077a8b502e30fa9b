#!/usr/bin/env python3
"""Small chat dataset from The Devil's Dictionary: "What does X mean?" -> Bierce's definition.

Reads datasets/devils-dictionary/devils_dictionary.txt (public domain; one entry per paragraph,
"WORD, n.  Definition ...") and writes datasets/devils-dictionary/chat.sample.jsonl: 200 chats in
Tailor's messages format, each a user question and the assistant's answer (the first sentence of
the definition), some with a second question about a word that follows. Deterministic
(entries taken at even steps through the dictionary), standard library only. Run from the
repository root:

    python3 datasets/make_devils_chat.py
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "devils-dictionary"
COUNT = 200

# "WORD, n.  text" / "WORD, v.t.  text" / "WORD, adj.  text"
ENTRY = re.compile(r"^([A-Z][A-Z' -]*[A-Z]), ((?:[a-z]+\.)+)\s+(.*)$", re.S)


def first_sentence(text):
    text = " ".join(text.split())
    m = re.match(r"(.+?[.!?])(?:\s|$)", text)
    return m.group(1) if m else text


def entries():
    text = (ROOT / "devils_dictionary.txt").read_text(encoding="ascii")
    for para in text.split("\n\n"):
        m = ENTRY.match(para.strip())
        if not m:
            continue
        word, definition = m.group(1), first_sentence(m.group(3))
        if 20 <= len(definition) <= 100 and "_" not in definition and "[" not in definition:
            yield word.capitalize(), definition


def main():
    pool = list(entries())
    step = len(pool) / COUNT
    picked = [int(i * step) for i in range(COUNT)]
    lines = []
    for n, i in enumerate(picked):
        word, answer = pool[i]
        messages = [{"role": "user", "content": f"What does {word} mean?"},
                    {"role": "assistant", "content": answer}]
        if n % 5 == 4 and len(answer) <= 60:
            # A follow-up about the next short entry, so that the chat fits 512 byte tokens.
            follow = next((e for e in pool[i + 1:i + 4] if len(e[1]) <= 50), None)
            if follow:
                messages += [{"role": "user", "content": f"And {follow[0]}?"},
                             {"role": "assistant", "content": follow[1]}]
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    out = ROOT / "chat.sample.jsonl"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{out}: {len(lines)} chats from {len(pool)} usable entries")


if __name__ == "__main__":
    main()
