#!/usr/bin/env python3
"""Builds the PEFT fixtures of tests/checkpoint/peft_golden_test.cpp with the `peft` library.

Every case is a LoRA adapter on the tiny golden LLaMA tests/golden/models/llama (written by
make_model_fixtures.py; vocabulary 300, GQA 4/2, untied), in tests/golden/peft/<case>/:

  lora_hub      peft's own adapter, as one from the Hub: LoraConfig(r=4, lora_alpha=8, q/k/v/o/
                gate/up/down_proj, dropout 0, init_lora_weights=False), every LoRA factor then
                re-drawn with a seeded generator (A ~ N(0, 1/in), B ~ N(0, 0.25/r), so B != 0 and
                the adapter changes the output), written by `save_pretrained`
  lora_rslora   the same with use_rslora=True (scale alpha / sqrt(r)) on q_proj and v_proj only
  lora_qwen3    as lora_hub on the tiny Qwen3 (tests/golden/models/qwen3: q/k RMSNorm after the
                adapted q_proj / k_proj, head_dim 16 != hidden / heads, tied head)
  tailor_lora   Tailor's own export: `tailor train tests/golden/peft/tailor_lora.yaml` (LoRA r=4,
                alpha 8, all-linear, 10 steps) saves its step-10 checkpoint, committed as
                tailor_lora/checkpoint/ (without the optimizer shards, which export never reads),
                and `tailor export --checkpoint tests/golden/peft/tailor_lora/checkpoint --format
                peft` writes the adapter (both only with --tailor; otherwise the committed copies
                are used). export_args.txt records those arguments:
                tests/checkpoint/peft_golden_test.cpp reruns them and requires the committed bytes

Prompt tuning (PromptTuningConfig, CAUSAL_LM; peft prepends the virtual tokens, so each row is
one document whose virtual tokens sit at positions 0..n-1, as in a Tailor row):

  prompt_llama  peft's own adapter on the tiny LLaMA: 5 virtual tokens, prompt_embeddings re-drawn
                with a seeded generator (N(0, 0.5^2)), written by `save_pretrained`
  prompt_gpt2   the same on the tiny GPT-2 (tests/golden/models/gpt2: learned positions are added
                to the virtual tokens too, tied embeddings)
  tailor_prompt Tailor's own export: `tailor train tests/golden/peft/tailor_prompt.yaml` (prompt
                tuning, 4 virtual tokens from a text, 10 steps), its checkpoint and
                `tailor export --format peft` of it, as for tailor_lora (only with --tailor)

IA3 (IA3Config, CAUSAL_LM; every ia3_l re-drawn with a seeded generator as 1 + 0.5 N(0, 1), so
the vectors change the output; written by `save_pretrained`):

  ia3_llama     peft's default targets for llama (k_proj, v_proj, down_proj; down_proj
                feed-forward: its input scaled) on the tiny LLaMA
  ia3_qwen2     peft's default for qwen2 (q_proj, v_proj, down_proj) on the tiny Qwen2, whose q
                and v biases are scaled with their outputs
  ia3_mixed     all seven linears of the tiny LLaMA, feed-forward q_proj, o_proj and up_proj:
                input and output scaling on column- and row-parallel linears alike

  tailor_ia3    Tailor's own export: `tailor train tests/golden/peft/tailor_ia3.yaml` (IA3 with
                the family's default targets, 10 steps), its checkpoint and `tailor export
                --format peft` of it, as for tailor_lora (only with --tailor)

Their expected.safetensors adds merged_logits f32 [B, T, V]: the logits of peft's
`merge_and_unload()` model (the merge Tailor's `export --format hf` must reproduce), and
grad.<name> is d loss / d ia3_l (base_model.model.model.layers.<i>.<module>.ia3_l, [out, 1] or
[1, in] as stored).

DoRA (LoraConfig(use_dora=True, r=4, lora_alpha=8, dropout 0, init_lora_weights=False); the
LoRA factors re-drawn as above, each lora_magnitude_vector then set to peft's initial value, the
row norms of W + s B A, times 1 + 0.2 N(0, 1); written by `save_pretrained`):

  dora_llama    all seven linears of the tiny LLaMA
  dora_qwen2    q_proj, v_proj (with biases), o_proj and down_proj of the tiny Qwen2, rsLoRA
  tailor_dora   Tailor's own export: `tailor train tests/golden/peft/tailor_dora.yaml` (DoRA r=4 on
                q, v, o and down, 10 steps), its checkpoint and `tailor export --format peft` of
                it, as for tailor_lora (only with --tailor)

Their expected.safetensors is as IA3's (merged_logits included), with grad.<name> for every
lora_A.weight, lora_B.weight and lora_magnitude_vector ([out], as stored).

For these, expected*.safetensors holds input_ids / labels [B, T] as given to peft (without the
virtual tokens), logits f32 [B, n + T, V] (the virtual positions included), the loss (peft's:
the virtual positions carry label -100) and grad.prompt_embeddings [n, hidden].

Each directory holds adapter_config.json + adapter_model.safetensors. The base is loaded with
`from_pretrained` (eager attention, f32, CPU) and the adapter put on it with
`PeftModel.from_pretrained`, which must load it with no missing or unexpected key (checked: the
adapter state peft then holds equals the file, tensor for tensor, bitwise). peft's model then
runs a fixed batch with labels; what it computes goes to tests/golden/peft/<case>/
expected.safetensors (tailor_lora: expected_logits.safetensors, as for tests/golden/exports):

  input_ids        i32 [B, T]     token ids, random in the vocabulary
  labels           i32 [B, T]     input_ids with some positions -100, as given to HF
  logits           f32 [B, T, V]
  loss             f32 []         HF's causal-LM loss (logits[:, :-1] predict labels[:, 1:], mean)
  grad.<name>      f32            d loss / d LoRA factor, <name> as in adapter_model.safetensors
                                  (base_model.model.model.layers.<i>.<module>.lora_A.weight);
                                  only the base is frozen, so these are all of peft's gradients

The adapter_config.json that peft writes is normalized so that reruns give the same bytes:
base_model_name_or_path is the repository-relative base directory and target_modules (a set in
peft) is sorted.

Usage: pip install torch transformers peft safetensors numpy
       python3 tests/golden/make_peft_fixtures.py                       # peft cases + expected
       python3 tests/golden/make_peft_fixtures.py --tailor build/tailor  # re-export tailor_lora and
                                                                         # tailor_prompt too
       python3 tests/golden/make_peft_fixtures.py [--tailor build/tailor] CASE...  # only these
Run from anywhere; with --tailor the training runs under /tmp/tailor-golden-peft. Deterministic
for fixed package versions (recorded in tests/golden/peft/VERSIONS.txt).
"""
import json
import os
import platform
import shutil
import subprocess
import sys
import warnings

import numpy as np
import peft
import safetensors
import safetensors.numpy
import safetensors.torch
import torch
import transformers
from peft import IA3Config, LoraConfig, PeftModel, PromptTuningConfig, get_peft_model
from peft.utils import get_peft_model_state_dict
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "peft")
BASE_REL = "tests/golden/models/llama"
BASE = os.path.join(ROOT, BASE_REL)
WORK = "/tmp/tailor-golden-peft"

B, T = 2, 12
MAX_BYTES = 300 * 1024
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# transformers 5 deprecates a name peft still calls: noise, not a loading problem.
NOISE = ".*is_gradient_checkpointing.*"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

# Prompt tuning cases: case -> (base, num_virtual_tokens or None for Tailor's export, seed,
# expected file).
PROMPT_CASES = {
    "prompt_llama": ("tests/golden/models/llama", 5, 3011, "expected.safetensors"),
    "prompt_gpt2": ("tests/golden/models/gpt2", 5, 3012, "expected.safetensors"),
    "tailor_prompt": ("tests/golden/models/llama", None, 3013, "expected_logits.safetensors"),
}
PROMPT_PARAM = "prompt_encoder.default.embedding.weight"  # in memory; "prompt_embeddings" on disk

# case -> (LoraConfig keyword arguments or None for Tailor's export, seed, expected file)
CASES = {
    "lora_hub": (dict(r=4, lora_alpha=8, target_modules=ALL), 3001, "expected.safetensors"),
    "lora_rslora": (dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                         use_rslora=True), 3002, "expected.safetensors"),
    "tailor_lora": (None, 3003, "expected_logits.safetensors"),
    "lora_qwen3": (dict(r=4, lora_alpha=8, target_modules=ALL), 3004, "expected.safetensors"),
}
# LoRA cases on another base than BASE_REL.
LORA_BASES = {"lora_qwen3": "tests/golden/models/qwen3"}


def base_rel_of(case):
    return LORA_BASES.get(case, BASE_REL)


def load_base(base=BASE):
    model, info = AutoModelForCausalLM.from_pretrained(
        base, attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise RuntimeError(f"{base}: transformers did not load the base cleanly: {problems}")
    model.train(False)
    return model


def make_inputs(vocab, gen):
    ids = torch.randint(0, vocab, (B, T), generator=gen, dtype=torch.int64)
    labels = ids.clone()
    labels[0, :4] = -100                      # a masked prompt
    labels[1, torch.tensor([2, 7, 11])] = -100  # scattered, incl. the last position
    return ids, labels


def redraw_lora(model, gen):
    """Every LoRA factor re-drawn in named_parameters order: independent of peft's initializer."""
    n = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_A." in name:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            elif ".lora_B." in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            else:
                assert not p.requires_grad, f"{name}: trainable but not a LoRA factor"
                continue
            assert p.requires_grad, name
            n += 1
    assert n > 0
    return n


def normalize_config(d, base_rel=BASE_REL):
    path = os.path.join(d, "adapter_config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = base_rel
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def fresh_adapter_dir(case):
    d = os.path.join(OUT, case)
    if os.path.lexists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    return d


def save_adapter(model, d, base_rel):
    """peft's own save_pretrained, less the files Tailor's fixtures do not keep."""
    model.train(False)
    model.save_pretrained(d, safe_serialization=True)
    for extra in os.listdir(d):
        if extra not in ADAPTER_FILES:
            os.remove(os.path.join(d, extra))
    normalize_config(d, base_rel)


def write_peft_adapter(case, kwargs, gen):
    d = fresh_adapter_dir(case)
    config = LoraConfig(lora_dropout=0.0, init_lora_weights=False, bias="none",
                        task_type="CAUSAL_LM", **kwargs)
    model = get_peft_model(load_base(os.path.join(ROOT, base_rel_of(case))), config)
    n = redraw_lora(model, gen)
    save_adapter(model, d, base_rel_of(case))
    print(f"{case}: {n} LoRA factors saved")
    return model


def run(cmd):
    print("+ " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def export_tailor(tailor, case):
    """Trains the case, commits its checkpoint (less the optimizer shards, which export never
    reads) and the adapter `tailor export --format peft` writes from that committed copy."""
    run_dir = os.path.join(WORK, case)
    if os.path.lexists(run_dir):
        shutil.rmtree(run_dir)
    config = os.path.relpath(os.path.join(OUT, case + ".yaml"), ROOT)
    run([tailor, "train", config, f"output.dir={run_dir}", "checkpoint.every_steps=10"])
    d = os.path.join(OUT, case)
    if os.path.lexists(d):
        shutil.rmtree(d)
    ckpt = os.path.join(d, "checkpoint")
    os.makedirs(ckpt)
    latest = os.path.realpath(os.path.join(run_dir, "checkpoints", "latest"))
    for name in sorted(os.listdir(latest)):
        if not name.startswith("optim-"):
            shutil.copyfile(os.path.join(latest, name), os.path.join(ckpt, name))
    args = ["export", "--checkpoint", os.path.relpath(ckpt, ROOT), "--format", "peft"]
    src = os.path.join(WORK, case + "-export")
    if os.path.lexists(src):
        shutil.rmtree(src)
    run([tailor] + args + ["--out", src])
    with open(os.path.join(d, "export_args.txt"), "w") as f:
        f.write(" ".join(args) + "\n")
    for name in sorted(os.listdir(src)):
        if name not in ADAPTER_FILES:
            raise RuntimeError(f"{src}/{name}: an adapter file this script does not know")
        shutil.copyfile(os.path.join(src, name), os.path.join(d, name))


def load_adapter(d, base_rel=BASE_REL, every_param_stored=".lora_"):
    """Base + adapter through PeftModel.from_pretrained; fails on any key peft did not match.
    `every_param_stored`: the marker of the method's parameters, each of which must be one of the
    file's tensors (None: not checked)."""
    base = load_base(os.path.join(ROOT, base_rel))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=NOISE, category=FutureWarning)
        model = PeftModel.from_pretrained(base, d, is_trainable=True)
    for w in caught:
        msg = str(w.message)
        if "missing" in msg.lower() or "unexpected" in msg.lower():
            raise RuntimeError(f"{d}: peft did not load the adapter cleanly: {msg}")
        print(f"  warning while loading: {msg}")
    model.train(False)
    # What peft now holds is exactly the file: same names, shapes and values.
    held = get_peft_model_state_dict(model)
    stored = safetensors.torch.load_file(os.path.join(d, "adapter_model.safetensors"))
    if set(held) != set(stored):
        raise RuntimeError(f"{d}: peft's adapter keys differ from the file's: "
                           f"missing {sorted(set(held) - set(stored))}, "
                           f"unexpected {sorted(set(stored) - set(held))}")
    for name, t in stored.items():
        if t.dtype != torch.float32 or not torch.equal(held[name], t):
            raise RuntimeError(f"{d}: {name} was not loaded as stored")
    # Every LoRA parameter of the model is an adapter tensor (nothing left at peft's init).
    if every_param_stored is not None:
        lora = [n for n, _ in model.named_parameters() if every_param_stored in n]
        if len(lora) != len(stored):
            raise RuntimeError(f"{d}: the model has {len(lora)} LoRA factors, the file {len(stored)}")
    return model


def compute(model, ids, labels):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=labels, use_cache=False)
    out.loss.backward()
    grads = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, name
            continue
        assert p.grad is not None, name
        # In memory: ...q_proj.lora_A.default.weight; in the file: ...q_proj.lora_A.weight.
        assert ".lora_A.default.weight" in name or ".lora_B.default.weight" in name, name
        grads[name.replace(".default.weight", ".weight")] = p.grad.detach().clone()
    return out.logits.detach().clone(), out.loss.detach().clone(), grads


def fixture(case, seed, expected, memory_model=None):
    d = os.path.join(OUT, case)
    size = sum(os.path.getsize(os.path.join(d, n)) for n in ADAPTER_FILES)
    assert size < MAX_BYTES, f"{d}: {size} bytes"
    gen = torch.Generator().manual_seed(seed)
    model = load_adapter(d, base_rel_of(case))
    ids, labels = make_inputs(model.config.vocab_size, gen)
    logits, loss, grads = compute(model, ids, labels)
    if memory_model is not None:  # the saved adapter reproduces the in-memory one exactly
        logits_mem, loss_mem, _ = compute(memory_model, ids, labels)
        assert torch.equal(logits, logits_mem) and torch.equal(loss, loss_mem), case
    # The adapter changes the model.
    with torch.no_grad(), model.disable_adapter():
        base_logits = model(input_ids=ids, use_cache=False).logits
    change = ((logits - base_logits).norm() / base_logits.norm()).item()
    assert change > 1e-2, f"{case}: the adapter barely changes the logits ({change:.3g})"
    # The loss is the documented one.
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).double()
    check = torch.nn.functional.cross_entropy(shift_logits, labels[:, 1:].reshape(-1),
                                              ignore_index=-100)
    assert abs(check.item() - loss.item()) <= 1e-6 * abs(check.item()), (check, loss)
    with safetensors.safe_open(os.path.join(d, "adapter_model.safetensors"), "np") as f:
        stored = set(f.keys())
    assert set(grads) == stored, (case, set(grads) ^ stored)

    tensors = {
        "input_ids": ids.to(torch.int32).numpy(),
        "labels": labels.to(torch.int32).numpy(),
        "logits": logits.numpy().astype(np.float32),
        "loss": np.array(loss.item(), dtype=np.float32),
    }
    for name, g in grads.items():
        tensors["grad." + name] = g.numpy().astype(np.float32)
    out = os.path.join(d, expected)
    safetensors.numpy.save_file(tensors, out)  # no metadata: its key order would vary
    for name in ADAPTER_FILES + (expected,):
        os.chmod(os.path.join(d, name), 0o644)
    total = size + os.path.getsize(out)
    assert os.path.getsize(out) < MAX_BYTES, f"{out}: too large"
    print(f"{case}: loss {loss.item():.6f}, adapter changes the logits by {change:.3f} (rel), "
          f"{len(grads)} gradients, {total} bytes")


# ---- prompt tuning ----------------------------------------------------------------------------

def write_prompt_adapter(case, base_rel, n, gen):
    d = fresh_adapter_dir(case)
    config = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=n)
    model = get_peft_model(load_base(os.path.join(ROOT, base_rel)), config)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == [PROMPT_PARAM], trainable
    with torch.no_grad():
        p = dict(model.named_parameters())[PROMPT_PARAM]
        p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    model.train(False)
    model.save_pretrained(d, safe_serialization=True)
    for extra in os.listdir(d):
        if extra not in ADAPTER_FILES:
            os.remove(os.path.join(d, extra))
    normalize_config(d, base_rel)
    print(f"{case}: prompt of {n} virtual tokens saved")
    return model


def load_prompt_adapter(d, base_rel):
    """Base + prompt adapter through PeftModel.from_pretrained: clean, and exactly the file."""
    base = load_base(os.path.join(ROOT, base_rel))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=NOISE, category=FutureWarning)
        # peft refuses is_trainable=True for prompt learning adapters: loaded for inference, then
        # the prompt alone is made to require a gradient.
        model = PeftModel.from_pretrained(base, d)
    for w in caught:
        msg = str(w.message)
        if "missing" in msg.lower() or "unexpected" in msg.lower():
            raise RuntimeError(f"{d}: peft did not load the adapter cleanly: {msg}")
        print(f"  warning while loading: {msg}")
    model.train(False)
    for name, p in model.named_parameters():
        p.requires_grad_(name == PROMPT_PARAM)
    held = get_peft_model_state_dict(model)
    stored = safetensors.torch.load_file(os.path.join(d, "adapter_model.safetensors"))
    if set(held) != {"prompt_embeddings"} or set(stored) != {"prompt_embeddings"}:
        raise RuntimeError(f"{d}: expected prompt_embeddings only: peft holds {sorted(held)}, "
                           f"the file {sorted(stored)}")
    t = stored["prompt_embeddings"]
    if t.dtype != torch.float32 or not torch.equal(held["prompt_embeddings"], t):
        raise RuntimeError(f"{d}: prompt_embeddings was not loaded as stored")
    if not torch.equal(dict(model.named_parameters())[PROMPT_PARAM].detach(), t):
        raise RuntimeError(f"{d}: the model's prompt is not the file's")
    return model


def compute_prompt(model, ids, labels):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=labels, use_cache=False)
    out.loss.backward()
    for name, p in model.named_parameters():
        if name != PROMPT_PARAM:
            assert p.grad is None, name
    grad = dict(model.named_parameters())[PROMPT_PARAM].grad.detach().clone()
    return out.logits.detach().clone(), out.loss.detach().clone(), grad


def fixture_prompt(case, base_rel, seed, expected, memory_model=None):
    d = os.path.join(OUT, case)
    size = sum(os.path.getsize(os.path.join(d, n)) for n in ADAPTER_FILES)
    assert size < MAX_BYTES, f"{d}: {size} bytes"
    gen = torch.Generator().manual_seed(seed)
    model = load_prompt_adapter(d, base_rel)
    n = model.peft_config["default"].num_virtual_tokens
    ids, labels = make_inputs(model.config.vocab_size, gen)
    logits, loss, grad = compute_prompt(model, ids, labels)
    assert logits.shape == (B, n + T, model.config.vocab_size), logits.shape
    if memory_model is not None:
        logits_mem, loss_mem, _ = compute_prompt(memory_model, ids, labels)
        assert torch.equal(logits, logits_mem) and torch.equal(loss, loss_mem), case
    # The prompt changes the real positions' predictions.
    with torch.no_grad(), model.disable_adapter():
        base_logits = model(input_ids=ids, use_cache=False).logits
    change = ((logits[:, n:] - base_logits).norm() / base_logits.norm()).item()
    assert change > 1e-2, f"{case}: the prompt barely changes the logits ({change:.3g})"
    # The loss is the documented one: the virtual positions carry no label.
    full = torch.cat([torch.full((B, n), -100, dtype=labels.dtype), labels], dim=1)
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).double()
    check = torch.nn.functional.cross_entropy(shift_logits, full[:, 1:].reshape(-1),
                                              ignore_index=-100)
    assert abs(check.item() - loss.item()) <= 1e-6 * abs(check.item()), (check, loss)
    tensors = {
        "input_ids": ids.to(torch.int32).numpy(),
        "labels": labels.to(torch.int32).numpy(),
        "logits": logits.numpy().astype(np.float32),
        "loss": np.array(loss.item(), dtype=np.float32),
        "grad.prompt_embeddings": grad.numpy().astype(np.float32),
    }
    out = os.path.join(d, expected)
    safetensors.numpy.save_file(tensors, out)
    for name in ADAPTER_FILES + (expected,):
        os.chmod(os.path.join(d, name), 0o644)
    total = size + os.path.getsize(out)
    assert os.path.getsize(out) < MAX_BYTES, f"{out}: too large"
    print(f"{case}: loss {loss.item():.6f}, the prompt changes the logits by {change:.3f} (rel), "
          f"{total} bytes")


# ---- IA3 --------------------------------------------------------------------------------------

# case -> (base, IA3Config keyword arguments, seed)
IA3_CASES = {
    "ia3_llama": ("tests/golden/models/llama", {}, 3021),
    "ia3_qwen2": ("tests/golden/models/qwen2", {}, 3022),
    "ia3_mixed": ("tests/golden/models/llama",
                  dict(target_modules=ALL, feedforward_modules=["q_proj", "o_proj", "up_proj"]),
                  3023),
    "tailor_ia3": ("tests/golden/models/llama", None, 3024),
}


def write_ia3_adapter(case, base_rel, kwargs, gen):
    d = fresh_adapter_dir(case)
    model = get_peft_model(load_base(os.path.join(ROOT, base_rel)),
                           IA3Config(task_type="CAUSAL_LM", **kwargs))
    n = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ia3_l." in name:
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=gen))
                n += 1
            else:
                assert not p.requires_grad, f"{name}: trainable but not an IA3 vector"
    assert n > 0
    save_adapter(model, d, base_rel)
    path = os.path.join(d, "adapter_config.json")  # feedforward_modules is a set in peft too
    with open(path) as f:
        cfg = json.load(f)
    if isinstance(cfg.get("feedforward_modules"), list):
        cfg["feedforward_modules"] = sorted(cfg["feedforward_modules"])
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"{case}: {n} IA3 vectors saved")
    return model


def fixture_merged(case, base_rel, seed, memory_model, file_name):
    """What IA3's and DoRA's golden tests read: logits, loss and the adapter's gradients on a
    fixed batch, and the logits of peft's merge_and_unload(). `file_name` maps a parameter's
    in-memory name to its name in the adapter file."""
    d = os.path.join(OUT, case)
    model = load_adapter(d, base_rel, every_param_stored=None)
    stored = safetensors.torch.load_file(os.path.join(d, "adapter_model.safetensors"))
    gen = torch.Generator().manual_seed(seed)
    ids, labels = make_inputs(model.config.vocab_size, gen)
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=labels, use_cache=False)
    out.loss.backward()
    grads = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, name
            continue
        grads[file_name(name)] = p.grad.detach().clone()
    assert set(grads) == set(stored), (set(grads) ^ set(stored))
    logits, loss = out.logits.detach().clone(), out.loss.detach().clone()
    with torch.no_grad():
        if memory_model is not None:  # the saved adapter reproduces the in-memory one exactly
            mem = memory_model(input_ids=ids, use_cache=False).logits
            assert torch.equal(mem, logits), case
        with model.disable_adapter():
            base_logits = model(input_ids=ids, use_cache=False).logits
        merged = model.merge_and_unload()
        merged_logits = merged(input_ids=ids, use_cache=False).logits.detach().clone()
    change = ((logits - base_logits).norm() / base_logits.norm()).item()
    assert change > 1e-2, f"{case}: the adapter barely changes the logits ({change:.3g})"
    merge_err = ((merged_logits - logits).norm() / logits.norm()).item()
    assert merge_err < 1e-5, (case, merge_err)
    tensors = {
        "input_ids": ids.to(torch.int32).numpy(),
        "labels": labels.to(torch.int32).numpy(),
        "logits": logits.numpy().astype(np.float32),
        "merged_logits": merged_logits.numpy().astype(np.float32),
        "loss": np.array(loss.item(), dtype=np.float32),
    }
    for name, g in grads.items():
        tensors["grad." + name] = g.numpy().astype(np.float32)
    out_path = os.path.join(d, "expected.safetensors")
    safetensors.numpy.save_file(tensors, out_path)
    for name in ADAPTER_FILES + ("expected.safetensors",):
        os.chmod(os.path.join(d, name), 0o644)
    total = sum(os.path.getsize(os.path.join(d, n)) for n in ADAPTER_FILES + ("expected.safetensors",))
    assert total < 2 * MAX_BYTES, f"{d}: {total} bytes"
    print(f"{case}: loss {loss.item():.6f}, the adapter changes the logits by {change:.3f} (rel), "
          f"merged vs unmerged {merge_err:.2e}, {len(grads)} gradients, {total} bytes")


def ia3_file_name(name):
    """In memory: ...k_proj.ia3_l.default; in the file: ...k_proj.ia3_l."""
    assert ".ia3_l.default" in name, name
    return name.replace(".ia3_l.default", ".ia3_l")


# ---- DoRA -------------------------------------------------------------------------------------

# case -> (base, LoraConfig keyword arguments, seed); every case is LoRA with use_dora=True.
DORA_CASES = {
    "dora_llama": ("tests/golden/models/llama", dict(r=4, lora_alpha=8, target_modules=ALL), 3031),
    "dora_qwen2": ("tests/golden/models/qwen2",
                   dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                        use_rslora=True), 3032),
    "tailor_dora": ("tests/golden/models/llama", None, 3033),
}


def dora_file_name(name):
    """In memory: ...q_proj.lora_A.default.weight, ...q_proj.lora_magnitude_vector.default.weight;
    in the file: ...q_proj.lora_A.weight, ...q_proj.lora_magnitude_vector."""
    if ".lora_magnitude_vector.default.weight" in name:
        return name.replace(".lora_magnitude_vector.default.weight", ".lora_magnitude_vector")
    assert ".lora_A.default.weight" in name or ".lora_B.default.weight" in name, name
    return name.replace(".default.weight", ".weight")


def write_dora_adapter(case, base_rel, kwargs, gen):
    """LoRA factors re-drawn as redraw_lora's; each magnitude then set to peft's initial value
    (the row norms of W + s B A) times 1 + 0.2 N(0, 1), so that c != 1 and m matters."""
    d = fresh_adapter_dir(case)
    config = LoraConfig(lora_dropout=0.0, init_lora_weights=False, bias="none",
                        task_type="CAUSAL_LM", use_dora=True, **kwargs)
    model = get_peft_model(load_base(os.path.join(ROOT, base_rel)), config)
    n = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_A." in name:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            elif ".lora_B." in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            elif ".lora_magnitude_vector." in name:
                continue
            else:
                assert not p.requires_grad, f"{name}: trainable but not a DoRA parameter"
                continue
            n += 1
        for module in model.modules():
            if hasattr(module, "lora_magnitude_vector") and "default" in module.lora_magnitude_vector:
                w = module.get_base_layer().weight
                lora = module.lora_B["default"].weight @ module.lora_A["default"].weight
                norm = torch.linalg.norm(w + module.scaling["default"] * lora, dim=1)
                mag = module.lora_magnitude_vector["default"].weight
                mag.copy_(norm * (1.0 + 0.2 * torch.randn(norm.shape, generator=gen)))
                n += 1
    assert any(".lora_magnitude_vector" in name for name, _ in model.named_parameters()), case
    save_adapter(model, d, base_rel)
    print(f"{case}: {n} DoRA tensors saved")
    return model


def main():
    args = sys.argv[1:]
    tailor = None
    if len(args) >= 2 and args[0] == "--tailor":
        tailor = os.path.abspath(args[1])
        args = args[2:]
    only = set(args)
    if only - set(CASES) - set(PROMPT_CASES) - set(IA3_CASES) - set(DORA_CASES) or any(a.startswith("-") for a in args):
        print(__doc__, file=sys.stderr)
        return 2
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=NOISE, category=FutureWarning)
    os.makedirs(OUT, exist_ok=True)
    for case, (kwargs, seed, expected) in CASES.items():
        if only and case not in only:
            continue
        if kwargs is None:
            if tailor is not None:
                export_tailor(tailor, case)
            fixture(case, seed, expected)
        else:
            gen = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)
            memory_model = write_peft_adapter(case, kwargs, gen)
            fixture(case, seed + 100, expected, memory_model)
    for case, (base_rel, n, seed, expected) in PROMPT_CASES.items():
        if only and case not in only:
            continue
        if n is None:
            if tailor is not None:
                export_tailor(tailor, case)
            fixture_prompt(case, base_rel, seed, expected)
        else:
            gen = torch.Generator().manual_seed(seed)
            memory_model = write_prompt_adapter(case, base_rel, n, gen)
            fixture_prompt(case, base_rel, seed + 100, expected, memory_model)
    for cases, write, file_name in ((IA3_CASES, write_ia3_adapter, ia3_file_name),
                                    (DORA_CASES, write_dora_adapter, dora_file_name)):
        for case, (base_rel, kwargs, seed) in cases.items():
            if only and case not in only:
                continue
            if kwargs is None:
                if tailor is not None:
                    export_tailor(tailor, case)
                fixture_merged(case, base_rel, seed, None, file_name)
                continue
            gen = torch.Generator().manual_seed(seed)
            memory_model = write(case, base_rel, kwargs, gen)
            fixture_merged(case, base_rel, seed + 100, memory_model, file_name)
    # All cases: the file starts afresh; some: a paragraph for them is added.
    with open(os.path.join(OUT, "VERSIONS.txt"), "a" if only else "w") as f:
        if only:
            f.write(f"\n{', '.join(sorted(only))} regenerated later with:\n")
        else:
            f.write("Generated by tests/golden/make_peft_fixtures.py with:\n")
        f.write(f"python {platform.python_version()}\n")
        f.write(f"torch {torch.__version__}\n")
        f.write(f"transformers {transformers.__version__}\n")
        f.write(f"peft {peft.__version__}\n")
        f.write(f"safetensors {safetensors.__version__}\n")
        f.write(f"numpy {np.__version__}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
