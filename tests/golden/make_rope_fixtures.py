#!/usr/bin/env python3
"""Builds tests/golden/rope/rope_cases.json, the RoPE-scaling reference of
tests/model/rope_scaling_test.cpp, with transformers' own rope init functions.

Each case is a config.json (the keys a Hub config carries for its RoPE) of a family Tailor reads;
transformers builds its config class from it and ROPE_INIT_FUNCTIONS[rope_type] returns the
inverse frequencies and the attention scaling (the factor transformers multiplies cos and sin by,
so q.k scales by its square). For longrope both sets are recorded: `inv_freq` for sequences up to
original_max_position_embeddings (seq_len None: the short factors), `inv_freq_long` past it
(seq_len = original + 1: the long factors), as the model's rotary embedding switches between them.

  {"versions": {...}, "cases": [{"name", "config": {...}, "inv_freq": [...],
                                 "inv_freq_long": [...] (longrope only), "attention_scaling"}]}

Cases: yarn as Qwen3 documents it (factor 4, original 32768), yarn with mscale / mscale_all_dim
(DeepSeek style), yarn with an explicit attention_factor, beta_fast / beta_slow and truncate
false, longrope as Phi-3 128k
writes it (top-level original_max_position_embeddings, factors per frequency), longrope with an
explicit attention_factor.

Usage: pip install torch transformers
       python3 tests/golden/make_rope_fixtures.py
"""
import copy
import json
import os
import platform

import torch
import transformers
from transformers import Phi3Config, Qwen3Config
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "rope", "rope_cases.json")

HEAD_DIM = 16  # 8 frequencies

QWEN3 = dict(model_type="qwen3", vocab_size=300, hidden_size=64, intermediate_size=96,
             num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2, head_dim=HEAD_DIM,
             rope_theta=1000000.0, max_position_embeddings=131072)
PHI3 = dict(model_type="phi3", vocab_size=300, hidden_size=64, intermediate_size=96,
            num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
            rope_theta=10000.0, max_position_embeddings=131072,
            original_max_position_embeddings=4096, sliding_window=None, bos_token_id=1,
            eos_token_id=2, pad_token_id=None)

SHORT = [1.0, 1.02, 1.05, 1.1, 1.3, 1.7, 2.4, 3.1]
LONG = [1.08, 1.2, 1.6, 2.5, 5.0, 9.0, 17.5, 30.2]

CASES = {
    "yarn_qwen3": dict(QWEN3, rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                            "original_max_position_embeddings": 32768}),
    "yarn_mscale": dict(QWEN3, rope_scaling={"rope_type": "yarn", "factor": 40.0,
                                             "original_max_position_embeddings": 4096,
                                             "mscale": 1.0, "mscale_all_dim": 0.707}),
    "yarn_explicit": dict(QWEN3, max_position_embeddings=16384, rope_scaling={"rope_type": "yarn", "factor": 8.0,
                                               "original_max_position_embeddings": 2048,
                                               "attention_factor": 1.25, "beta_fast": 16.0,
                                               "beta_slow": 2.0, "truncate": False}),
    "longrope_phi3": dict(PHI3, rope_scaling={"type": "longrope", "short_factor": SHORT,
                                              "long_factor": LONG}),
    "longrope_attention_factor": dict(PHI3, max_position_embeddings=16384,
                                      original_max_position_embeddings=2048,
                                      rope_scaling={"rope_type": "longrope", "short_factor": SHORT,
                                                    "long_factor": LONG,
                                                    "attention_factor": 1.1}),
}


def config_of(d):
    kw = {k: v for k, v in copy.deepcopy(d).items() if k != "model_type"}
    return (Qwen3Config if d["model_type"] == "qwen3" else Phi3Config)(**kw)


def main():
    cases = []
    for name, cfg in CASES.items():
        config = config_of(cfg)
        rope_type = config.rope_parameters["rope_type"]
        init = ROPE_INIT_FUNCTIONS[rope_type]
        inv_freq, scaling = init(config, torch.device("cpu"))
        case = {"name": name, "config": cfg, "inv_freq": [float(x) for x in inv_freq.float()],
                "attention_scaling": float(scaling)}
        if rope_type == "longrope":
            original = config.rope_parameters["original_max_position_embeddings"]
            long_freq, long_scaling = init(config, torch.device("cpu"), seq_len=original + 1)
            assert long_scaling == scaling
            case["inv_freq_long"] = [float(x) for x in long_freq.float()]
            assert case["inv_freq_long"] != case["inv_freq"], name
        assert len(case["inv_freq"]) == HEAD_DIM // 2, name
        cases.append(case)
        print(f"{name}: {rope_type}, attention scaling {scaling:.6f}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"versions": {"python": platform.python_version(), "torch": torch.__version__,
                                "transformers": transformers.__version__},
                   "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
