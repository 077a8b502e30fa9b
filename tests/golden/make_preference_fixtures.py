#!/usr/bin/env python3
"""Golden fixtures for the preference objectives (tests/objective/preference_golden_test.cpp).

A tiny random policy (the llama model fixture's weights plus noise, saved with save_pretrained
into tests/golden/preference/policy/) and its reference (tests/golden/models/llama itself) score
a dozen preference pairs of token ids in float64 with transformers; TRL's own trainers then
compute each objective from those log-probabilities:
  DPO and IPO    trl.DPOTrainer._compute_loss (precomputed reference log-probs)
  CPO and SimPO  trl.experimental.cpo.CPOTrainer.cpo_loss (+ cpo_alpha * NLL as its
                 get_batch_loss_metrics adds it)
  ORPO           trl.experimental.orpo.ORPOTrainer.odds_ratio_loss (NLL - mean, as it adds it)
The pair losses, rewards, policy log-probs, the batch loss and the gradient of the batch loss
(autograd) for two norm weights go to tests/golden/preference/expected.json.

Run from the repository root:  python3 tests/golden/make_preference_fixtures.py
Needs torch, transformers and trl (with datasets and accelerate).
"""
import collections
import json
import os
import types

import numpy as np
import torch
import torch.nn.functional as F
import transformers
import trl
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer
from trl.trainer.dpo_trainer import DPOTrainer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, "models", "llama")
OUT = os.path.join(ROOT, "preference")
EOS = 2
GRAD_PARAMS = ["model.norm.weight", "model.layers.1.post_attention_layernorm.weight"]

# Each objective: its Tailor name and parameters, and how TRL computes it.
CASES = [
    {"name": "dpo", "objective": "dpo", "dpo_loss": "sigmoid", "beta": 0.1, "label_smoothing": 0.0},
    {"name": "dpo_beta05", "objective": "dpo", "dpo_loss": "sigmoid", "beta": 0.5, "label_smoothing": 0.0},
    {"name": "ipo", "objective": "dpo", "dpo_loss": "ipo", "beta": 0.1, "label_smoothing": 0.0},
    {"name": "cpo", "objective": "cpo", "beta": 0.1, "label_smoothing": 0.0, "nll_weight": 1.0},
    {"name": "cpo_smoothed", "objective": "cpo", "beta": 0.2, "label_smoothing": 0.2, "nll_weight": 0.5},
    {"name": "simpo", "objective": "simpo", "beta": 2.0, "gamma": 0.5, "label_smoothing": 0.0},
    {"name": "simpo_smoothed", "objective": "simpo", "beta": 2.5, "gamma": 1.0, "label_smoothing": 0.1},
    {"name": "orpo", "objective": "orpo", "beta": 0.1, "nll_weight": 1.0},
]


def make_pairs(rng, n=12, vocab=300):
    pairs = []
    for _ in range(n):
        prompt = rng.integers(3, vocab, size=int(rng.integers(2, 6))).tolist()
        chosen = rng.integers(3, vocab, size=int(rng.integers(1, 7))).tolist() + [EOS]
        rejected = rng.integers(3, vocab, size=int(rng.integers(1, 7))).tolist() + [EOS]
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return pairs


def batch_of(pairs):
    """TRL's layout: the chosen rows then the rejected rows, right-padded; labels -100 off the answers."""
    rows = [p["prompt"] + p["chosen"] for p in pairs] + [p["prompt"] + p["rejected"] for p in pairs]
    answer_from = [len(p["prompt"]) for p in pairs] * 2
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    completion = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        completion[i, answer_from[i] : len(r)] = 1
    labels = ids.masked_fill(completion == 0, -100)
    return ids, mask, completion, labels


def per_token_logps(model, ids, mask, labels):
    """log p(label) at each shifted position, 0 where the label is ignored: [rows, width - 1]."""
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    shifted = labels[:, 1:]
    logp = torch.log_softmax(logits[:, :-1, :], dim=-1)
    picked = torch.gather(logp, 2, shifted.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * (shifted != -100), logits


def dpo_terms(case, ptl, ref_logps, completion):
    """TRL's DPOTrainer._compute_loss on a stub trainer whose model returns these log-probs."""
    n = ptl.shape[0] // 2
    width = ptl.shape[1] + 1
    outputs = types.SimpleNamespace(
        log_probs=ptl,
        entropy=torch.zeros_like(ptl),
        mean_logits=torch.zeros_like(ptl),
        is_top1=torch.zeros_like(ptl, dtype=torch.bool),
    )
    identity = lambda x: x  # noqa: E731
    stub = types.SimpleNamespace(
        model=types.SimpleNamespace(training=True),
        accelerator=types.SimpleNamespace(device="cpu", gather_for_metrics=identity, gather=identity),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=[case["dpo_loss"]],
        loss_weights=[1.0],
        beta=case["beta"],
        label_smoothing=case["label_smoothing"],
        use_weighting=False,
        _metrics={"train": collections.defaultdict(list), "eval": collections.defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
        args=types.SimpleNamespace(gradient_checkpointing_kwargs=None),
    )
    inputs = {
        "input_ids": torch.zeros(2 * n, width, dtype=torch.long),
        "attention_mask": torch.ones(2 * n, width, dtype=torch.long),
        "completion_mask": completion,
        "ref_chosen_logps": ref_logps[:n],
        "ref_rejected_logps": ref_logps[n:],
    }
    loss = DPOTrainer._compute_loss(stub, lambda **kwargs: outputs, inputs, return_outputs=False)
    return loss, stub._metrics["train"]


ADAMW_LR = 1e-2
ADAMW_STEPS = 3


def batch_loss(case, model, ids, mask, labels, completion, ref_sums, lengths, n):
    """The batch loss of `case` as TRL computes it (the same calls as in main)."""
    ptl, _ = per_token_logps(model, ids, mask, labels)
    sums = ptl.sum(dim=1)
    kind = case["objective"]
    if kind == "dpo":
        loss, _ = dpo_terms(case, ptl, ref_sums, completion)
        return loss
    avg = kind in ("simpo", "orpo")
    pc = sums[:n] / lengths[:n] if avg else sums[:n]
    pr = sums[n:] / lengths[n:] if avg else sums[n:]
    nll = -ptl[:n].sum() / completion[:n, 1:].sum()
    if kind in ("cpo", "simpo"):
        stub = types.SimpleNamespace(
            alpha=0.0, beta=case["beta"], label_smoothing=case["label_smoothing"],
            loss_type="simpo" if kind == "simpo" else "sigmoid", simpo_gamma=case.get("gamma", 0.5),
            accelerator=types.SimpleNamespace(device="cpu"))
        per_pair, _, _ = CPOTrainer.cpo_loss(stub, pc, pr)
        return per_pair.mean() + case.get("nll_weight", 0.0) * nll
    stub = types.SimpleNamespace(beta=case["beta"], accelerator=types.SimpleNamespace(device="cpu"))
    losses, _, _, _, _ = ORPOTrainer.odds_ratio_loss(stub, pc, pr)
    return case["nll_weight"] * nll - losses.mean()


def main():
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(23)
    ref = transformers.AutoModelForCausalLM.from_pretrained(BASE, torch_dtype=torch.float64).eval()
    policy = transformers.AutoModelForCausalLM.from_pretrained(BASE, torch_dtype=torch.float64).eval()
    gen = torch.Generator().manual_seed(23)
    with torch.no_grad():
        for _, p in sorted(policy.named_parameters()):
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    os.makedirs(os.path.join(OUT, "policy"), exist_ok=True)
    policy.to(torch.float32).save_pretrained(os.path.join(OUT, "policy"))
    # Score with exactly the float32 weights saved (Tailor loads those), in float64.
    policy = transformers.AutoModelForCausalLM.from_pretrained(
        os.path.join(OUT, "policy"), torch_dtype=torch.float64).eval()

    pairs = make_pairs(rng)
    n = len(pairs)
    ids, mask, completion, labels = batch_of(pairs)
    shift_completion = completion[:, 1:]
    lengths = shift_completion.sum(dim=1).to(torch.float64)
    with torch.no_grad():
        ref_ptl, _ = per_token_logps(ref, ids, mask, labels)
    ref_sums = ref_ptl.sum(dim=1)

    out = {"pairs": pairs, "grad_params": GRAD_PARAMS, "cases": [],
           "policy_logps_sum": None, "reference_logps_sum": ref_sums.tolist(),
           "answer_tokens": lengths.tolist()}
    for case in CASES:
        policy.zero_grad()
        ptl, logits = per_token_logps(policy, ids, mask, labels)
        sums = ptl.sum(dim=1)
        out["policy_logps_sum"] = sums.detach().tolist()
        kind = case["objective"]
        record = dict(case)
        if kind == "dpo":
            loss, metrics = dpo_terms(case, ptl, ref_sums, completion)
            # Per-pair values (TRL logs only their means): the same formulas on the same numbers.
            pc, pr = sums[:n], sums[n:]
            rc, rr = ref_sums[:n], ref_sums[n:]
            b = case["beta"]
            if case["dpo_loss"] == "ipo":
                delta = (pc - rc) / lengths[:n] - (pr - rr) / lengths[n:]
                per_pair = (delta - 1 / (2 * b)) ** 2
            else:
                per_pair = -F.logsigmoid(b * ((pc - rc) - (pr - rr)))
            reward_c = b * (pc - rc)
            reward_r = b * (pr - rr)
            record["trl_metrics"] = {k: float(v[-1]) for k, v in metrics.items()
                                     if k.startswith(("rewards/", "logps/"))}
            logp_c, logp_r = pc, pr
            assert abs(float(per_pair.mean()) - float(loss)) < 1e-12
        else:
            avg = kind in ("simpo", "orpo")
            pc = sums[:n] / lengths[:n] if avg else sums[:n]
            pr = sums[n:] / lengths[n:] if avg else sums[n:]
            # NLL of the chosen answers: CrossEntropyLoss's mean over their tokens.
            nll = -ptl[:n].sum() / shift_completion[:n].sum()
            if kind in ("cpo", "simpo"):
                stub = types.SimpleNamespace(
                    alpha=0.0, beta=case["beta"], label_smoothing=case["label_smoothing"],
                    loss_type="simpo" if kind == "simpo" else "sigmoid",
                    simpo_gamma=case.get("gamma", 0.5),
                    accelerator=types.SimpleNamespace(device="cpu"))
                per_pair, reward_c, reward_r = CPOTrainer.cpo_loss(stub, pc, pr)
                alpha = case.get("nll_weight", 0.0)
                loss = per_pair.mean() + alpha * nll
            else:
                stub = types.SimpleNamespace(beta=case["beta"],
                                             accelerator=types.SimpleNamespace(device="cpu"))
                losses, reward_c, reward_r, _, _ = ORPOTrainer.odds_ratio_loss(stub, pc, pr)
                per_pair = -losses  # TRL: loss = nll - losses.mean()
                loss = case["nll_weight"] * nll - losses.mean()
            logp_c, logp_r = pc, pr
            record["nll"] = float(nll)
        loss.backward()
        grads = dict(policy.named_parameters())
        record.update({
            "loss": float(loss),
            "pair_losses": per_pair.detach().tolist(),
            "rewards_chosen": reward_c.detach().tolist(),
            "rewards_rejected": reward_r.detach().tolist(),
            "logps_chosen": logp_c.detach().tolist(),
            "logps_rejected": logp_r.detach().tolist(),
            "rewards_accuracy": float((reward_c > reward_r).double().mean()),
            "rewards_margin": float((reward_c - reward_r).mean()),
            "grads": {name: grads[name].grad.reshape(-1).tolist() for name in GRAD_PARAMS},
        })
        out["cases"].append(record)
    # A few full-batch AdamW steps (torch.optim.AdamW, no weight decay) on each objective's loss,
    # from the saved policy: the loss before each update and after the last.
    out["adamw"] = {"lr": ADAMW_LR, "steps": ADAMW_STEPS, "cases": {}}
    for case in CASES:
        if case["name"] not in ("dpo", "ipo", "cpo", "simpo", "orpo"):
            continue
        model = transformers.AutoModelForCausalLM.from_pretrained(
            os.path.join(OUT, "policy"), torch_dtype=torch.float64).train()
        opt = torch.optim.AdamW(model.parameters(), lr=ADAMW_LR, betas=(0.9, 0.999), eps=1e-8,
                                weight_decay=0.0)
        losses = []
        for _ in range(ADAMW_STEPS + 1):
            opt.zero_grad()
            loss = batch_loss(case, model, ids, mask, labels, completion, ref_sums, lengths, n)
            losses.append(float(loss))
            if len(losses) <= ADAMW_STEPS:
                loss.backward()
                opt.step()
        out["adamw"]["cases"][case["name"]] = losses
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("Generated by tests/golden/make_preference_fixtures.py with:\n")
        for mod in (torch, transformers, trl):
            f.write(f"{mod.__name__} {mod.__version__}\n")


if __name__ == "__main__":
    main()
