#!/usr/bin/env python3
"""Preference pairs from the gettext translation sample (docs/preference.md, configs/translation-cpo.yaml).

For every English -> German record of datasets/gettext-translations/{train,dev}.sample.jsonl the
human translation is the chosen answer and a corrupted copy of it the rejected one: a word
dropped, a word repeated, or two words swapped (chosen by a seeded generator; one-word
translations are repeated). The prompt is the instruction Tailor's translation template writes,
so the pairs read like the translation records the SFT model was trained on.

  python3 datasets/make_preference_pairs.py      # writes {train,dev}.pairs.jsonl next to them

Standard library only; the output is the same on every run.
"""
import json
import os
import random

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gettext-translations")


def corrupt(words, rng):
    if len(words) == 1:
        return words + words, "repeated"
    kind = rng.choice(["dropped", "repeated", "shuffled"])
    w = list(words)
    i = rng.randrange(len(w))
    if kind == "dropped":
        del w[i]
    elif kind == "repeated":
        w.insert(i, w[i])
    else:
        j = rng.randrange(len(w) - 1)
        w[j], w[j + 1] = w[j + 1], w[j]
        if w == words:  # two equal words swapped: repeat one instead
            w.insert(i, w[i])
            kind = "repeated"
    return w, kind


def convert(name, seed):
    rng = random.Random(seed)
    src = os.path.join(HERE, f"{name}.sample.jsonl")
    dst = os.path.join(HERE, f"{name}.pairs.jsonl")
    n = 0
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
        for line in f:
            r = json.loads(line)
            if r["src_lang"] != "eng_Latn" or r["tgt_lang"] != "deu_Latn":
                continue
            words = r["tgt"].split(" ")
            rejected, kind = corrupt(words, rng)
            pair = {
                "prompt": f"Translate from English to German:\n{r['src']}\n",
                "chosen": r["tgt"],
                "rejected": " ".join(rejected),
                "corruption": kind,
                "origin": r.get("origin", ""),
            }
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")
            n += 1
    print(f"{dst}: {n} pairs")


if __name__ == "__main__":
    convert("train", 23)
    convert("dev", 24)
