#!/usr/bin/env python3
"""GPU training throughput: Tailor against Hugging Face transformers/PEFT on the same warm machine.

Runs benchmarks/train_step.cpp (tailor_bench_train_step) and benchmarks/train_step_hf.py for full
fine-tuning and LoRA on all linear layers at one shape, prints a table with tokens/s, MFU, peak
memory and the ratios the GPU-performance issue sets as targets, and writes all results as JSON.

    python3 benchmarks/train_step_compare.py --stage bench-1b --build build-gpu --out DIR
    python3 benchmarks/train_step_compare.py --stage bench-8b ...

bench-1b: Llama-3.2-1B shapes, B=8, T=1024: Tailor full and LoRA r=16; HF torch.compile full and
LoRA (the bar); HF eager too with --with-eager; Tailor with activation recomputation (selective,
full) with --with-recompute. bench-8b: Llama-3.1-8B shapes, T=2048, LoRA r=16
at B=1 and B=2, Tailor against HF+PEFT eager. Each system runs in its own process, one after the
other, so each starts with an empty GPU.
"""
import argparse
import json
import os
import subprocess
import sys


def run(cmd, log, timeout):
    print("+ " + " ".join(cmd), flush=True)
    with open(log, "w") as f:
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"  timed out after {timeout} s (log {log})", flush=True)
            return None
    if r.returncode != 0:
        print(f"  failed with exit {r.returncode} (log {log})", flush=True)
        return None
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", default="bench-1b", choices=["bench-1b", "bench-8b"])
    ap.add_argument("--build", default="build-gpu")
    ap.add_argument("--out", default=".")
    ap.add_argument("--with-eager", action="store_true")
    ap.add_argument("--with-recompute", action="store_true",
                    help="also Tailor full fine-tuning with train.recompute selective and full")
    ap.add_argument("--timeout", type=int, default=150, help="seconds per run")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tailor = os.path.join(a.build, "benchmarks", "tailor_bench_train_step")
    hf = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_step_hf.py")]

    runs = []  # (label, command)
    if a.stage == "bench-1b":
        shape = ["--preset", "llama-3.2-1b", "--batch", "8", "--seq", "1024"]
        runs += [("tailor full", [tailor, *shape, "--device", "cuda"]),
                 ("tailor lora", [tailor, *shape, "--device", "cuda", "--lora-rank", "16"]),
                 ("hf-compile full", [*hf, *shape, "--compile"]),
                 ("hf-compile lora", [*hf, *shape, "--compile", "--lora-rank", "16"])]
        if a.with_recompute:
            runs += [(f"tailor full rc={m}", [tailor, *shape, "--device", "cuda", "--recompute", m])
                     for m in ("selective", "full")]
        if a.with_eager:
            runs += [("hf-eager full", [*hf, *shape]),
                     ("hf-eager lora", [*hf, *shape, "--lora-rank", "16"])]
    else:
        for b in ("1", "2"):
            shape = ["--preset", "llama-3.1-8b", "--batch", b, "--seq", "2048", "--lora-rank", "16"]
            runs += [(f"tailor lora B={b}", [tailor, *shape, "--device", "cuda", "--warmup", "1",
                                             "--steps", "4"]),
                     (f"hf-eager lora B={b}", [*hf, *shape, "--warmup", "1", "--steps", "4"])]

    results = {}
    for label, cmd in runs:
        log = os.path.join(a.out, label.replace(" ", "_").replace("=", "") + ".log")
        results[label] = run(cmd, log, a.timeout)

    print(f"\n{'system':<22}{'step ms':>10}{'tokens/s':>12}{'MFU':>8}{'peak GiB':>10}")
    for label, r in results.items():
        if r is None:
            print(f"{label:<22}{'failed':>10}")
            continue
        print(f"{label:<22}{r['step_s'] * 1e3:>10.1f}{r['tokens_per_s']:>12,.0f}"
              f"{r['mfu'] * 100:>7.1f}%{r['peak_memory_gib']:>10.1f}")

    def ratio(x, y, key="tokens_per_s"):
        rx, ry = results.get(x), results.get(y)
        return None if not rx or not ry else rx[key] / ry[key]

    ratios = {}
    if a.stage == "bench-1b":
        ratios = {
            "full: tailor / hf-compile (target >= 1.2)": ratio("tailor full", "hf-compile full"),
            "lora: tailor / hf-compile (target >= 1.8)": ratio("tailor lora", "hf-compile lora"),
            "lora / full, tailor (target >= 1.3)": ratio("tailor lora", "tailor full"),
            "lora memory: tailor / hf-compile (target <= 0.75)":
                ratio("tailor lora", "hf-compile lora", "peak_memory_gib"),
        }
    else:
        for b in ("1", "2"):
            ratios[f"B={b}: tailor / hf-eager (target >= 2)"] = \
                ratio(f"tailor lora B={b}", f"hf-eager lora B={b}")
            ratios[f"B={b}: memory tailor / hf-eager (target <= 1)"] = \
                ratio(f"tailor lora B={b}", f"hf-eager lora B={b}", "peak_memory_gib")
    print()
    for k, v in ratios.items():
        print(f"{k:<52}{'n/a' if v is None else f'{v:.2f}':>8}")
    with open(os.path.join(a.out, f"{a.stage}.json"), "w") as f:
        json.dump({"stage": a.stage, "results": results, "ratios": ratios}, f, indent=1)
    return 0 if all(r is not None for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
