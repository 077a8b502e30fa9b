#!/usr/bin/env python3
"""Writes the safetensors golden fixture read by tests/checkpoint/safetensors_golden_test.cpp.

The file is written by the reference implementation, Hugging Face's `safetensors` package (its
Rust serializer: header layout, tensor order, padding), with values converted by numpy; the JSON
beside it records what the reference wrote, as raw bit patterns so the comparison is exact.
Tailor's reader must return exactly those values, and Tailor's f32 -> f16 rounding must give the
bits numpy gave for the same inputs.

    pip install safetensors numpy      # versions used are recorded in the JSON
    python3 tests/golden/make_safetensors_fixture.py

Outputs (committed; CI needs no Python), under tests/golden/safetensors/:
  reference.safetensors  F32 / F16 / BF16 / I64 tensors, a scalar, an empty tensor, metadata;
  reference.json         what the reference wrote: header order, offsets, element bit patterns;
  writer.safetensors     F32 / BF16 / F16 tensors that Tailor's writer, given the same tensors in
                         the same order, must reproduce byte for byte.
"""
import json
import os
import re

import numpy as np
import safetensors
from safetensors import TensorSpec, serialize_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")

# f32 values with edge cases: signed zero, f32 subnormal, extremes, inf, a NaN with a payload.
F32 = np.array([0.0, -0.0, 1.0, -2.5, 1.0 / 3.0, 1e-40, 3.4028234663852886e38, np.inf, -np.inf,
                np.float32(np.nan), 65504.0, 1e-7], dtype=np.float32).reshape(3, 4)
F32.reshape(-1)[9] = np.frombuffer(np.uint32(0x7FC12345).tobytes(), dtype=np.float32)[0]

# Inputs whose f16 rounding is interesting: halfway cases (ties to even), the overflow threshold
# 65520, the largest finite 65504, subnormals and values that flush to zero, a NaN.
F16_INPUTS = np.array([
    1.0, -1.0, 1.0 / 3.0, 0.1, 2049.0, 2051.0, 2050.0, 65504.0, 65519.99, 65520.0, 70000.0,
    6.103515625e-05, 6.0e-05, 5.960464477539063e-08, 2.98023223876953125e-08,
    2.98023223876953126e-08 * 1.0000001, 1.0e-9, -3.0e-06, np.inf, np.nan,
], dtype=np.float32)
with np.errstate(over="ignore"):  # 65520 and up overflow to inf, as they must
    F16 = F16_INPUTS.astype(np.float16)  # numpy rounds to nearest, ties to even

# bf16 has no numpy type: the bit patterns are chosen, each an exact bf16 value.
BF16_BITS = np.array([0x3F80, 0xC000, 0x0000, 0x8000, 0x7F7F, 0x0001, 0x3EAB, 0x7F80, 0xFF80,
                      0x4049], dtype=np.uint16).reshape(2, 5)

SCALAR = np.array(42.5, dtype=np.float32)
EMPTY = np.zeros((0, 4), dtype=np.float32)
IDS = np.array([1, -2, 300], dtype=np.int64)


def spec(dtype, array):
    return TensorSpec(dtype=dtype, shape=list(array.shape), data_ptr=array.ctypes.data,
                      data_len=array.nbytes)


def main():
    os.makedirs(OUT, exist_ok=True)
    arrays = {  # keep references alive while serializing
        "model.f32": F32, "model.f16_inputs": F16_INPUTS, "model.f16": F16,
        "model.bf16": BF16_BITS, "model.scalar": SCALAR, "model.empty": EMPTY, "model.ids": IDS,
    }
    dtypes = {"model.f32": "float32", "model.f16_inputs": "float32", "model.f16": "float16",
              "model.bf16": "bfloat16", "model.scalar": "float32", "model.empty": "float32",
              "model.ids": "int64"}
    metadata = {"format": "pt"}  # one key: the reference writes metadata in hash order
    path = os.path.join(OUT, "reference.safetensors")
    serialize_file({k: spec(dtypes[k], a) for k, a in arrays.items()}, path, metadata=metadata)

    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    order = [k for k in header if k != "__metadata__"]

    def bits(a, width):
        return [int(x) for x in a.reshape(-1).view(np.uint32 if width == 32 else np.uint16)]

    expected = {
        "producer": f"safetensors {safetensors.__version__}, numpy {np.__version__}",
        "file_size": len(blob),
        "header_length": n,
        "order": order,  # tensor order in the header, as the reference wrote it
        "metadata": metadata,
        "tensors": {name: {"dtype": header[name]["dtype"], "shape": header[name]["shape"],
                           "data_offsets": header[name]["data_offsets"]} for name in order},
        "values": {  # raw bit patterns of the stored elements
            "model.f32": bits(F32, 32),
            "model.f16_inputs": bits(F16_INPUTS, 32),
            "model.f16": bits(F16, 16),
            "model.bf16": bits(BF16_BITS.view(np.uint16), 16),
            "model.scalar": bits(SCALAR, 32),
            "model.ids": [int(x) for x in IDS],
        },
    }
    # The reference sorts tensors by dtype alignment, then name; these names keep that order.
    w32 = np.array([1.5, -0.25, 3.0], dtype=np.float32)
    w16 = np.array([[0.5, -2.0], [65504.0, 2.0 ** -24]], dtype=np.float16)
    wbf = np.array([0x3FC0, 0xBE80, 0x4040], dtype=np.uint16)  # bf16 1.5, -0.25, 3.0
    serialize_file({"a.weight": spec("float32", w32), "b.weight": spec("bfloat16", wbf),
                    "c.weight": spec("float16", w16)},
                   os.path.join(OUT, "writer.safetensors"), metadata={"format": "pt"})

    with open(os.path.join(OUT, "reference.json"), "w") as f:
        text = json.dumps(expected, indent=1)
        # Lists of numbers or names on one line each, for a readable diff.
        text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
        f.write(text + "\n")
    print(f"wrote {path} ({len(blob)} bytes)")


if __name__ == "__main__":
    main()
