#!/usr/bin/env python3
"""Side-by-side CPU greedy-generation benchmark: Tailor against Hugging Face `generate`.

What it measures
----------------
Tokens per second of greedy generation (f32, CPU, KV cache) of the same random-init LLaMA-shaped
model (default: vocab 32000, hidden 512, 4 layers, 8 query / 4 KV heads, SwiGLU 1408, untied
head: 44.6M parameters) on the same prompts (token ids, --batch prompts of --prompt-len tokens),
--new-tokens tokens each (no EOS: both systems generate exactly that many):

  * Tailor: build/benchmarks/tailor_bench_generate (eval::generate(), prefill + KV-cache decode)
  * PyTorch: transformers' model.generate(do_sample=False) in this process, default attention

Per run, `run` is the whole generation (prefill and every decode step) and `prefill` one forward
of the prompts alone; tokens/s = batch x new_tokens / run, and the decode rate is
batch x (new_tokens - 1) / (run - prefill) (the first new token comes from the prefill).

How it is run
-------------
This script writes the model with save_pretrained to a temporary directory (weights re-drawn
N(0, 1/fan_in), embeddings N(0, 1), so greedy choices are not near-ties and both systems should
produce the same tokens; the JSON records whether they did) and the prompts to ids.json. Then R
repeats (at least 3), each running both systems once after one warm-up run per system, the order
alternating between repeats (the development machine's 2 cores are shared, see cpu_step.py).
Both get --threads threads: torch.set_num_threads here, Tailor's --threads (its pool and one-
threaded OpenBLAS calls); OMP_NUM_THREADS / OPENBLAS_NUM_THREADS are set to match and
OMP_WAIT_POLICY=PASSIVE for both (for torch before it is imported: spin-waiting OpenMP threads
collapse whenever another process holds a core).

Output: a table on stdout and a JSON record (--json, default
benchmarks/results/generate_throughput.json) with machine info, date, git commit, the command,
both systems' raw times, medians and the ratio.

Needs python3 with torch and transformers (the pyenv python3 of the development machine).
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cpu_step  # noqa: E402  (machine_info, git_commit, quote, resolve_tailor)

DEFAULT_JSON = os.path.join(HERE, "results", "generate_throughput.json")


def parse_args(argv):
    p = argparse.ArgumentParser(description="Interleaved CPU generation benchmark: Tailor vs HF.")
    p.add_argument("--tailor", default=os.path.join("build", "benchmarks", "tailor_bench_generate"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=1408)
    p.add_argument("--json", default=DEFAULT_JSON)
    p.add_argument("--timeout", type=float, default=1800.0)
    args = p.parse_args(argv)
    if args.repeats < 3:
        p.error("--repeats must be at least 3")
    if min(args.batch, args.prompt_len, args.new_tokens, args.threads) < 1:
        p.error("--batch, --prompt-len, --new-tokens and --threads must be >= 1")
    return args


def build_model(args, directory):
    """Random-init LLaMA-shaped model, saved with save_pretrained (f32)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden,
                         intermediate_size=args.intermediate, num_hidden_layers=args.layers,
                         num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
                         max_position_embeddings=args.prompt_len + args.new_tokens + 16,
                         tie_word_embeddings=False, bos_token_id=None, eos_token_id=None,
                         pad_token_id=None)
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * noise)          # norm weights
            elif "embed_tokens" in name:
                p.copy_(noise)
            else:
                p.copy_(noise / p.shape[1] ** 0.5)  # [out, in]
    model.save_pretrained(directory, safe_serialization=True)
    model.train(False)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def run_tailor(args, binary, model_dir, ids_path, env):
    cmd = [binary, "--model-dir", model_dir, "--prompt-ids", ids_path, "--new-tokens",
           str(args.new_tokens), "--threads", str(args.threads), "--warmup", "1", "--repeats", "1"]
    sys.stderr.write("[generate] tailor: %s\n" % cpu_step.quote(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, timeout=args.timeout,
                          universal_newlines=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_torch(args, model, prompts):
    import torch
    ids = torch.tensor(prompts, dtype=torch.int64)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        t0 = time.perf_counter()
        model(input_ids=ids, attention_mask=mask, use_cache=True)
        prefill = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.new_tokens,
                             min_new_tokens=args.new_tokens, do_sample=False, num_beams=1)
        run = time.perf_counter() - t0
    sys.stderr.write("[generate] torch run: %.3f s (prefill %.3f s)\n" % (run, prefill))
    return run, prefill, out[:, ids.shape[1]:].tolist()


def summarise(name, runs, prefills, args):
    run = statistics.median(runs)
    prefill = statistics.median(prefills)
    decode = max(run - prefill, 1e-9)
    return {"system": name, "run_times_s": runs, "prefill_times_s": prefills,
            "median_run_s": run, "median_prefill_s": prefill,
            "tokens_per_s": args.batch * args.new_tokens / run,
            "decode_tokens_per_s": args.batch * (args.new_tokens - 1) / decode}


def main(argv=None):
    args = parse_args(argv)
    # Read by libgomp when torch loads: set first (spin-waiting torch collapses whenever another
    # process holds a core; see cpu_step.py).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE")
    binary = cpu_step.resolve_tailor(args.tailor)
    with tempfile.TemporaryDirectory(prefix="tailor-bench-generate-") as tmp:
        model_dir = os.path.join(tmp, "model")
        model = build_model(args, model_dir)
        params = sum(p.numel() for p in model.parameters())
        gen = torch.Generator().manual_seed(args.seed + 1)
        prompts = torch.randint(0, args.vocab, (args.batch, args.prompt_len), generator=gen).tolist()
        ids_path = os.path.join(tmp, "ids.json")
        with open(ids_path, "w") as f:
            json.dump(prompts, f)
        run_torch(args, model, prompts)  # warm-up
        t_runs, t_pre, p_runs, p_pre = [], [], [], []
        tailor_tokens = torch_tokens = None
        tailor_record = None
        for r in range(args.repeats):
            order = ("tailor", "torch") if r % 2 == 0 else ("torch", "tailor")
            for system in order:
                if system == "tailor":
                    tailor_record = run_tailor(args, binary, model_dir, ids_path, env)
                    t_runs += tailor_record["run_times_s"]
                    t_pre += tailor_record["prefill_times_s"]
                    tailor_tokens = tailor_record["tokens"]
                else:
                    run, pre, torch_tokens = run_torch(args, model, prompts)
                    p_runs.append(run)
                    p_pre.append(pre)
    tailor = summarise("tailor", t_runs, t_pre, args)
    tailor["blas"] = tailor_record["blas"]
    ref = summarise("pytorch", p_runs, p_pre, args)
    ref["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    ratio = tailor["tokens_per_s"] / ref["tokens_per_s"]
    print("model: %d params, batch %d x prompt %d, %d new tokens, %d threads"
          % (params, args.batch, args.prompt_len, args.new_tokens, args.threads))
    print("| system | median run | median prefill | tokens/s | decode tokens/s |")
    print("| --- | --- | --- | --- | --- |")
    for s in (tailor, ref):
        print("| %s | %.3f s | %.3f s | %.1f | %.1f |" % (
            s["system"], s["median_run_s"], s["median_prefill_s"], s["tokens_per_s"],
            s["decode_tokens_per_s"]))
    print("Tailor / PyTorch = %.2fx tokens/s; same tokens: %s" % (ratio, tailor_tokens == torch_tokens))
    record = {
        "benchmark": "generate_throughput",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": cpu_step.git_commit(),
        "command": cpu_step.quote([sys.executable] + sys.argv),
        "machine": cpu_step.machine_info(),
        "shape": {"params": params, "vocab": args.vocab, "hidden": args.hidden,
                  "layers": args.layers, "heads": args.heads, "kv_heads": args.kv_heads,
                  "intermediate": args.intermediate, "batch": args.batch,
                  "prompt_len": args.prompt_len, "new_tokens": args.new_tokens,
                  "threads": args.threads},
        "tailor": tailor, "pytorch": ref, "ratio_tokens_per_s": ratio,
        "same_tokens": tailor_tokens == torch_tokens,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(json.dumps({k: record[k] for k in ("ratio_tokens_per_s", "same_tokens")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
