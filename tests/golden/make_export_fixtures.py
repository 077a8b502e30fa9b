#!/usr/bin/env python3
"""Checks Tailor's Hugging Face exports with `transformers` and records what it computes on them.

tests/golden/exports/<case>/ holds a directory written by Tailor (config.json + model.safetensors)
and export_args.txt, the `tailor` arguments that wrote it from committed inputs:

  llama_trained  `tailor train tests/golden/exports/llama_trained.yaml` (byte tokenizer, 20 steps of
                 a tiny LLaMA: RMSNorm, RoPE, SwiGLU, GQA 4/2, untied, vocabulary 257 so the model
                 pads it) saves its step-20 checkpoint, committed as <case>/checkpoint/ (without
                 the optimizer shards, which export never reads); the fixture is
                 `tailor export --checkpoint tests/golden/exports/llama_trained/checkpoint`
  gpt2_trained   the same with `family: gpt2` (LayerNorm, learned positions, GELU, biases, tied
                 head: the export must not hold lm_head.weight)
  qwen2_bf16     `tailor export --model tests/golden/models/qwen2 --format hf --dtype bf16`
  qwen2_window   `tailor export --model tests/golden/models/qwen2_window --format hf`: a sliding
                 window of 4 on layers 1 and 2 of 3 (the export must say which layers slide in
                 a way transformers reads back), on sequences of 12
  qwen3_f32      `tailor export --model tests/golden/models/qwen3 --format hf` (q/k norm weights,
                 explicit head_dim, tied head)
  phi3_f32       the same of tests/golden/models/phi3 (q/k/v and gate/up fused again)
  qwen3_yarn_f32 the same of tests/golden/models/qwen3_yarn (Tailor's rope_scaling for yarn)
  phi3_longrope_f32  the same of tests/golden/models/phi3_longrope (longrope's factors)
  qwen3_window   the same of tests/golden/models/qwen3_window: a window of 4 on layers 0 and 2 of 3,
                 a pattern only layer_types can say
  gemma3         the same of tests/golden/models/gemma3: (1 + w) norms written back as w, sandwich
                 norms, GeGLU, a window of 4 on layers 0-2 of 4 with their own RoPE base, the
                 global layer's linear RoPE scaling, query_pre_attn_scalar, tied head

tests/checkpoint/export_golden_test.cpp runs `tailor export` with export_args.txt and requires
every file to equal the committed one byte for byte (so a change of the exporter fails until the
fixture, and with it what transformers computed, is regenerated), then compares Tailor's logits
on the fixture with what transformers computed on it.

For each, `AutoModelForCausalLM.from_pretrained` must load the directory with no missing,
unexpected or mismatched tensor and no load error (bf16 weights are loaded as f32, exactly, so the
comparison runs in f32 on the bf16-rounded weights); the embedding must have exactly
config.vocab_size rows. transformers then runs a fixed batch (eager attention, f32, CPU) and
greedy-decodes a few tokens after the first row, and tests/golden/exports/<case>/
expected_logits.safetensors gets:

  input_ids      i32 [B, T]   row 0: text bytes (byte-tokenizer cases) or random ids; row 1 random
  logits         f32 [B, T, V]
  generated_ids  i32 [G]      greedy continuation of row 0 (generate, do_sample=False); every step
                              won by a clear margin, so Tailor's argmax must pick the same token

tests/checkpoint/export_golden_test.cpp compares Tailor's logits on the same directories with these.

Usage: pip install torch transformers safetensors numpy
       python3 tests/golden/make_export_fixtures.py                      # expected_logits only
       python3 tests/golden/make_export_fixtures.py --tailor build/tailor  # re-export, then that
       python3 tests/golden/make_export_fixtures.py [--tailor build/tailor] CASE ...  # only those
With --tailor the exports (and the two checkpoints) are first rewritten with that binary
(run from the repository root; training runs under /tmp/tailor-golden-exports). Deterministic for fixed package versions
(recorded in tests/golden/exports/VERSIONS.txt).
"""
import logging
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import safetensors
import safetensors.numpy
import torch
import transformers
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "exports")
WORK = "/tmp/tailor-golden-exports"

B, T, G = 2, 12, 5
TEXT = b"CYNIC, n.  A"  # 12 bytes, a prefix seen in training (datasets/devils-dictionary)
assert len(TEXT) == T
MIN_MARGIN = 1e-3  # top-1 minus top-2 logit at every greedy step
MAX_BYTES = 300 * 1024
EXPORT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "tokenizer.model")

# case -> (how Tailor writes it, seed of the inputs, whether row 0 is TEXT)
CASES = {
    "llama_trained": ("train", 2001, True),
    "gpt2_trained": ("train", 2002, True),
    "qwen2_bf16": ("export-bf16", 2003, False),
    "qwen3_f32": ("export-f32", 2004, False),
    "phi3_f32": ("export-f32", 2005, False),
    "qwen3_yarn_f32": ("export-f32", 2006, False),
    "phi3_longrope_f32": ("export-f32", 2007, False),
    "qwen2_window": ("export-window", 2008, False),
    "qwen3_window": ("export-window", 2009, False),
    "gemma3": ("export-window", 2010, False),
}


def run(cmd):
    print("+ " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def copy_checkpoint(src, dst):
    """The checkpoint a run saved, less its optimizer shards (export never reads them)."""
    src = os.path.realpath(src)
    os.makedirs(dst)
    for name in sorted(os.listdir(src)):
        if name.startswith("optim-"):
            continue
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
        os.chmod(os.path.join(dst, name), 0o644)


def export(tailor, case, how):
    """Rewrites tests/golden/exports/<case>/ with what Tailor writes."""
    d = os.path.join(OUT, case)
    if os.path.lexists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    if how == "train":
        run_dir = os.path.join(WORK, case)
        if os.path.lexists(run_dir):
            shutil.rmtree(run_dir)
        config = os.path.relpath(os.path.join(OUT, case + ".yaml"), ROOT)
        run([tailor, "train", config, f"output.dir={run_dir}", "checkpoint.every_steps=20"])
        copy_checkpoint(os.path.join(run_dir, "checkpoints", "latest"), os.path.join(d, "checkpoint"))
        args = ["export", "--checkpoint", os.path.relpath(os.path.join(d, "checkpoint"), ROOT),
                "--format", "hf"]
    elif how in ("export-bf16", "export-f32"):  # the golden model named by the case's prefix
        args = ["export", "--model", "tests/golden/models/" + case.rsplit("_", 1)[0], "--format", "hf"]
        if how == "export-bf16":
            args += ["--dtype", "bf16"]
    elif how == "export-window":  # the golden model of the same name
        args = ["export", "--model", "tests/golden/models/" + case, "--format", "hf"]
    else:
        raise ValueError(how)
    src = os.path.join(WORK, case + "-export")
    if os.path.lexists(src):
        shutil.rmtree(src)
    run([tailor] + args + ["--out", src])
    with open(os.path.join(d, "export_args.txt"), "w") as f:
        f.write(" ".join(args) + "\n")
    for name in sorted(os.listdir(src)):
        if name not in EXPORT_FILES:
            raise RuntimeError(f"{src}/{name}: an export file this script does not know")
        shutil.copyfile(os.path.join(src, name), os.path.join(d, name))
        os.chmod(os.path.join(d, name), 0o644)


class Collect(logging.Handler):
    """transformers' warnings while loading (e.g. a config key it does not understand)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def load(d):
    handler = Collect()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            d, attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
    finally:
        logger.removeHandler(handler)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise RuntimeError(f"{d}: transformers did not load the export cleanly: {problems}")
    for m in handler.messages:
        print(f"  transformers warning: {m}")
    model.train(False)
    return model


def check_export(case, d, model):
    config = model.config
    with safetensors.safe_open(os.path.join(d, "model.safetensors"), "np") as f:
        names = set(f.keys())
        dtypes = {f.get_slice(n).get_dtype() for n in names}
    want_dtype = {"BF16"} if case.endswith("_bf16") else {"F32"}
    assert dtypes == want_dtype, (case, dtypes)
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == config.vocab_size, (case, emb.shape, config.vocab_size)
    head = model.get_output_embeddings().weight
    assert head.shape[0] == config.vocab_size, (case, head.shape)
    if config.tie_word_embeddings:
        assert "lm_head.weight" not in names, case
        assert head.data_ptr() == emb.data_ptr(), f"{case}: head not tied"
    else:
        assert "lm_head.weight" in names, case
    # Every stored tensor is a parameter and every parameter is stored (a tied head once).
    params = {n for n, _ in model.named_parameters()}
    assert names == params, (case, names ^ params)


def make_inputs(vocab, seed, text_row):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (B, T), generator=gen, dtype=torch.int64)
    if text_row:
        ids[0] = torch.tensor(list(TEXT), dtype=torch.int64)
    return ids


def greedy(model, ids):
    out = model.generate(ids[:1], attention_mask=torch.ones_like(ids[:1]), max_new_tokens=G,
                         min_new_tokens=G, do_sample=False, num_beams=1, use_cache=True,
                         pad_token_id=model.config.eos_token_id)
    gen = out[0, T:]
    assert gen.shape[0] == G, out
    # The same tokens by teacher forcing, each step won by a clear margin.
    seq = out[:, :T + G - 1]
    with torch.no_grad():
        logits = model(input_ids=seq, use_cache=False).logits[0, T - 1:]
    top = torch.topk(logits, 2, dim=-1)
    assert torch.equal(top.indices[:, 0], gen), (gen, top.indices[:, 0])
    margin = (top.values[:, 0] - top.values[:, 1]).min().item()
    assert margin > MIN_MARGIN, f"greedy step won by only {margin}"
    return gen, margin


def fixture(case, seed, text_row):
    d = os.path.join(OUT, case)
    size = sum(os.path.getsize(os.path.join(d, n)) for n in EXPORT_FILES
               if os.path.exists(os.path.join(d, n)))
    assert size < MAX_BYTES, f"{d}: {size} bytes"
    model = load(d)
    check_export(case, d, model)
    ids = make_inputs(model.config.vocab_size, seed, text_row)
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits
    assert logits.dtype == torch.float32 and logits.shape == (B, T, model.config.vocab_size)
    gen, margin = greedy(model, ids)
    tensors = {
        "input_ids": ids.to(torch.int32).numpy(),
        "logits": logits.numpy().astype(np.float32),
        "generated_ids": gen.to(torch.int32).numpy(),
    }
    out = os.path.join(d, "expected_logits.safetensors")
    safetensors.numpy.save_file(tensors, out)  # no metadata: its key order would vary
    os.chmod(out, 0o644)
    print(f"{case}: {model.config.model_type}, logits {tuple(logits.shape)}, greedy "
          f"{gen.tolist()} (margin >= {margin:.3g}), export {size} bytes")


def main():
    args = sys.argv[1:]
    tailor = None
    if len(args) >= 2 and args[0] == "--tailor":
        tailor = os.path.abspath(args[1])
        args = args[2:]
    if any(a not in CASES for a in args):
        print(__doc__, file=sys.stderr)
        return 2
    cases = {c: v for c, v in CASES.items() if not args or c in args}
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if tailor is not None:
        for case, (how, _, _) in cases.items():
            export(tailor, case, how)
    for case, (_, seed, text_row) in cases.items():
        fixture(case, seed, text_row)
    if args:
        with open(os.path.join(OUT, "VERSIONS.txt"), "a") as f:
            f.write(f"{', '.join(args)} rebuilt alone with python {platform.python_version()}, "
                    f"torch {torch.__version__}, transformers {transformers.__version__}, "
                    f"safetensors {safetensors.__version__}, numpy {np.__version__}\n")
        return 0
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("Expected logits generated by tests/golden/make_export_fixtures.py with:\n")
        f.write(f"python {platform.python_version()}\n")
        f.write(f"torch {torch.__version__}\n")
        f.write(f"transformers {transformers.__version__}\n")
        f.write(f"safetensors {safetensors.__version__}\n")
        f.write(f"numpy {np.__version__}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
