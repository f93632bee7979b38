#!/usr/bin/env python3
"""Writes the image folder that bench/gpu's cascade calibrates and validates on.

The GPU machines have no Fashion-MNIST package and the benchmark model has random
weights, so any images do: DIR/<class>/<k>.png, 224 x 224 RGB, each a few random colour
blocks over noise from a fixed seed (class names are ordinary words, which the
tokenizer of the benchmark model knows). Written with zlib alone: no imaging library
is needed. Nothing is done when DIR already holds the same set (DIR/images_spec.json).

    python bench/gpu/make_images.py --out DIR [--per-class 64] [--size 224]
"""
import argparse
import json
import os
import random
import struct
import sys
import zlib

CLASSES = ("shirt", "trouser", "pullover", "dress")


def png_bytes(rgb, w, h):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    # Filter type 0 (none) before each row.
    raw = b"".join(b"\0" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def image(rng, size):
    px = bytearray(rng.randbytes(size * size * 3))
    for _ in range(3):
        x0, y0 = rng.randrange(size), rng.randrange(size)
        x1, y1 = min(size, x0 + rng.randrange(16, size)), min(size, y0 + rng.randrange(16, size))
        colour = bytes(rng.randrange(256) for _ in range(3))
        for y in range(y0, y1):
            px[(y * size + x0) * 3:(y * size + x1) * 3] = colour * (x1 - x0)
    return bytes(px)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-class", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = {"classes": CLASSES, "per_class": args.per_class, "size": args.size, "seed": args.seed}
    spec_path = os.path.join(args.out, "images_spec.json")
    if os.path.exists(spec_path):
        with open(spec_path) as f:
            if json.load(f) == json.loads(json.dumps(spec)):
                print(f"make_images: {args.out} is up to date")
                return 0
        os.remove(spec_path)
    rng = random.Random(args.seed)
    for name in CLASSES:
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
        for k in range(args.per_class):
            with open(os.path.join(args.out, name, f"{k:04d}.png"), "wb") as f:
                f.write(png_bytes(image(rng, args.size), args.size, args.size))
    # Last, so that an interrupted run is redone.
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    print(f"make_images: wrote {len(CLASSES) * args.per_class} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
