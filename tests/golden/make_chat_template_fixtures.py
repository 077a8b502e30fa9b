#!/usr/bin/env python3
"""Chat-template fixtures: conversations rendered by transformers' apply_chat_template.

For each preset Tailor ships (llama3, chatml, mistral), a tokenizer is given that family's chat
template as documented by its model cards (written out below in Jinja, as the families publish
them) and renders a set of conversations with tokenize=False. The output,
tests/golden/chat_templates/chat_templates.json, is what Tailor's template renderer must produce
character for character (tests/data/chat_template_golden_test.cpp). Run from the repository root:

    python3 tests/golden/make_chat_template_fixtures.py
"""
import json
import os

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

# Meta Llama 3 Instruct: bos, then each message as a header block, content trimmed.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# ChatML (Qwen, OpenHermes, ...).
CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Mistral Instruct: [INST] user [/INST]assistant</s>; no system role, so a system message is
# prepended to the first user turn with a blank line.
MISTRAL = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system_message = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set system_message = '' %}{% set loop_messages = messages %}{% endif %}"
    "{{ bos_token }}"
    "{% for message in loop_messages %}"
    "{% if message['role'] == 'user' %}"
    "{% if loop.first %}{{ '[INST] ' + system_message + message['content'] + ' [/INST]' }}"
    "{% else %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
)

FAMILIES = {
    "llama3": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    "chatml": (CHATML, None, "<|im_end|>"),
    "mistral": (MISTRAL, "<s>", "</s>"),
}

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "Translate to German: Open file"},
     {"role": "assistant", "content": "Datei öffnen"}],
    [{"role": "system", "content": "Answer with a number."},
     {"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And 3 + 5?"}, {"role": "assistant", "content": "8"}],
    [{"role": "user", "content": "  spaced out \n"},
     {"role": "assistant", "content": "line one\nline two"}],
    [{"role": "user", "content": "Use %s and {name} and <b>tags</b>"},
     {"role": "assistant", "content": "Verwende %s, {name} und <b>Tags</b> — ünïcödé 日本語"}],
]


def tokenizer_for(template, bos, eos):
    vocab = {"[UNK]": 0}
    for t in filter(None, [bos, eos]):
        vocab[t] = len(vocab)
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="[UNK]")),
                                  unk_token="[UNK]", bos_token=bos, eos_token=eos)
    tok.chat_template = template
    return tok


def main():
    out = []
    for preset, (template, bos, eos) in FAMILIES.items():
        tok = tokenizer_for(template, bos, eos)
        for i, messages in enumerate(CONVERSATIONS):
            rendered = tok.apply_chat_template(messages, tokenize=False)
            out.append({"preset": preset, "conversation": i, "messages": messages,
                        "rendered": rendered})
    path = os.path.join("tests", "golden", "chat_templates", "chat_templates.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(out)} renderings to {path}")


if __name__ == "__main__":
    main()
