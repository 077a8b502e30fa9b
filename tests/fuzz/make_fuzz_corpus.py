#!/usr/bin/env python3
"""Writes the seed corpora of the file-reading fuzz targets into tests/fuzz/corpus/<target>/ from
files committed elsewhere in the repository (configs, datasets, golden fixtures), plus a few
hand-made inputs that each take one refusal path. Standard library only; deterministic.

  python3 tests/fuzz/make_fuzz_corpus.py

Inputs that a fuzzer once failed on are added to corpus/<target>/ by hand (named crash-*), and
are kept when this script runs again: it only writes seed-* files.
"""
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def clear(target):
    d = os.path.join(CORPUS, target)
    for p in glob.glob(os.path.join(d, "seed-*")):
        os.remove(p)


def main():
    for t in ("config_yaml", "jsonl", "tokenizer_json", "manifest", "checkpoint", "adapter_config"):
        clear(t)

    # Config YAML: the shipped configs, the golden training configs, and one error of each kind.
    for p in sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml")) +
                    glob.glob(os.path.join(ROOT, "tests", "golden", "*", "*.yaml"))):
        rel = os.path.relpath(p, ROOT)
        put("config_yaml", rel.replace("/", "_"), read(rel))
    data = "datasets/devils-dictionary/devils_dictionary.txt"
    put("config_yaml", "unknown_key.yaml",
        f"output: {{dir: /tmp/x}}\nmodel: {{vocab_size: 257, hidden_size: 16, num_layers: 1, "
        f"num_heads: 2, intermediate_size: 32}}\ndata: {{train: {data}, seq_len: 16}}\n"
        f"train: {{steps: 3, global_batch: 2}}\noptimizer: {{lr: 1.0e-3, betaz: [0.9, 0.95]}}\n")
    put("config_yaml", "peft_lora.yaml",
        f"output: {{dir: /tmp/x}}\nmodel: {{path: tests/golden/models/llama}}\n"
        f"data: {{train: {data}, seq_len: 16, tokenizer: byte}}\ntrain: {{steps: 3, global_batch: 2}}\n"
        f"optimizer: {{lr: 1.0e-3}}\npeft: {{method: lora, rank: 4, alpha: 8, "
        f"target_modules: [q_proj, v_proj]}}\nparallel: {{tensor: 2, data: 1}}\n")
    put("config_yaml", "anchors.yaml", "a: &x {b: 1}\nc: *x\n<<: *x\n")

    # JSONL: one record of each kind, the bundled samples' first lines, bad lines.
    put("jsonl", "kinds.jsonl",
        '{"text": "hello world"}\n'
        '{"prompt": "Q: 1+1?\\n", "completion": "2"}\n'
        '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, '
        '{"role": "assistant", "content": "a"}]}\n'
        '{"src": "Open", "tgt": "\u00d6ffnen", "src_lang": "eng_Latn", "tgt_lang": "deu_Latn"}\n')
    put("jsonl", "bad_lines.jsonl",
        '{"text": "a"}\n[1]\n{"text": 3}\n{bad\n{"text": "\\u00e9\\ud83d\\ude00"}\n{"text": "cut')
    for rel in sorted(glob.glob(os.path.join(ROOT, "datasets", "*", "*.jsonl"))):
        with open(rel, "rb") as f:
            head = b"".join(f.readline() for _ in range(3))
        put("jsonl", os.path.relpath(rel, ROOT).replace("/", "_"), head)

    # tokenizer.json: every family's golden tokenizer.
    for p in sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "tokenizers", "*", "tokenizer.json"))):
        put("tokenizer_json", os.path.basename(os.path.dirname(p)) + ".json",
            read(os.path.relpath(p, ROOT)))

    # Checkpoint manifests: every committed checkpoint's, and ones with hostile file names.
    for p in sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "*", "*", "checkpoint",
                                           "manifest.json"))):
        rel = os.path.relpath(p, ROOT)
        put("manifest", rel.split("/")[3] + ".json", read(rel))
        m = json.loads(read(rel))
        m["files"][0]["name"] = "../" + m["files"][0]["name"]
        put("manifest", rel.split("/")[3] + "_escape.json", json.dumps(m, indent=2))

    # Whole checkpoint: byte 0 picks the file replaced (checkpoint_fuzz.cpp), the rest its content.
    ck = "tests/golden/peft/tailor_prompt/checkpoint"
    for i, name in enumerate(["manifest.json", "model-tp0-of-1.h5", "state-rank0.json", "config.yaml"]):
        put("checkpoint", f"{i}_{name}", bytes([i]) + read(f"{ck}/{name}"))

    # adapter_config.json: every golden adapter (peft's and Tailor's), and refused settings.
    for p in sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "peft", "*", "adapter_config.json"))):
        rel = os.path.relpath(p, ROOT)
        put("adapter_config", rel.split("/")[3] + ".json", read(rel))
    lora = json.loads(read("tests/golden/peft/lora_hub/adapter_config.json"))
    for key, value in (("use_dora", True), ("rank_pattern", {"q_proj": 8}), ("fan_in_fan_out", True),
                       ("target_modules", ["not_a_module"])):
        put("adapter_config", f"lora_{key}.json", json.dumps(dict(lora, **{key: value}), indent=2))


if __name__ == "__main__":
    main()
