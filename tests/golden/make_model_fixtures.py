#!/usr/bin/env python3
"""Builds the model-numerics fixtures of tests/golden/model_golden_test.cpp with `transformers`.

For each case a tiny random model of one family is built with `transformers`, every parameter is
re-drawn with a seeded generator (so biases and norm weights are not the 0 / 1 of HF's init and a
misplaced one shows), and the model is saved with `save_pretrained` (config.json +
model.safetensors, f32) into tests/golden/models/<case>/. The model is then loaded back with
`from_pretrained` (eager attention, f32, CPU) and run on a fixed batch with labels; what it computes
is written to tests/golden/models/<case>/expected.safetensors:

  input_ids        i32 [B, T]     token ids, random in the vocabulary
  labels           i32 [B, T]     input_ids with some positions -100, as given to HF
  logits           f32 [B, T, V]
  loss             f32 []         HF's causal-LM loss: logits[:, :-1] predict labels[:, 1:], mean
                                  over the labels that are not -100
  grad.<name>      f32            d loss / d parameter for every entry of model.named_parameters()
                                  (HF names and layouts; a tied head appears once, as the embedding)

Cases:
  llama            LlamaConfig, GQA (4 heads / 2 KV heads), untied, no biases
  llama3_rope      LlamaConfig with Llama-3 RoPE scaling (small original_max_position_embeddings
                   so the scaling changes the frequencies of head_dim 16)
  llama3_rope_hub  the same model, config.json rewritten in the older Hub spelling (top-level
                   `rope_theta` + `rope_scaling` instead of `rope_parameters`); its weights and
                   expected outputs are symlinks to llama3_rope's (as in the Hub cache)
  llama_tied       tied embeddings, attention_bias and mlp_bias
  mistral          MistralConfig, GQA, sliding_window >= T (no effect on these sequences)
  mistral_window   MistralConfig with sliding_window 5 on sequences of 24 (every layer slides)
  qwen2            Qwen2Config: q/k/v biases, no o bias
  qwen3            Qwen3Config: per-head q/k RMSNorm, head_dim 16 != hidden 32 / 4 heads, GQA,
                   tied embeddings, no biases
  phi3             Phi3Config: fused qkv_proj [q + 2 kv, D] and gate_up_proj [2 F, D], GQA,
                   sliding_window 24 >= T (no effect on these sequences)
  phi3_longrope    Phi3Config with LongRoPE (original_max_position_embeddings 8 < T = 12, so the
                   long factors and the attention factor sqrt(1 + ln 8 / ln 8) apply), MHA
  qwen3_yarn       Qwen3Config with YaRN RoPE scaling (factor 4 over an original length of 4, so
                   the ramp and the attention factor 0.1 ln 4 + 1 act on T = 12), one KV head
  qwen2_window     Qwen2Config with use_sliding_window, sliding_window 4, max_window_layers 1 on
                   3 layers (layer 0 global, layers 1 and 2 slide), sequences of 24
  qwen3_window     Qwen3Config with use_sliding_window, sliding_window 4 and layer_types sliding
                   on layers 0 and 2 of 3 (not a suffix: only layer_types says it), q/k norm,
                   sequences of 24
  gemma3           Gemma3TextConfig: (1 + w) RMSNorms before and after attention and MLP, GeGLU
                   (tanh GELU), embeddings x sqrt(hidden), q/k norm, query_pre_attn_scalar 24 (not
                   head_dim 16), sliding_window 4 on layers 0-2 and global layer 3, the global
                   layer's RoPE linear-scaled (factor 2, base 1e6) and the sliding layers' base
                   10000, tied head, sequences of 24
  gpt2             GPT2Config: LayerNorm, learned positions, fused c_attn, Conv1D, gelu_new, tied

Usage: pip install torch transformers safetensors numpy
       python3 tests/golden/make_model_fixtures.py [CASE ...]
Deterministic for fixed package versions (recorded in tests/golden/models/VERSIONS.txt). Naming
cases rebuilds only those (each keeps its seed) and appends their versions to VERSIONS.txt.

  make_model_fixtures.py --real DIR   for real downloaded models instead: in every directory under
  DIR holding a config.json and *.safetensors of a supported family, writes
  tailor_expected_logits.safetensors (input_ids i32 [1, 8], logits f32 [1, 8, V]) with what
  transformers computes in f32; the TAILOR_HF_DIR=DIR test compares Tailor's logits with it.
"""
import json
import os
import platform
import shutil
import sys

import numpy as np
import safetensors
import safetensors.numpy
import torch
import transformers
from transformers import (AutoModelForCausalLM, Gemma3TextConfig, GPT2Config, LlamaConfig,
                          MistralConfig, Phi3Config, Qwen2Config, Qwen3Config)
from transformers.pytorch_utils import Conv1D

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")

B, T = 2, 12
# Sequence length per case where it is not T: the sliding-window cases run several windows long.
SEQ = {"mistral_window": 24, "qwen2_window": 24, "qwen3_window": 24, "gemma3": 24}

LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8}


def llama_config(**kw):
    base = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=False,
                mlp_bias=False, bos_token_id=1, eos_token_id=2)
    base.update(kw)
    return base


CASES = {
    "llama": lambda: LlamaConfig(**llama_config(rope_theta=10000.0)),
    "llama3_rope": lambda: LlamaConfig(**llama_config(
        vocab_size=257, rope_theta=10000.0, rope_scaling=dict(LLAMA3_SCALING))),
    "llama_tied": lambda: LlamaConfig(**llama_config(
        vocab_size=400, hidden_size=32, intermediate_size=80, num_key_value_heads=4,
        rope_theta=500000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=True,
        mlp_bias=True)),
    "mistral": lambda: MistralConfig(
        vocab_size=333, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=12, max_position_embeddings=64,
        rms_norm_eps=1e-5, rope_theta=1000000.0, sliding_window=16, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2),
    "qwen2": lambda: Qwen2Config(
        vocab_size=350, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        rms_norm_eps=1e-6, rope_theta=1000000.0, use_sliding_window=False,
        tie_word_embeddings=False, bos_token_id=300, eos_token_id=301),
    "gpt2": lambda: GPT2Config(
        vocab_size=320, n_embd=32, n_layer=2, n_head=4, n_positions=64, n_inner=None,
        activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
        bos_token_id=318, eos_token_id=319),
    "qwen3": lambda: Qwen3Config(
        vocab_size=310, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
        rms_norm_eps=1e-6, rope_theta=1000000.0, attention_bias=False, use_sliding_window=False,
        tie_word_embeddings=True, bos_token_id=300, eos_token_id=301),
    "qwen3_yarn": lambda: Qwen3Config(
        vocab_size=290, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
        rms_norm_eps=1e-6, rope_theta=10000.0, attention_bias=False, use_sliding_window=False,
        tie_word_embeddings=False, bos_token_id=280, eos_token_id=281,
        rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4}),
    "phi3": lambda: Phi3Config(
        vocab_size=330, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        original_max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
        sliding_window=24, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        pad_token_id=None),
    "phi3_longrope": lambda: Phi3Config(
        vocab_size=270, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
        original_max_position_embeddings=8, rms_norm_eps=1e-5, rope_theta=10000.0,
        sliding_window=None, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        pad_token_id=None,
        rope_scaling={"rope_type": "longrope", "short_factor": [1.0, 1.1, 1.3, 1.8],
                      "long_factor": [1.2, 2.0, 4.5, 9.0]}),
    "mistral_window": lambda: MistralConfig(
        vocab_size=301, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
        rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=5, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2),
    "qwen2_window": lambda: Qwen2Config(
        vocab_size=310, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        rms_norm_eps=1e-6, rope_theta=10000.0, use_sliding_window=True, sliding_window=4,
        max_window_layers=1, tie_word_embeddings=False, bos_token_id=300, eos_token_id=301),
    "qwen3_window": lambda: Qwen3Config(
        vocab_size=280, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
        rms_norm_eps=1e-6, rope_theta=10000.0, attention_bias=False, use_sliding_window=True,
        sliding_window=4, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        tie_word_embeddings=False, bos_token_id=270, eos_token_id=271),
    "gemma3": lambda: Gemma3TextConfig(
        vocab_size=290, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
        rms_norm_eps=1e-6, query_pre_attn_scalar=24, sliding_window=4,
        layer_types=["sliding_attention"] * 3 + ["full_attention"],
        rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0,
                                            "rope_theta": 1000000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
        tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, pad_token_id=0),
}


def randomize(model, gen):
    """Re-draws every parameter: weights ~ N(0, 1/fan_in), embeddings ~ N(0, 0.3^2), norm weights
    1 + N(0, 0.1^2), biases N(0, 0.1^2), so that every path carries signal."""
    done = set()
    with torch.no_grad():
        for _, module in model.named_modules():
            for pname, p in module.named_parameters(recurse=False):
                if id(p) in done:
                    continue
                done.add(id(p))
                noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
                if pname == "bias":
                    p.copy_(0.1 * noise)
                elif isinstance(module, torch.nn.Embedding):
                    p.copy_(0.3 * noise)
                elif isinstance(module, torch.nn.Linear):
                    p.copy_(noise / module.in_features ** 0.5)
                elif isinstance(module, Conv1D):
                    p.copy_(noise / p.shape[0] ** 0.5)  # Conv1D weights are [in, out]
                elif p.dim() == 1:  # RMSNorm / LayerNorm weight
                    p.copy_(1.0 + 0.1 * noise)
                else:
                    raise RuntimeError(f"no init rule for {type(module).__name__}.{pname}")
    unique = {id(p) for p in model.parameters()}
    assert done == unique, "a parameter was not re-drawn"


def make_inputs(vocab, gen, t=T):
    ids = torch.randint(0, vocab, (B, t), generator=gen, dtype=torch.int64)
    labels = ids.clone()
    labels[0, :4] = -100                      # a masked prompt
    labels[1, torch.tensor([2, 7, 11])] = -100  # scattered, incl. the last position
    return ids, labels


def compute(model, ids, labels):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=labels, use_cache=False)
    out.loss.backward()
    grads = {}
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        grads[name] = p.grad.detach().clone()
    return out.logits.detach().clone(), out.loss.detach().clone(), grads


def load(path):
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager",
                                                 dtype=torch.float32)
    model.train(False)  # no dropout (all dropout probabilities are 0 as well)
    return model


def build(case, seed):
    d = os.path.join(OUT, case)
    if os.path.lexists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    config = CASES[case]()
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    randomize(model, gen)
    model.train(False)
    model.save_pretrained(d, safe_serialization=True)
    for extra in os.listdir(d):  # only config.json and model.safetensors are fixtures
        if extra not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(d, extra))

    ids, labels = make_inputs(config.vocab_size, gen, SEQ.get(case, T))
    ref = load(d)
    logits, loss, grads = compute(ref, ids, labels)
    # The saved directory reproduces the in-memory model exactly.
    logits_mem, loss_mem, _ = compute(model, ids, labels)
    assert torch.equal(logits, logits_mem) and torch.equal(loss, loss_mem), case
    if case in SEQ:  # the window must matter on these sequences, or the case checks nothing
        # Every layer global: Qwen2 through layer_types, Mistral (no layer_types) by no window.
        n = config.num_hidden_layers
        no_window = ({"layer_types": ["full_attention"] * n}
                     if getattr(config, "layer_types", None) else {"sliding_window": None})
        full = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager",
                                                    dtype=torch.float32, **no_window)
        full.train(False)
        with torch.no_grad():
            full_logits = full(input_ids=ids, use_cache=False).logits
        gap = ((full_logits - logits).norm() / logits.norm()).item()
        assert gap > 1e-2, (case, "the window changes nothing", gap)
    # The loss is the documented one.
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).double()
    shift_labels = labels[:, 1:].reshape(-1)
    check = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100)
    assert abs(check.item() - loss.item()) <= 1e-6 * abs(check.item()), (check, loss)
    # Every tensor in model.safetensors is a parameter (no buffers), and vice versa.
    with safetensors.safe_open(os.path.join(d, "model.safetensors"), "np") as f:
        stored = set(f.keys())
    params = {n for n, _ in ref.named_parameters()}
    assert stored == params, (case, stored ^ params)

    tensors = {
        "input_ids": ids.to(torch.int32).numpy(),
        "labels": labels.to(torch.int32).numpy(),
        "logits": logits.numpy().astype(np.float32),
        "loss": np.array(loss.item(), dtype=np.float32),
    }
    for name, g in grads.items():
        tensors["grad." + name] = g.numpy().astype(np.float32)
    # No __metadata__: safetensors writes its keys in hash order, so the bytes would vary.
    safetensors.numpy.save_file(tensors, os.path.join(d, "expected.safetensors"))
    for name in ("model.safetensors", "expected.safetensors"):
        os.chmod(os.path.join(d, name), 0o644)
    return ids, labels, logits, loss


def make_hub_spelling(src_case, case, ids, labels, logits, loss):
    """The older Hub spelling of config.json: top-level rope_theta + rope_scaling."""
    src = os.path.join(OUT, src_case)
    d = os.path.join(OUT, case)
    if os.path.lexists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    rope = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rope.pop("rope_theta")
    cfg["rope_scaling"] = rope  # rope_type, factor, low/high_freq_factor, original_max_...
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    for name in ("model.safetensors", "expected.safetensors"):
        os.symlink(os.path.join("..", src_case, name), os.path.join(d, name))
    # transformers reads the Hub spelling to the same model.
    ref = load(d)
    got_logits, got_loss, _ = compute(ref, ids, labels)
    assert torch.equal(got_logits, logits) and torch.equal(got_loss, loss), case


REAL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gpt2")


def real_ids(config):
    """The ids the C++ test uses when no expected file exists: bos (if any), then (i*7919) % V."""
    bos = config.get("bos_token_id")
    if isinstance(bos, list):
        bos = bos[0] if bos else None
    ids = [] if bos is None else [int(bos)]
    i = 1
    while len(ids) < 8:
        ids.append((i * 7919) % int(config["vocab_size"]))
        i += 1
    return ids


def real(root):
    for d, _, files in sorted(os.walk(root, followlinks=True)):
        if "config.json" not in files or not any(f.endswith(".safetensors") for f in files):
            continue
        with open(os.path.join(d, "config.json")) as f:
            config = json.load(f)
        if config.get("model_type") not in REAL_TYPES:
            print(f"{d}: model_type {config.get('model_type')!r} skipped")
            continue
        model = load(d)
        ids = torch.tensor([real_ids(config)], dtype=torch.int64)
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits
        out = os.path.join(d, "tailor_expected_logits.safetensors")
        safetensors.numpy.save_file({"input_ids": ids.to(torch.int32).numpy(),
                                     "logits": logits.float().numpy()}, out)
        print(f"{out}: {config['model_type']}, logits {tuple(logits.shape)}")
    return 0


def versions():
    return (f"python {platform.python_version()}\n"
            f"torch {torch.__version__}\n"
            f"transformers {transformers.__version__}\n"
            f"safetensors {safetensors.__version__}\n"
            f"numpy {np.__version__}\n")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--real":
        return real(sys.argv[2])
    only = sys.argv[1:]
    if any(c not in CASES for c in only):
        print(__doc__, file=sys.stderr)
        return 2
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    results = {}
    for seed, case in enumerate(CASES):
        if only and case not in only:
            continue
        results[case] = build(case, 1000 + seed)
        print(f"{case}: loss {results[case][3].item():.6f}")
    if only:
        with open(os.path.join(OUT, "VERSIONS.txt"), "a") as f:
            f.write(f"{', '.join(only)} rebuilt alone with python {platform.python_version()}, "
                    f"torch {torch.__version__}, transformers {transformers.__version__}, "
                    f"safetensors {safetensors.__version__}, numpy {np.__version__}\n")
        return 0
    make_hub_spelling("llama3_rope", "llama3_rope_hub", *results["llama3_rope"])
    print("llama3_rope_hub: same as llama3_rope")
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("Generated by tests/golden/make_model_fixtures.py with:\n")
        f.write(versions())
    return 0


if __name__ == "__main__":
    sys.exit(main())
