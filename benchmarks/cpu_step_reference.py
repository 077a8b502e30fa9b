#!/usr/bin/python3
"""PyTorch CPU reference for Tailor's CPU training-step benchmark.

What it measures
----------------
The wall-clock time of one full f32 training step of a LLaMA-style decoder on
the CPU: forward pass, mean cross-entropy loss, backward pass, one
torch.optim.AdamW step and zero_grad.  Weights are random (N(0, 0.02)) and the
token ids are random, so the numbers say nothing about model quality -- only
about how fast the arithmetic runs.

Why
---
Tailor's own CPU benchmark binary (benchmarks/tailor_bench_cpu_step) runs the
same model shape with the same flags; benchmarks/cpu_step.py runs both side by
side and compares their median step times.  This file is the yardstick, so it
is written from scratch with plain torch ops (no transformers) to keep it
self-contained and to make the model it runs explicit:

  token embedding
  N x [ RMSNorm -> attention (q/k/v/o, no bias, GQA, RoPE rotate_half,
        theta 10000, causal scaled-dot-product attention) -> residual
        RMSNorm -> SwiGLU MLP (gate/up/down, no bias) -> residual ]
  final RMSNorm -> untied LM head -> cross-entropy (mean)

With the default shape (vocab 32000, hidden 768, 12 layers, 12/4 heads,
intermediate 2048) the model has 124.7M parameters, the figure quoted in
/work/shared/PLATFORMS.md (about 4.72 s per step at B=4, T=256, 2 threads,
with Debian's torch running on OpenBLAS).

Output: ONE JSON line on stdout
  {"system": "pytorch", "torch": ..., "blas": ..., "threads": ...,
   "params": ..., "step_times_s": [...], "tokens_per_step": B*T,
   "attention": <which causal-attention op this torch provides>}
Progress and diagnostics go to stderr.

Run it with Debian's /usr/bin/python3 (that is the interpreter which has
python3-torch); the pyenv python3 first on PATH has no torch.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight (weight starts at 1)."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return x * inv_rms * self.weight


def rope_tables(seq, head_dim, theta=10000.0):
    """cos/sin tables of shape [seq, head_dim] in HF's rotate_half layout.

    Frequency i (0 <= i < head_dim/2) is theta^(-2i/head_dim); the table holds
    the angles for the first half and repeats them for the second half.
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    pos = torch.arange(seq, dtype=torch.float32)
    angles = torch.outer(pos, inv_freq)            # [seq, head_dim/2]
    angles = torch.cat((angles, angles), dim=-1)   # [seq, head_dim]
    return angles.cos(), angles.sin()


def rotate_half(x):
    """(x1, x2) -> (-x2, x1) over the two halves of the last dimension."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x, cos, sin):
    # x: [B, heads, T, head_dim]; cos/sin: [T, head_dim] broadcast over B, heads.
    return x * cos + rotate_half(x) * sin


def _causal_attention_math(q, k, v):
    """Plain causal softmax attention, for a torch with no SDPA at all."""
    t = q.shape[-2]
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    future = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    return torch.matmul(scores.softmax(dim=-1), v)


# torch >= 2.0 has the public F.scaled_dot_product_attention.  Debian 12's
# python3-torch is 1.13, where the same op exists only under its pre-release
# name F._scaled_dot_product_attention, returning (output, weights).  Pick
# whichever exists; ATTENTION_IMPL is reported in the JSON line.
if hasattr(F, "scaled_dot_product_attention"):
    ATTENTION_IMPL = "F.scaled_dot_product_attention(is_causal=True)"

    def causal_attention(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
elif hasattr(F, "_scaled_dot_product_attention"):
    ATTENTION_IMPL = "F._scaled_dot_product_attention(is_causal=True) (torch 1.13 name)"

    def causal_attention(q, k, v):
        return F._scaled_dot_product_attention(q, k, v, is_causal=True)[0]
else:
    ATTENTION_IMPL = "explicit matmul + causal mask + softmax"
    causal_attention = _causal_attention_math


class Attention(nn.Module):
    def __init__(self, hidden, heads, kv_heads):
        super().__init__()
        if hidden % heads:
            raise ValueError("hidden must be divisible by heads")
        if heads % kv_heads:
            raise ValueError("heads must be divisible by kv-heads")
        self.heads = heads
        self.kv_heads = kv_heads
        self.head_dim = hidden // heads
        self.q_proj = nn.Linear(hidden, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, hidden, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        # GQA: each kv head serves heads/kv_heads consecutive query heads.
        group = self.heads // self.kv_heads
        if group > 1:
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        y = causal_attention(q, k, v)
        y = y.transpose(1, 2).reshape(b, t, self.heads * self.head_dim)
        return self.o_proj(y)


class SwiGLU(nn.Module):
    def __init__(self, hidden, intermediate):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, hidden, heads, kv_heads, intermediate, eps):
        super().__init__()
        self.input_norm = RMSNorm(hidden, eps)
        self.attn = Attention(hidden, heads, kv_heads)
        self.post_attn_norm = RMSNorm(hidden, eps)
        self.mlp = SwiGLU(hidden, intermediate)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.input_norm(x), cos, sin)
        x = x + self.mlp(self.post_attn_norm(x))
        return x


class Decoder(nn.Module):
    def __init__(self, vocab, hidden, layers, heads, kv_heads, intermediate, eps=1e-5):
        super().__init__()
        self.head_dim = hidden // heads
        self.embed = nn.Embedding(vocab, hidden)
        self.layers = nn.ModuleList(
            DecoderLayer(hidden, heads, kv_heads, intermediate, eps) for _ in range(layers))
        self.norm = RMSNorm(hidden, eps)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)   # untied from embed
        # Random init: every matrix N(0, 0.02); RMSNorm weights stay at 1.
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, ids, cos, sin):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.norm(x))


# --------------------------------------------------------------------------
# BLAS identification
# --------------------------------------------------------------------------

def blas_info():
    """Describe which BLAS this torch really calls.

    torch.__config__.show() says what torch was *built* against (Debian builds
    against the generic libblas.so.3), so we also look at /proc/self/maps for
    the shared library actually mapped into this process: the
    update-alternatives link libblas.so.3 resolves to either reference BLAS
    (.../blas/libblas.so.3, single-threaded and ~24x slower) or one of
    OpenBLAS's builds (.../openblas-openmp/... or .../openblas-pthread/...).
    """
    # The build-settings line is one long comma-separated list; keep only the
    # entries that name a BLAS/LAPACK (e.g. "BLAS_INFO=generic").
    config_lines = []
    for line in torch.__config__.show().splitlines():
        for item in line.replace(" - Build settings:", "").split(","):
            item = item.strip(" -")
            if "blas" in item.lower() or "lapack" in item.lower():
                config_lines.append(item)
    mapped = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split()
                if len(fields) >= 6:
                    path = fields[5]
                    name = os.path.basename(path).lower()
                    if "blas" in name or "lapack" in name or "mkl" in name:
                        mapped.add(path)
    except OSError:
        pass
    mapped = sorted(mapped)
    if any("openblas-openmp" in p for p in mapped):
        kind = "OpenBLAS (openmp)"
    elif any("openblas-pthread" in p for p in mapped):
        kind = "OpenBLAS (pthread)"
    elif any("openblas" in p for p in mapped):
        kind = "OpenBLAS"
    elif any("mkl" in p for p in mapped):
        kind = "MKL"
    elif any(os.path.basename(p).startswith("libblas") for p in mapped):
        kind = "reference BLAS (slow, single-threaded)"
    else:
        kind = "unknown"
    # Resolve the alternatives link itself too, for the record.
    link = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
    resolved = os.path.realpath(link) if os.path.exists(link) else None
    parts = [kind]
    if mapped:
        parts.append("mapped: " + ", ".join(mapped))
    if resolved:
        parts.append("libblas.so.3 -> " + resolved)
    if config_lines:
        parts.append("built with: " + "; ".join(config_lines))
    return " | ".join(parts)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch CPU training-step reference (LLaMA-style decoder).")
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=2048)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = Decoder(args.vocab, args.hidden, args.layers, args.heads,
                    args.kv_heads, args.intermediate)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    print(f"[reference] params={params} ({params / 1e6:.1f}M), B={args.batch} T={args.seq} "
          f"threads={torch.get_num_threads()}", file=sys.stderr)

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    cos, sin = rope_tables(args.seq, model.head_dim)
    # T+1 random ids per row: inputs are the first T, targets the next T.
    ids = torch.randint(0, args.vocab, (args.batch, args.seq + 1))
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()

    def step():
        logits = model(inputs, cos, sin)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = step()
        dt = time.perf_counter() - t0
        measured = i >= args.warmup
        if measured:
            times.append(dt)
        print(f"[reference] {'step' if measured else 'warmup'} {i}: {dt:.3f} s loss {loss:.4f}",
              file=sys.stderr)
        if not math.isfinite(loss):
            print("[reference] non-finite loss", file=sys.stderr)
            return 1

    print(json.dumps({
        "system": "pytorch",
        "torch": torch.__version__,
        "attention": ATTENTION_IMPL,
        "blas": blas_info(),
        "threads": torch.get_num_threads(),
        "params": params,
        "step_times_s": times,
        "tokens_per_step": args.batch * args.seq,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
