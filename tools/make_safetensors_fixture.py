#!/usr/bin/env python3
"""Writes tests/fixtures/safetensors/python_written.safetensors with the real `safetensors`
package, so that tests/unit/test_safetensors.c can prove our reader reads HF's files and our
writer produces byte-identical ones. Values are given as raw bit patterns (F16/BF16 zeros,
subnormals, extremes, inf, NaN) so the C test can state the exact F32 it expects.

    python3 tools/make_safetensors_fixture.py            # (re)write the fixture
    python3 tools/make_safetensors_fixture.py --check F  # load a file written by rcc_st_save
                                                         # with `safetensors`, compare values

The C test hard-codes the same values; change both together.
"""
import argparse
import pathlib

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/safetensors/python_written.safetensors"

# One metadata key: HF stores __metadata__ in a hash map, so the order of several keys
# (and therefore the bytes) would change from run to run. The value exercises escaping.
METADATA = {"note": 'rcc-dist fixture: "quoted", tab\tnewline\n, \u00e9'}


def bits(values, int_dtype, float_dtype):
    """A tensor of float_dtype whose elements have the given raw bit patterns."""
    as_signed = [v - (1 << 16) if v >= 1 << 15 else v for v in values]
    return torch.tensor(as_signed, dtype=int_dtype).view(float_dtype)


def tensors():
    return {
        # 0, -1.5, 3.25, smallest F32 subnormal, largest F32, -0.
        "f32": torch.tensor([0.0, -1.5, 3.25, 1.401298464324817e-45, 3.4028234663852886e38, -0.0],
                            dtype=torch.float32).reshape(2, 3),
        # 0, -0, smallest subnormal, largest subnormal, smallest normal, 65504, inf, -inf,
        # NaN, 1, -2, 0x3555 (0.33325195...).
        "f16": bits([0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00,
                     0x3C00, 0xC000, 0x3555], torch.int16, torch.float16).reshape(3, 4),
        # 1, -3, smallest subnormal (2^-133), inf, -inf, NaN, 3.140625, -0.
        "bf16": bits([0x3F80, 0xC040, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x4049, 0x8000],
                     torch.int16, torch.bfloat16).reshape(2, 2, 2),
        "i64": torch.tensor([-(1 << 63), -1, 0, (1 << 40) + 3], dtype=torch.int64),
        "f64_scalar": torch.tensor(0.1, dtype=torch.float64),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
    }


def check(path):
    got = load_file(path)
    want = tensors()
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for name, t in want.items():
        g = got[name]
        assert g.dtype == t.dtype and g.shape == t.shape, (name, g.dtype, g.shape)
        # Compare raw bytes: NaN and -0 must survive exactly.
        assert g.reshape(-1).view(torch.uint8).equal(t.reshape(-1).view(torch.uint8)), name
    with safe_open(path, "pt") as sf:
        assert sf.metadata() == METADATA, sf.metadata()
    print(f"{path}: {len(got)} tensors and metadata read by safetensors match")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", metavar="FILE", help="verify a file written by rcc_st_save")
    args = ap.parse_args()
    if args.check:
        check(args.check)
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors(), str(OUT), metadata=METADATA)
    check(str(OUT))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
