#!/usr/bin/env python3
"""Summarization data from Debian package metadata: a package's long description -> its synopsis.

Reads the dpkg status file of a Debian system (default /var/lib/dpkg/status: the packages
installed there, each with its `Description:` field, whose first line is the one-line synopsis
and whose continuation lines are the long description) and writes, deterministically (packages
sorted by name), datasets/debian-packages/train.jsonl and dev.jsonl: records
{"prompt": "Description: <the long description's first paragraph>\nSynopsis: ",
"completion": <synopsis>} — every tenth
kept package goes to dev. Kept: first paragraphs of 60-190 characters and synopses of 10-60 (a
record fits the 256 byte tokens of the quickstart model the recipes start from), neither a
transitional or
dummy package; library packages whose synopsis repeats another's are kept once. Standard library
only. Run from the repository root:

    python3 datasets/make_package_summaries.py [--status /var/lib/dpkg/status]
"""
import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "debian-packages"


def packages(status):
    """(name, synopsis, long description) of each stanza of a dpkg status file."""
    for stanza in status.read_text(encoding="utf-8").split("\n\n"):
        name, synopsis, body, in_desc = None, None, [], False
        for line in stanza.split("\n"):
            if line.startswith("Package: "):
                name = line[len("Package: "):].strip()
                in_desc = False
            elif line.startswith("Description: "):
                synopsis = line[len("Description: "):].strip()
                in_desc = True
            elif in_desc and line.startswith(" "):
                body.append(line[1:])
            else:
                in_desc = False
        if name and synopsis and body:
            yield name, synopsis, long_text(body)


def long_text(lines):
    """Debian's description markup as plain text: ' .' separates paragraphs, lines that start
    with a further space are verbatim (kept as their own lines), the rest are joined."""
    paragraphs, current = [], []
    for line in lines:
        if line.strip() == ".":
            if current:
                paragraphs.append(" ".join(current))
            current = []
        elif line.startswith(" "):
            current.append("\n" + line.strip())
        else:
            current.append(line.strip())
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(p.replace(" \n", "\n").strip() for p in paragraphs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--status", default="/var/lib/dpkg/status")
    args = ap.parse_args()
    seen, kept = set(), []
    for name, synopsis, text in sorted(packages(Path(args.status))):
        low = synopsis.lower()
        if "transitional" in low or "dummy" in low:
            continue
        text = text.split("\n")[0]  # the first paragraph: what the package is
        if not (60 <= len(text) <= 190 and 10 <= len(synopsis) <= 60):
            continue
        if low in seen:
            continue
        seen.add(low)
        kept.append({"prompt": f"Description: {text}\nSynopsis: ", "completion": synopsis})
    OUT.mkdir(exist_ok=True)
    with open(OUT / "train.jsonl", "w", encoding="utf-8") as train, \
            open(OUT / "dev.jsonl", "w", encoding="utf-8") as dev:
        for i, record in enumerate(kept):
            (dev if i % 10 == 9 else train).write(json.dumps(record, ensure_ascii=False) + "\n")
    n_dev = len(kept) // 10
    print(f"{len(kept)} packages: {len(kept) - n_dev} train, {n_dev} dev")


if __name__ == "__main__":
    main()
