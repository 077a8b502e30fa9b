#!/usr/bin/env python3
"""Builds the greedy-generation fixture of tests/eval/generate_golden_test.cpp with `transformers`.

For every tiny golden model already committed under tests/golden/models/ (written by
make_model_fixtures.py; this script only reads them) and for the PEFT LoRA adapters under
tests/golden/peft/ (make_peft_fixtures.py) on the llama base, a few prompts of different lengths
(random token ids from a seeded generator, one of them a single token) are run through Hugging
Face `generate` greedily (do_sample=False, f32, eager attention, CPU), one prompt at a time (no
padding), stopping at the config's EOS. The prompts and the tokens generated are written to
tests/golden/generate/greedy.json:

  {"versions": {...},
   "cases": [{"name", "model" (repository-relative), "adapter" (or null), "eos_token_id",
              "max_new_tokens", "prompts": [[ids]], "generated": [[ids]] (EOS included when
              generated), "min_margin": smallest gap between the best and second-best logit over
              all steps}]}

min_margin guards against near-ties: a case whose greedy choice is within 1e-4 of the runner-up
would make the comparison depend on float rounding, and the script refuses to write it.

Mistral's fixture has sliding_window 16 and Phi-3's 24: their prompts plus new tokens stay within
the window, where it has no effect. The mistral_window (window 5), qwen2_window (window 4 on
layers 1 and 2), qwen3_window (window 4 on layers 0 and 2) and gemma3 (window 4 on layers 0-2 of
4, which rotate with their own RoPE base) cases generate far past their windows: transformers' generate with its sliding-window cache against Tailor's full cache with
the window masked. phi3_longrope is left out: transformers switches longrope's factors per
forward on the batch's largest position, so a batch of prompts (as Tailor runs them) may switch
at another step than each prompt alone.

Usage: pip install torch transformers peft
       python3 tests/golden/make_generate_fixtures.py
Deterministic for fixed package versions (recorded in the JSON).
"""
import json
import os
import platform
import sys
import warnings

import peft
import torch
import transformers
from peft import PeftModel
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "generate", "greedy.json")

PROMPT_LENGTHS = (3, 1, 8)
MIN_MARGIN = 1e-4

# name -> (model directory, adapter directory or None, max_new_tokens, seed)
CASES = {
    "llama": ("tests/golden/models/llama", None, 20, 4001),
    "llama3_rope": ("tests/golden/models/llama3_rope", None, 20, 4002),
    "llama_tied": ("tests/golden/models/llama_tied", None, 20, 4003),
    "mistral": ("tests/golden/models/mistral", None, 8, 4004),  # 8 + 8 <= sliding_window 16
    "qwen2": ("tests/golden/models/qwen2", None, 20, 4005),
    "gpt2": ("tests/golden/models/gpt2", None, 20, 4006),
    "mistral_window": ("tests/golden/models/mistral_window", None, 20, 4013),
    "qwen2_window": ("tests/golden/models/qwen2_window", None, 20, 4014),
    "qwen3_window": ("tests/golden/models/qwen3_window", None, 20, 4015),
    "llama+lora_hub": ("tests/golden/models/llama", "tests/golden/peft/lora_hub", 20, 4007),
    "llama+lora_rslora": ("tests/golden/models/llama", "tests/golden/peft/lora_rslora", 20, 4008),
    "qwen3": ("tests/golden/models/qwen3", None, 20, 4009),
    "qwen3+lora": ("tests/golden/models/qwen3", "tests/golden/peft/lora_qwen3", 20, 4010),
    "qwen3_yarn": ("tests/golden/models/qwen3_yarn", None, 20, 4011),
    "phi3": ("tests/golden/models/phi3", None, 12, 4012),  # 8 + 12 <= sliding_window 24
    "gemma3": ("tests/golden/models/gemma3", None, 20, 4016),
}


def load(model_dir, adapter_dir):
    model = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, model_dir),
                                                 attn_implementation="eager",
                                                 dtype=torch.float32)
    if adapter_dir is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, os.path.join(ROOT, adapter_dir))
    model.train(False)
    return model


def greedy(model, prompt, max_new_tokens, eos):
    ids = torch.tensor([prompt], dtype=torch.int64)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             eos_token_id=eos, pad_token_id=eos, output_scores=True,
                             return_dict_in_generate=True)
    generated = out.sequences[0, len(prompt):].tolist()
    margin = float("inf")
    for step_scores in out.scores:
        top2 = torch.topk(step_scores[0].double(), 2).values
        margin = min(margin, (top2[0] - top2[1]).item())
    return generated, margin


def build_case(name, model_dir, adapter_dir, max_new_tokens, seed):
    model = load(model_dir, adapter_dir)
    config = model.config
    eos = int(config.eos_token_id)
    gen = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(0, config.vocab_size, (n,), generator=gen).tolist()
               for n in PROMPT_LENGTHS]
    generated, margins = [], []
    for p in prompts:
        g, m = greedy(model, p, max_new_tokens, eos)
        generated.append(g)
        margins.append(m)
    min_margin = min(margins)
    if min_margin < MIN_MARGIN:
        raise RuntimeError(f"{name}: a greedy step is a near-tie (margin {min_margin:.2e}); "
                           f"pick another seed")
    print(f"{name}: {[len(g) for g in generated]} tokens, min margin {min_margin:.3g}")
    return {"name": name, "model": model_dir, "adapter": adapter_dir, "eos_token_id": eos,
            "max_new_tokens": max_new_tokens, "prompts": prompts, "generated": generated,
            "min_margin": min_margin}


def main():
    if len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    cases = [build_case(name, *spec) for name, spec in CASES.items()]
    record = {
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "peft": peft.__version__},
        "cases": cases,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
