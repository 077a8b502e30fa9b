#!/usr/bin/env bash
# Domain shift with each customization method: start from the quickstart's exported model (trained
# on English dictionary text), fine-tune for 100 steps on the English->German gettext sample with
# full fine-tuning, LoRA (all-linear, r 8), bottleneck adapters (width 32) and prompt tuning (20
# virtual tokens from a German text), and print the dev loss (German side, nats/byte) of each next
# to the base model's. CPU, ~3 minutes on 2 cores.
#   benchmarks/peft_domain_shift.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$build/tailor" train configs/quickstart.yaml output.dir="$work/base" train.log_every=100 >/dev/null 2>&1
# The translation example's data section on the exported base.
sed -e '/^model:/,/^data:/{/^model:/!{/^data:/!d}}' configs/translation-example.yaml |
  sed "s|^model:|model:\n  path: $work/base/export|" > "$work/domain.yaml"

printf '| method | trainable parameters | dev loss (nats/byte) | wall time |\n| --- | --- | --- | --- |\n'
run() {
  local name=$1 id=$2; shift 2
  local t0=$SECONDS
  "$build/tailor" train "$work/domain.yaml" output.dir="$work/$id" data.tokenizer=byte \
    train.log_every=100 schedule.warmup_steps=10 "$@" > "$work/$id.log" 2>&1
  local loss params
  loss=$(grep -o '"eval_loss":[0-9.e+-]*' "$work/$id/metrics.jsonl" | tail -1 | cut -d: -f2)
  params=$(grep -o "[0-9]* trainable parameters" "$work/$id.log" | head -1 | cut -d" " -f1 || true)
  printf '| %s | %s | %.4f | %ss |\n' "$name" "${params:-all}" "$loss" $((SECONDS - t0))
}
run "base (no training)" base peft.method=none optimizer.lr=1e-12 train.steps=11
run "full fine-tuning" full peft.method=none optimizer.lr=1e-3 train.steps=100
run "LoRA r8 all-linear" lora peft.method=lora 'peft.target_modules=[all-linear]' optimizer.lr=3e-3 train.steps=100
run "adapters (32)" adapter peft.method=adapter peft.bottleneck=32 optimizer.lr=3e-3 train.steps=100
run "prompt tuning (20)" prompt peft.method=prompt_tuning peft.num_virtual_tokens=20 \
  'peft.prompt_init_text="Übersetzung ins Deutsche: "' optimizer.lr=3e-2 train.steps=100
