#!/usr/bin/env python3
"""Encode throughput: Tailor's tokenizers against Hugging Face `tokenizers`, on the same text.

For each tokenizer (default: the family fixtures in tests/golden/tokenizers, i.e. GPT-2, Llama-3,
Qwen2, Llama-2 and Mistral styles), both systems encode the same UTF-8 text line by line on ONE
thread (RAYON_NUM_THREADS=1; the reference gets the whole list through encode_batch, so Python's
per-call overhead is not counted against it), without special tokens, after one warm-up pass that
fills both BPE caches. Reported: MB/s of input text (median over --repeats passes) for each system
and the ratio tailor / tokenizers (above 1: Tailor is faster). The ids are compared too, through an
FNV-1a hash of all of them, and a mismatch is an error (exit 1).

Text: datasets/devils-dictionary (English) plus tests/golden/tokenizers/multilingual_train.txt,
repeated --multilingual-repeats times (default: about a third of the bytes are non-English).

Usage: benchmarks/tokenizer_encode.py [--bench build/benchmarks/tailor_bench_tokenizer_encode]
       [--tokenizer PATH ...] [--repeats 5] [--json benchmarks/results/tokenizer_encode.json]
Needs: pip install tokenizers (and the benchmark binary, built with TAILOR_BUILD_BENCHMARKS=ON).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tokenizers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOLDEN = os.path.join(ROOT, "tests", "golden", "tokenizers")
DEFAULT_FAMILIES = ["gpt2", "llama3", "qwen2", "llama2", "mistral"]


def fnv1a(ids_lists):
    h = 1469598103934665603
    for ids in ids_lists:
        for i in ids:
            for b in (i & 0xFFFFFFFF).to_bytes(4, "little"):
                h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def build_text(multilingual_repeats):
    with open(os.path.join(ROOT, "datasets", "devils-dictionary", "devils_dictionary.txt"),
              encoding="utf-8") as f:
        english = f.read().splitlines()
    with open(os.path.join(GOLDEN, "multilingual_train.txt"), encoding="utf-8") as f:
        multilingual = f.read().splitlines()
    return english + multilingual * multilingual_repeats


def time_reference(path, lines, repeats):
    tok = tokenizers.Tokenizer.from_file(path)
    encs = tok.encode_batch(lines, add_special_tokens=False)   # warm-up, and the ids
    ids = [e.ids for e in encs]
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tok.encode_batch(lines, add_special_tokens=False)
        seconds.append(time.perf_counter() - t0)
    return {"system": "tokenizers", "version": tokenizers.__version__,
            "tokens": sum(len(x) for x in ids), "ids_fnv1a": fnv1a(ids), "seconds": seconds}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "benchmarks",
                                                    "tailor_bench_tokenizer_encode"))
    ap.add_argument("--tokenizer", action="append",
                    help="tokenizer.json to measure (repeatable); default: the family fixtures")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--multilingual-repeats", type=int, default=40)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "tokenizer_encode.json"))
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        sys.exit(f"tokenizer_encode: {args.bench} not found (build with TAILOR_BUILD_BENCHMARKS=ON "
                 "and pass --bench)")
    paths = args.tokenizer or [os.path.join(GOLDEN, f, "tokenizer.json") for f in DEFAULT_FAMILIES]
    lines = build_text(args.multilingual_repeats)
    n_bytes = sum(len(line.encode("utf-8")) for line in lines)

    results = []
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt") as tmp:
        tmp.write("\n".join(lines) + "\n")
        tmp.flush()
        for path in paths:
            name = os.path.basename(os.path.dirname(path)) or path
            ref = time_reference(path, lines, args.repeats)
            proc = subprocess.run([args.bench, "--tokenizer", path, "--text", tmp.name,
                                   "--repeats", str(args.repeats)],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit(f"tokenizer_encode: {args.bench} failed on {path}: {proc.stderr.strip()}")
            ours = json.loads(proc.stdout.strip().splitlines()[-1])
            if ours["bytes"] != n_bytes:
                sys.exit(f"tokenizer_encode: byte counts differ ({ours['bytes']} vs {n_bytes})")
            same = ours["tokens"] == ref["tokens"] and ours["ids_fnv1a"] == ref["ids_fnv1a"]
            mbps_t = n_bytes / statistics.median(ours["seconds"]) / 1e6
            mbps_r = n_bytes / statistics.median(ref["seconds"]) / 1e6
            results.append({"tokenizer": name, "path": os.path.relpath(path, ROOT),
                            "tokens": ref["tokens"], "ids_equal": same,
                            "tailor_mb_per_s": mbps_t, "tokenizers_mb_per_s": mbps_r,
                            "ratio": mbps_t / mbps_r, "tailor": ours, "reference": ref})

    print(f"{n_bytes / 1e6:.2f} MB of text, {len(lines)} lines, one thread, "
          f"median of {args.repeats} passes")
    print(f"{'tokenizer':<12}{'tokens':>10}{'ids equal':>11}{'Tailor MB/s':>13}"
          f"{'HF MB/s':>10}{'ratio':>8}")
    for r in results:
        print(f"{r['tokenizer']:<12}{r['tokens']:>10}{str(r['ids_equal']):>11}"
              f"{r['tailor_mb_per_s']:>13.2f}{r['tokenizers_mb_per_s']:>10.2f}{r['ratio']:>8.2f}")
    record = {"benchmark": "tokenizer_encode",
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpus": os.cpu_count()},
              "text_bytes": n_bytes, "lines": len(lines), "repeats": args.repeats,
              "threads": 1, "tokenizers_version": tokenizers.__version__, "results": results}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"wrote {args.json}")
    if not all(r["ids_equal"] for r in results):
        sys.exit("tokenizer_encode: ids differ from tokenizers' (see ids_equal)")


if __name__ == "__main__":
    main()
