#!/usr/bin/env python3
"""QLoRA 4-bit storage fixtures (issue 25 item 1): bitsandbytes' own quantize_4bit /
dequantize_4bit on the CPU, written as bit patterns so tests/model/quantize_4bit_test.cpp can
demand bitwise equality without Python.

    pip install torch bitsandbytes        # CPU wheels are enough
    python3 tests/golden/make_qlora_fixtures.py   # -> tests/golden/qlora/quant4_cases.json

Each case: the f32 input, the packed nibbles (bitsandbytes' uint8 storage, high nibble = even
element), the per-block absmax (or, with double quantization, the 8-bit absmax codes, the
second-level absmax per 256 blocks, the offset and the 8-bit code table), and the dequantized
f32 output. Floats are stored as uint32 bit patterns.
"""
import json
import os

import numpy as np
import torch
import bitsandbytes
import bitsandbytes.functional as F


def bits(t):
    return np.asarray(t.detach().cpu().float().numpy(), dtype=np.float32).view(np.uint32).reshape(-1).tolist()


def formula_input(rows, cols):
    """Exact in f32 on every machine, so the C++ test rebuilds it instead of reading 16k floats:
    x[i] = (((i * 40503) mod 65521) - 32760) * 2^-21 * (1 + (i / cols) mod 7)."""
    i = np.arange(rows * cols, dtype=np.int64)
    v = ((i * 40503) % 65521 - 32760).astype(np.float32) * np.float32(2.0**-21)
    v = v * (1 + (i // cols) % 7).astype(np.float32)
    return torch.from_numpy(v.reshape(rows, cols))


def case(name, x, quant_type, block_size, double_quant, store_input=True, dequant_stride=1):
    packed, st = F.quantize_4bit(x, blocksize=block_size, compress_statistics=double_quant,
                                 quant_type=quant_type)
    deq = F.dequantize_4bit(packed, st)
    out = {
        "name": name, "quant_type": quant_type, "block_size": block_size,
        "double_quant": double_quant, "shape": list(x.shape),
        "packed": packed.view(torch.uint8).reshape(-1).tolist(),
        # every dequant_stride-th element of the dequantized output (all of it when 1)
        "dequant_stride": dequant_stride, "dequantized": bits(deq)[::dequant_stride],
    }
    if store_input:
        out["input"] = bits(x)
    if double_quant:
        out["absmax_q"] = st.absmax.view(torch.uint8).reshape(-1).tolist()
        out["absmax2"] = bits(st.state2.absmax)
        out["absmax2_block_size"] = st.state2.blocksize
        out["offset"] = bits(st.offset.reshape(1))[0]
        out["code8"] = bits(st.state2.code)
    else:
        out["absmax"] = bits(st.absmax)
    return out


def main():
    g = torch.Generator().manual_seed(25)
    cases = []
    # A weight-like matrix whose size is not a multiple of the block (a short last block), with
    # an all-zero block, exact table values and ties between neighbouring NF4/FP4 values.
    w = torch.randn(13, 77, generator=g) * 0.05
    w.view(-1)[128:192] = 0.0
    w.view(-1)[192:256] = torch.linspace(-1, 1, 64)
    w.view(-1)[256] = 1.0  # block 4's absmax is 1: its scaled values are the inputs themselves
    for qt in ("nf4", "fp4"):
        cases.append(case(f"{qt}_ragged", w, qt, 64, False))
    # Double quantization needs more than 256 blocks to have two second-level blocks.
    # 257 blocks of 64: two second-level blocks of 256, the last holding one absmax.
    big = formula_input(257, 64)
    for qt in ("nf4", "fp4"):
        cases.append(case(f"{qt}_double_quant", big, qt, 64, True, store_input=False,
                          dequant_stride=13))
    cases.append(case("nf4_block128", w, "nf4", 128, False))
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(here, "qlora"), exist_ok=True)
    with open(os.path.join(here, "qlora", "quant4_cases.json"), "w") as f:
        json.dump({"bitsandbytes": bitsandbytes.__version__, "torch": torch.__version__,
                   "cases": cases}, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
