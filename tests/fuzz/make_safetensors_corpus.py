#!/usr/bin/env python3
"""Writes the seed corpus of the safetensors header fuzzer into tests/fuzz/corpus/safetensors_header/.

Standard library only. Files named valid_* must parse; invalid_* must be refused with a UserError
(safetensors_header_replay_test checks both). Each is small so that mutations stay fast.

    python3 tests/fuzz/make_safetensors_corpus.py
"""
import json
import os
import shutil
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors_header")


def pack(header, data=b"", pad=True, length=None):
    """8-byte little-endian length + header text (space-padded to 8) + data."""
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    raw = text.encode("utf-8")
    if pad:
        raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def main():
    os.makedirs(OUT, exist_ok=True)
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    files = {
        "valid_empty": pack({}),
        "valid_f32": pack({"w": t("F32", [2, 2], 0, 16)}, f32),
        "valid_mixed": pack({
            "__metadata__": {"format": "pt", "note": "ünï"},
            "model.embed.weight": t("F32", [2, 2], 0, 16),
            "model.norm.weight": t("BF16", [3], 16, 22),
            "model.layers.0.w": t("F16", [1, 3], 22, 28),
            "scalar": t("F32", [], 28, 32),
            "empty": t("F32", [0, 5], 32, 32),
        }, f32 + bytes(range(16))),
        "valid_all_dtypes": pack({
            name: t(name, [2], 16 * i, 16 * i + size * 2 // 8)
            for i, (name, size) in enumerate([("F64", 64), ("I64", 64), ("U64", 64), ("C64", 64),
                                              ("I32", 32), ("U32", 32), ("I16", 16), ("U16", 16),
                                              ("I8", 8), ("U8", 8), ("BOOL", 8), ("F8_E5M2", 8),
                                              ("F8_E4M3", 8), ("F8_E8M0", 8), ("F4", 4)])
        }, bytes(16 * 15)),
        "valid_gaps_unpadded": pack('{"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]},'
                                    '"a":{"shape":[3],"data_offsets":[0,3],"dtype":"U8"}}',
                                    bytes(8), pad=False),
        "invalid_overlap": pack({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 4, 12)}, bytes(12)),
        "invalid_past_end": pack({"a": t("F32", [4], 0, 16)}, bytes(10)),
        "invalid_size_mismatch": pack({"a": t("F32", [3], 0, 16)}, bytes(16)),
        "invalid_shape_overflow": pack({"a": t("F32", [4294967296, 4294967296], 0, 0)}),
        "invalid_rank": pack({"a": t("F32", [1, 1, 1, 1, 1, 1, 1], 0, 4)}, bytes(4)),
        "invalid_name": pack('{"a\\u0001":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', bytes(4)),
        "invalid_duplicate": pack('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},'
                                  '"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}', bytes(8)),
        "invalid_metadata": pack({"__metadata__": {"k": 1}}),
        "invalid_json": pack('{"a":{"dtype":"F32","shape":[1],', bytes(4)),
        "invalid_not_object": pack("[1,2,3]"),
        "invalid_length": pack({}, length=1000),
        "invalid_dtype": pack({"a": t("Q7", [1], 0, 1)}, bytes(1)),
        "invalid_truncated": pack({"a": t("F32", [4], 0, 16)}, f32)[:20],
    }
    for name, blob in files.items():
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(blob)
    # A file written by Hugging Face's own serializer (tests/golden/make_safetensors_fixture.py).
    golden = os.path.join(os.path.dirname(OUT), "..", "..", "golden", "safetensors", "writer.safetensors")
    shutil.copyfile(golden, os.path.join(OUT, "valid_hf_writer.safetensors"))
    print(f"wrote {len(files) + 1} files to {OUT}")


if __name__ == "__main__":
    main()
