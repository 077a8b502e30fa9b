#!/usr/bin/env python3
"""Question answering and creative-writing data from The Devil's Dictionary (public domain).

From the usable entries of datasets/devils-dictionary/devils_dictionary.txt (the ones
make_devils_chat.py uses: a headword and the first sentence of its definition, 20-100
characters), deterministically, standard library only:

  qa.train.jsonl / qa.dev.jsonl        {"prompt": "<Word>: <definition>\nWhat part of speech is
                                        <Word>?\n", "completion": "noun"} —
                                        a short answer (noun, verb, adjective or adverb, from the
                                        entry's own "n.", "v.t.", "adj.", ... mark), scored by exact
                                        match
  qa.cot.train.jsonl / qa.cot.dev.jsonl the same questions with a chain of thought, a
                                        "rationale" written from the answer ('The definition
                                        begins "To make or ...": it names an action.'), which the
                                        model learns to write before its answer
  qa.shots.jsonl                       24 more such records (definitions of at most 45
                                        characters, so a demonstration fits beside a question): the pool few-shot examples are drawn
                                        from (data.template.few_shot_file, prompt_search few_shot)
  define.train.jsonl / define.dev.jsonl {"prompt": "Define <Word>.\n", "completion": "<definition>"} — a
                                        creative-writing task: a definition in Bierce's manner

Every tenth entry goes to dev, short ones at offsets 4 and 6 of each ten to the shot pool (24), the
others to
train; the QA and definition files split the same entries. Run from the repository root:

    python3 datasets/make_devils_tasks.py
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_devils_chat import ENTRY, ROOT, first_sentence  # noqa: E402

PART = {"n.": "noun", "v.": "verb", "v.t.": "verb", "v.i.": "verb", "adj.": "adjective",
        "adv.": "adverb"}
WHAT = {"noun": "a thing or a person", "verb": "an action", "adjective": "a quality",
        "adverb": "a manner"}


def entries():
    """(Word, part of speech, definition) of the entries make_devils_chat.py uses whose mark is
    one of PART's."""
    text = (ROOT / "devils_dictionary.txt").read_text(encoding="ascii")
    for para in text.split("\n\n"):
        m = ENTRY.match(para.strip())
        if not m or m.group(2) not in PART:
            continue
        word, definition = m.group(1), first_sentence(m.group(3))
        if 20 <= len(definition) <= 100 and "_" not in definition and "[" not in definition:
            yield word.capitalize(), PART[m.group(2)], definition


def write(name, records):
    with open(ROOT / name, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    pool = list(entries())
    split = {"train": [], "dev": [], "shots": []}
    for i, entry in enumerate(pool):
        if i % 10 == 9:
            split["dev"].append(entry)
        elif i % 10 in (4, 6) and len(split["shots"]) < 24 and len(entry[2]) <= 45:
            split["shots"].append(entry)
        else:
            split["train"].append(entry)

    def qa(word, part, definition):
        return {"prompt": f"{word}: {definition}\nWhat part of speech is {word}?\n",
                "completion": part}

    def qa_cot(word, part, definition):
        r = qa(word, part, definition)
        opening = " ".join(definition.split()[:3])
        r["rationale"] = f'The definition begins "{opening} ...": it names {WHAT[part]}.'
        return r

    write("qa.cot.train.jsonl", [qa_cot(*e) for e in split["train"]])
    write("qa.cot.dev.jsonl", [qa_cot(*e) for e in split["dev"]])
    write("qa.train.jsonl", [qa(*e) for e in split["train"]])
    write("qa.dev.jsonl", [qa(*e) for e in split["dev"]])
    write("qa.shots.jsonl", [qa(*e) for e in split["shots"]])
    write("define.train.jsonl",
          [{"prompt": f"Define {w}.\n", "completion": d} for w, _, d in split["train"]])
    write("define.dev.jsonl",
          [{"prompt": f"Define {w}.\n", "completion": d} for w, _, d in split["dev"]])
    counts = {}
    for _, part, _ in pool:
        counts[part] = counts.get(part, 0) + 1
    print(f"{len(pool)} entries: {len(split['train'])} train, {len(split['dev'])} dev, "
          f"{len(split['shots'])} shots; {counts}")


if __name__ == "__main__":
    main()
