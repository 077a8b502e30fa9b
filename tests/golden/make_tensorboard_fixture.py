#!/usr/bin/env python3
"""Writes an event file with TensorBoard's own writer and records what TensorBoard's reader finds.

The inputs are fixed here (INPUTS: the clock readings and, per step, the scalars Tailor's
TensorBoardWriter is given, including a zero, a negative value, a value that is not a float32, and
steps past 2^32). From them this script builds each Event with TensorBoard's protobuf classes
(tensorboard.compat.proto: Event{wall_time, file_version} first, then Event{wall_time, step,
summary{value{tag, simple_value}}} per step, as tf.summary's scalar writers did) and frames them
with TensorBoard's RecordWriter (length, masked CRC32C of the length, data, masked CRC32C of the
data). It then reads that file with EventAccumulator, the reader behind `tensorboard --logdir`
(its record reader checks both CRCs of every frame). It writes

  tests/golden/tensorboard/events.out.tfevents.fixture   the event file TensorBoard's code wrote
  tests/golden/tensorboard/expected.json
      inputs: tags (in the order each event holds them), first_event_wall_time and per step {step, wall_time, values: {tag: float64}}
              (what tests/trainer/tensorboard_test.cpp gives Tailor's writer)
      what EventAccumulator found: file_version (it parses "brain.Event:2" as 2.0),
      first_event_wall_time, tags (in its order), and per tag the list of {step, wall_time, value}
      (value: the float32 TensorBoard stored, as a Python float)

tests/trainer/tensorboard_test.cpp feeds the inputs to Tailor's writer and requires the file
TensorBoard wrote, byte for byte (so TensorBoard's reader gets from Tailor's file exactly what it
got from this one), and Tailor's reader on this file must find what EventAccumulator found. No
file that Tailor wrote is part of the fixture. CI needs no Python packages.

Usage: pip install tensorboard
       python3 tests/golden/make_tensorboard_fixture.py
"""
import json
import os
import sys
import tempfile

import tensorboard
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "tensorboard")

TAGS = ["train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s"]
FIRST_WALL_TIME = 1765000000.125
INPUTS = [
    # (step, wall_time, values in TAGS order)
    (1, 1765000001.5, [5.545177444479562, 1.5e-3, 2.718281828459045, 12345.678]),
    (2, 1765000002.000244140625, [4.0, 3.0e-3, 0.0, 98765.4321]),
    (3, 1765000003.3, [3.3333333333333335, 2.9999e-3, 1.0e-30, 1.0e6]),
    (10, 1765000010.75, [-0.25, 1.0e-10, 123456789.0, 0.5]),
    (4294967297, 1765000100.0, [2.5e-5, 0.0, 3.4e38, 7.0]),  # a step past 2^32
]


def event_file(path):
    with open(path, "wb") as f:
        w = RecordWriter(f)
        w.write(event_pb2.Event(wall_time=FIRST_WALL_TIME,
                                file_version="brain.Event:2").SerializeToString())
        for step, wall_time, values in INPUTS:
            summary = summary_pb2.Summary(value=[
                summary_pb2.Summary.Value(tag=tag, simple_value=v) for tag, v in zip(TAGS, values)])
            w.write(event_pb2.Event(wall_time=wall_time, step=step,
                                    summary=summary).SerializeToString())
        w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    fixture = os.path.join(OUT, "events.out.tfevents.fixture")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.out.tfevents.1765000000.fixture")
        event_file(path)
        acc = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.SCALARS: 0})
        acc.Reload()
        tags = list(acc.Tags()["scalars"])
        if sorted(tags) != sorted(TAGS):
            sys.exit(f"TensorBoard found the tags {tags}, expected {TAGS}")
        scalars = {}
        for tag in tags:
            events = acc.Scalars(tag)
            if [e.step for e in events] != [s for s, _, _ in INPUTS]:
                sys.exit(f"{tag}: TensorBoard found the steps {[e.step for e in events]}")
            scalars[tag] = [{"step": e.step, "wall_time": e.wall_time, "value": e.value}
                            for e in events]
        expected = {
            "inputs": {
                "tags": TAGS,
                "first_event_wall_time": FIRST_WALL_TIME,
                "steps": [{"step": s, "wall_time": t, "values": dict(zip(TAGS, v))}
                          for s, t, v in INPUTS],
            },
            "file_version": acc.file_version,
            "first_event_wall_time": acc.FirstEventTimestamp(),
            "tags": tags,
            "scalars": scalars,
            "tensorboard_version": tensorboard.__version__,
        }
        with open(path, "rb") as src, open(fixture, "wb") as dst:
            dst.write(src.read())
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(f"wrote {fixture} and expected.json ({len(tags)} tags, {len(INPUTS)} steps)")


if __name__ == "__main__":
    main()
