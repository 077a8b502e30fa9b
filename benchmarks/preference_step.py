#!/usr/bin/env python3
"""CPU throughput of preference steps against an SFT step of the same tokens (docs/preference.md).

Every system trains the same config-defined model (the translation example's: hidden 128, 4
layers, byte tokenizer, f32) on the same rows: global batch B pairs = 2B padded rows of
data.seq_len tokens, from datasets/gettext-translations/train.pairs.jsonl. The SFT reference
trains on the same prompts with the chosen and the rejected answer as two prompt/completion
records (2B rows per step), so every system processes the same tokens per step:
  sft        objective causal_lm (one fused forward+backward per micro-batch)
  cpo        objective cpo (forward_token_losses + backward_rows, no reference)
  dpo_full   objective dpo, full fine-tuning, the reference precomputed before the first step
             (its one-time pass is reported apart; steps carry no reference forward)
  dpo_frozen objective dpo, full fine-tuning, objective.reference: model (a frozen copy's forward
             in every step)
  sft_lora / dpo_lora   the same with LoRA (all linears, rank 8; DPO's reference: adapters off)
Systems run interleaved, `--repeats` times; each run's median tokens/s over its steps after the
first counts, and the table shows the median over repeats and the ratio to the SFT of its kind.

  python3 benchmarks/preference_step.py [--tailor build/tailor] [--steps 6] [--repeats 2]
Writes benchmarks/results/preference_step.json.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRS = os.path.join(ROOT, "datasets", "gettext-translations", "train.pairs.jsonl")

MODEL = ("model: {family: llama, vocab_size: 257, hidden_size: 128, num_layers: 4, num_heads: 4,\n"
         "        num_kv_heads: 2, intermediate_size: 352, max_position_embeddings: 256}\n")
PASS_SECONDS = {}  # system -> the precomputed reference's pass, seconds per run
LORA = "peft: {method: lora, rank: 8, alpha: 16, target_modules: [all-linear]}\n"


def config(out, data, objective, rows_per_item, args, lora, reference=None):
    items = args.pairs * 2 // rows_per_item  # the same rows per step for every system
    return (f"output: {{dir: {out}}}\n" + MODEL +
            f"data: {{train: {data}, format: jsonl, tokenizer: byte, seq_len: {args.seq_len}, "
            f"packing: pad, overlong: truncate, cache_dir: {out}/cache}}\n"
            f"objective: {{type: {objective}"
            + (f", reference: {reference}" if reference else "") + "}\n"
            f"train: {{steps: {args.steps}, seed: 1, global_batch: {items}, log_every: 1}}\n"
            "optimizer: {lr: 1.0e-4}\n"
            f"checkpoint: {{every_steps: 0}}\nruntime: {{device: cpu, threads: {args.threads}}}\n" +
            (LORA if lora else ""))


def sft_data(path):
    with open(PAIRS, encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        for line in f:
            p = json.loads(line)
            for side in ("chosen", "rejected"):
                out.write(json.dumps({"prompt": p["prompt"], "completion": p[side]},
                                     ensure_ascii=False) + "\n")


def run(args, tmp, name, objective, lora, reference=None):
    data = os.path.join(tmp, "sft.jsonl") if objective == "causal_lm" else PAIRS
    out = os.path.join(tmp, name)
    cfg = os.path.join(tmp, name + ".yaml")
    with open(cfg, "w") as f:
        f.write(config(out, data, objective, 1 if objective == "causal_lm" else 2, args, lora,
                       reference))
    # A fresh cache per run, so the precomputed reference's pass runs (and is timed) every time.
    shutil.rmtree(os.path.join(out, "cache"), ignore_errors=True)
    log = subprocess.run([args.tailor, "train", cfg, "--overwrite"], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    m = re.search(r"reference: (\d+) rows in ([0-9.]+) s", log)
    if m:
        PASS_SECONDS.setdefault(name, []).append(float(m.group(2)))
    with open(os.path.join(out, "metrics.jsonl")) as f:
        steps = [json.loads(l) for l in f if '"tokens_per_s"' in l]
    return statistics.median(s["tokens_per_s"] for s in steps[1:]), steps[-1]["tokens"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tailor", default=os.path.join(ROOT, "build", "tailor"))
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=8, help="pairs per step")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    systems = [("sft", "causal_lm", False, None), ("cpo", "cpo", False, None),
               ("dpo_full", "dpo", False, None), ("dpo_frozen", "dpo", False, "model"),
               ("sft_lora", "causal_lm", True, None), ("dpo_lora", "dpo", True, None)]
    results = {name: [] for name, _, _, _ in systems}
    tokens = {}
    with tempfile.TemporaryDirectory() as tmp:
        sft_data(os.path.join(tmp, "sft.jsonl"))
        for _ in range(args.repeats):
            for name, objective, lora, reference in systems:
                tps, tok = run(args, tmp, name, objective, lora, reference)
                results[name].append(tps)
                tokens[name] = tok
    print(f"{'system':<10} {'tokens/step':>11} {'tokens/s':>10} {'vs SFT':>7}")
    table = {}
    for name, _, lora, _ in systems:
        tps = statistics.median(results[name])
        base = statistics.median(results["sft_lora" if lora else "sft"])
        table[name] = {"tokens_per_step": tokens[name], "tokens_per_s": tps, "ratio_to_sft": tps / base,
                       "runs": results[name]}
        if name in PASS_SECONDS:
            table[name]["reference_pass_s"] = statistics.median(PASS_SECONDS[name])
        extra = (f"  (reference pass {table[name]['reference_pass_s']:.2f} s once)"
                 if "reference_pass_s" in table[name] else "")
        print(f"{name:<10} {tokens[name]:>11} {tps:>10.1f} {tps / base:>7.3f}{extra}")
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "preference_step.json"), "w") as f:
        json.dump({"args": vars(args), "systems": table}, f, indent=1)
    print(json.dumps({"preference_step": {k: v["ratio_to_sft"] for k, v in table.items()}}))


if __name__ == "__main__":
    main()
