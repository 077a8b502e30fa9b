#include "cli/starter_configs.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tailor::cli {
namespace {

// ---- the pieces the presets share ----

constexpr std::string_view kModel = R"(model:
  # A tiny LLaMA-style model defined here, trained from its seeded initialization. To fine-tune a
  # Hugging Face model instead, replace the keys below by its directory (config.json,
  # *.safetensors, tokenizer.json or tokenizer.model) and drop data.tokenizer:
  #   path: /models/Llama-3.2-1B
  family: llama              # llama | gpt2
  vocab_size: 257            # the byte tokenizer: 256 bytes + EOS
  hidden_size: 128
  num_layers: 4
  num_heads: 4
  num_kv_heads: 2            # fewer than num_heads: grouped-query attention
  intermediate_size: 352
  max_position_embeddings: 512
)";

constexpr std::string_view kOptimizer = R"(optimizer:
  name: adamw
  lr: 3.0e-3                 # peak learning rate (1e-4 to 3e-4 suits full fine-tuning of a
                             # pretrained model; LoRA takes about 10x more)
  betas: [0.9, 0.95]
  weight_decay: 0.1
  grad_clip: 1.0

schedule:
  type: cosine               # constant | linear | cosine, after the warmup
  warmup_ratio: 0.05         # the first 5% of the steps (or warmup_steps: N)
  min_lr_ratio: 0.1          # the last step runs at lr * 0.1
)";

constexpr std::string_view kRuntime = R"(checkpoint:
  every_steps: 50            # and at the last step; `tailor train` again resumes from the newest
  keep_last: 2

runtime:
  device: auto               # auto (a GPU when one is visible) | cpu | cuda
  # Several GPUs or processes: launch/mpirun.sh -np 8 tailor train THIS.yaml, with
  # parallel: {tensor: 2} for tensor parallelism (data parallelism takes the other ranks).
)";

std::string full_preset() {
  return std::string(R"(# Full fine-tuning: every weight trains.
# A starter written by `tailor init full`: check it with `tailor validate FILE`, train with
# `tailor train FILE`, shorten a try with `train.steps=10`. Every key: docs/config-reference.md.
output:
  dir: runs/full             # config.resolved.yaml, metrics.jsonl, tb/, checkpoints/, export/

)") + std::string(kModel) + R"(
data:
  train: datasets/devils-dictionary/devils_dictionary.txt   # relative to where tailor runs
  format: text               # text | jsonl ({"text"}, {"prompt", "completion"}, {"messages"}, ...)
  tokenizer: byte            # byte | model (the tokenizer of model.path)
  split: paragraph           # text: one document per paragraph (none | paragraph | line)
  seq_len: 256               # tokens per packed training sequence
  valid_fraction: 0.02       # hold out 2% of the documents for the validation loss

train:
  steps: 300                 # or epochs: N (passes over the data), not both
  seed: 1
  global_batch: 16           # sequences per optimizer step, all ranks together
  micro_batch: auto          # per forward/backward on one rank; smaller saves memory
  log_every: 10
  eval_every: 100            # validation loss every 100 steps (and at the end)

)" + std::string(kOptimizer) + "\n" + std::string(kRuntime);
}

std::string lora_preset() {
  return std::string(R"(# LoRA: low-rank adapters train, the base model stays frozen.
# The adapters sit beside the attention projections (peft.target_modules). A starter written by
# `tailor init lora`: check it with `tailor validate FILE`, train with
# `tailor train FILE`. The export holds the merged model and export/adapter/ (PEFT format).
# Every key: docs/config-reference.md; the methods: docs/peft.md.
output:
  dir: runs/lora

)") + std::string(kModel) + R"(
data:
  train: datasets/devils-dictionary/chat.sample.jsonl
  format: jsonl              # {"messages": [{"role", "content"}, ...]} records
  tokenizer: byte
  seq_len: 512
  template:
    preset: chatml           # plain | llama3 | chatml | mistral | qwen3 | phi3 | gemma, or a file
  train_on_prompt: false     # loss on the answers only
  valid_fraction: 0.05

train:
  steps: 200
  seed: 1
  global_batch: 8
  log_every: 10
  eval_every: 50

peft:
  method: lora               # none | lora | prompt_tuning | adapter
  rank: 8                    # r
  alpha: 16                  # scale = alpha / r
  dropout: 0.05
  target_modules: [q_proj, v_proj]   # or [all-linear]
  # adapter: runs/earlier/export/adapter    # start from a PEFT adapter directory

)" + std::string(kOptimizer) + "\n" + std::string(kRuntime);
}

std::string translation_preset() {
  return std::string(R"(# Translation: sentence pairs, loss on the target side only.
# BLEU and chrF on the dev set during training, and the best checkpoint kept. A starter written by
# `tailor init translation`: check it with `tailor validate FILE`, train with `tailor train FILE`,
# then score its best checkpoint with
# `tailor eval FILE --checkpoint runs/translation/checkpoints/best`.
# Every key: docs/config-reference.md; evaluation: docs/evaluation.md.
output:
  dir: runs/translation

)") + std::string(kModel) + R"(
data:
  train: datasets/gettext-translations/train.sample.jsonl
  format: jsonl              # {"src", "tgt", "src_lang", "tgt_lang"} records
  tokenizer: byte
  seq_len: 256
  template:
    preset: plain
    translation: "Translate from {src_lang_name} to {tgt_lang_name}:\n{src}\n"
  train_on_prompt: false     # loss on the translation (and the EOS that ends it) only
  overlong: drop             # pairs longer than seq_len are left out (and counted)
  valid: datasets/gettext-translations/dev.sample.jsonl

train:
  steps: 300                 # or epochs: N
  seed: 1
  global_batch: 16
  log_every: 10
  eval_every: 50             # dev loss, and the metrics below, every 50 steps
  eval_metrics: [bleu, chrf] # greedy translations of dev records, scored as sacreBLEU scores
  eval_max_records: 50       # generation is the slow part: a sample of the dev set
  eval_max_new_tokens: 128
  # early_stopping_patience: 4   # stop after 4 evaluations without a better chrf

)" + std::string(kOptimizer) + R"(
checkpoint:
  every_steps: 100
  keep_last: 2
  keep_best: chrf            # checkpoints/best: the best evaluation by chrF (or loss, bleu, ...)

runtime:
  device: auto               # auto (a GPU when one is visible) | cpu | cuda
)";
}

std::string chat_preset() {
  return std::string(R"(# Chat: conversations in a chat template, loss on the assistant's turns.
# A starter written by `tailor init chat`: check it with `tailor validate FILE`, train with
# `tailor train FILE`, then talk to it with
# `tailor generate --checkpoint runs/chat --template llama3 --prompt "What does love mean?"`.
# Every key: docs/config-reference.md; data and templates: docs/data.md.
output:
  dir: runs/chat

)") + std::string(kModel) + R"(
data:
  train: datasets/devils-dictionary/chat.sample.jsonl
  format: jsonl              # {"messages": [{"role": "system"|"user"|"assistant", "content"}]}
  tokenizer: byte
  seq_len: 512
  template:
    preset: llama3           # plain | llama3 | chatml | mistral | qwen3 | phi3 | gemma, or a file
    system: "You are the Devil's Dictionary. Define the word in one sentence."
  train_on_prompt: false     # loss on the assistant turns (and their end-of-turn token) only
  overlong: drop
  valid_fraction: 0.05

train:
  epochs: 3                  # passes over the chats (or steps: N)
  seed: 1
  global_batch: 8
  log_every: 10
  eval_every: 20

)" + std::string(kOptimizer) + "\n" + std::string(kRuntime);
}

}  // namespace

std::vector<std::string_view> starter_presets() { return {"full", "lora", "translation", "chat"}; }

std::optional<std::string> starter_config(std::string_view preset) {
  if (preset == "full") return full_preset();
  if (preset == "lora") return lora_preset();
  if (preset == "translation") return translation_preset();
  if (preset == "chat") return chat_preset();
  return std::nullopt;
}

std::string header_sentence(std::string_view yaml) {
  std::string text;
  std::istringstream in{std::string(yaml)};
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '#') break;
    std::string_view body = std::string_view(line).substr(1);
    while (!body.empty() && body.front() == ' ') body.remove_prefix(1);
    if (body.empty()) break;  // a blank comment line ends the opening paragraph
    if (!text.empty()) text += ' ';
    text += body;
    // A sentence ends at ". " or at the end of a line ending in ".".
    if (const auto dot = text.find(". "); dot != std::string::npos) return text.substr(0, dot + 1);
    if (text.back() == '.') return text;
  }
  return text;
}

std::vector<BundledConfig> bundled_configs(const std::vector<std::string>& candidates) {
  namespace fs = std::filesystem;
  for (const std::string& dir : candidates) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<BundledConfig> out;
    // The experiment configs and the task recipes (configs/templates/ holds chat templates).
    for (const char* sub : {"", "recipes"}) {
      const fs::path d = fs::path(dir) / sub;
      if (!fs::is_directory(d, ec)) continue;
      for (const fs::directory_entry& e : fs::directory_iterator(d, ec)) {
        if (!e.is_regular_file() || e.path().extension() != ".yaml") continue;
        std::ifstream f(e.path());
        std::stringstream ss;
        ss << f.rdbuf();
        out.push_back({(fs::path(dir) / sub / e.path().filename()).lexically_normal().string(),
                       header_sentence(ss.str())});
      }
    }
    if (out.empty()) continue;
    std::sort(out.begin(), out.end(),
              [](const BundledConfig& a, const BundledConfig& b) { return a.path < b.path; });
    return out;
  }
  return {};
}

}  // namespace tailor::cli
