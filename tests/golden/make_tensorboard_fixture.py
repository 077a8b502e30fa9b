#!/usr/bin/env python3
"""Records what TensorBoard's own reader finds in an event file that Tailor wrote.

Runs `tailor train` on a tiny config for 5 steps (log_every 1), takes the event file it wrote in
<output.dir>/tb/, and reads it with TensorBoard's EventAccumulator (the reader behind
`tensorboard --logdir`; its record reader checks both CRC32Cs of every TFRecord frame). Writes

  tests/golden/tensorboard/events.out.tfevents.fixture   the event file, byte for byte
  tests/golden/tensorboard/expected.json                 what the reader found:
      file_version (the reader parses "brain.Event:2" as 2.0), first_event_wall_time, tags (in the reader's order), and per tag the list of
      {step, wall_time, value} (value: the float32 TensorBoard stores, as a Python float)

tests/trainer/tensorboard_test.cpp checks Tailor's writer and reader against both; CI needs no
Python packages.

Usage: pip install tensorboard
       python3 tests/golden/make_tensorboard_fixture.py [--tailor build/tailor]
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

from tensorboard.backend.event_processing import event_accumulator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "tensorboard")
STEPS = 5
TAGS = ["train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tailor", default=os.path.join(ROOT, "build", "tailor"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = os.path.join(tmp, "run")
        config = os.path.join(tmp, "tiny.yaml")
        with open(config, "w") as f:
            f.write(
                f"output: {{dir: {run_dir}}}\n"
                "model: {vocab_size: 257, hidden_size: 16, num_layers: 1, num_heads: 2,\n"
                "        intermediate_size: 32, max_position_embeddings: 64}\n"
                f"data: {{train: {ROOT}/datasets/devils-dictionary/devils_dictionary.txt, seq_len: 16}}\n"
                f"train: {{steps: {STEPS}, global_batch: 2, log_every: 1}}\n"
                "optimizer: {lr: 1.0e-3}\n"
                "schedule: {warmup_steps: 2}\n"
            )
        subprocess.run([args.tailor, "train", config], check=True)
        files = glob.glob(os.path.join(run_dir, "tb", "events.out.tfevents.*"))
        if len(files) != 1:
            sys.exit(f"expected one event file in {run_dir}/tb, found {files}")

        acc = event_accumulator.EventAccumulator(files[0], size_guidance={event_accumulator.SCALARS: 0})
        acc.Reload()
        tags = list(acc.Tags()["scalars"])
        if sorted(tags) != sorted(TAGS):
            sys.exit(f"TensorBoard found the tags {tags}, expected {TAGS}")
        scalars = {}
        for tag in tags:
            events = acc.Scalars(tag)
            if [e.step for e in events] != list(range(1, STEPS + 1)):
                sys.exit(f"{tag}: TensorBoard found the steps {[e.step for e in events]}")
            scalars[tag] = [{"step": e.step, "wall_time": e.wall_time, "value": e.value} for e in events]
        expected = {
            "file_version": acc.file_version,
            "first_event_wall_time": acc.FirstEventTimestamp(),
            "tags": tags,
            "scalars": scalars,
        }
        os.makedirs(OUT, exist_ok=True)
        shutil.copyfile(files[0], os.path.join(OUT, "events.out.tfevents.fixture"))
        with open(os.path.join(OUT, "expected.json"), "w") as f:
            json.dump(expected, f, indent=1)
            f.write("\n")
    print(f"wrote {OUT}/events.out.tfevents.fixture and expected.json ({len(tags)} tags, {STEPS} steps)")


if __name__ == "__main__":
    main()
