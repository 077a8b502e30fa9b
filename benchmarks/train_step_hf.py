#!/usr/bin/env python3
"""Hugging Face reference for benchmarks/train_step.cpp: the same LLaMA shape, random init, bf16
weights, SDPA attention, fused AdamW (full fine-tuning) or PEFT LoRA on all linear layers, eager or
torch.compile. Prints one JSON line with the fields tailor_bench_train_step prints (step times,
tokens/s, the same FLOPs per token and MFU, peak memory as torch.cuda.max_memory_allocated).

    python3 benchmarks/train_step_hf.py --preset llama-3.2-1b --batch 8 --seq 1024 [--lora-rank 16] [--compile]

Run on the GPU node (torch, transformers and peft are installed there); the driver
benchmarks/train_step_compare.py runs it beside Tailor on the same warm machine.
"""
import argparse
import json
import statistics
import sys
import time

PRESETS = {
    "llama-3.2-1b": dict(vocab_size=128256, hidden_size=2048, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                         intermediate_size=8192, tie_word_embeddings=True, rope_theta=500000.0),
    "llama-3.1-8b": dict(vocab_size=128256, hidden_size=4096, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                         intermediate_size=14336, tie_word_embeddings=False, rope_theta=500000.0),
    "tiny": dict(vocab_size=512, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=32, intermediate_size=256,
                 tie_word_embeddings=False, rope_theta=10000.0),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="llama-3.2-1b", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--lora-rank", type=int, default=0)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke run)")
    a = ap.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    p = PRESETS[a.preset]
    cfg = LlamaConfig(max_position_embeddings=max(a.seq, 2048), attn_implementation="sdpa", **p)
    cuda = a.device == "cuda"
    model = LlamaForCausalLM(cfg).to(device=a.device, dtype=torch.bfloat16)
    n_params = sum(t.numel() for t in model.parameters())  # tied embeddings count once
    if a.lora_rank > 0:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=a.lora_rank, lora_alpha=2 * a.lora_rank,
                                                 target_modules="all-linear", lora_dropout=0.0))
    model.train()
    trainable = [t for t in model.parameters() if t.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.1, fused=cuda)
    step_model = torch.compile(model) if a.compile else model

    g = torch.Generator(device=a.device).manual_seed(1)
    ids = torch.randint(0, p["vocab_size"], (a.batch, a.seq), device=a.device, generator=g)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        out = step_model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    times = []
    loss = None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        loss = step()
        sync()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            times.append(dt)
        print(f"hf step {s}: {dt:.4f} s, loss {loss.item():.4f}", file=sys.stderr)

    n = a.batch * a.seq
    d = p["num_attention_heads"] * p["head_dim"]
    flops_per_token = (4.0 if a.lora_rank > 0 else 6.0) * n_params + \
        6.0 * a.seq * d * p["num_hidden_layers"]
    step_s = statistics.median(times)
    tps = n / step_s
    print(json.dumps({
        "system": "hf-compile" if a.compile else "hf-eager",
        "method": "lora" if a.lora_rank > 0 else "full",
        "preset": a.preset, "dtype": "bf16", "params": n_params,
        "trainable_params": sum(t.numel() for t in trainable),
        "batch": a.batch, "seq": a.seq, "lora_rank": a.lora_rank,
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name() if cuda else "cpu",
        "step_times_s": times, "step_s": step_s, "tokens_per_s": tps,
        "flops_per_token": flops_per_token, "mfu": tps * flops_per_token / (a.peak_tflops * 1e12),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0,
        "final_loss": float(loss.item()),
    }))


if __name__ == "__main__":
    main()
