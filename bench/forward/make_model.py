#!/usr/bin/env python3
"""Writes the CLIP ViT-B/32-shaped model with random weights that bench/forward times.

No machine here can reach a model hub, so the benchmark model is made locally: a
transformers CLIPModel with OpenAI CLIP ViT-B/32's shapes (vision 224 px, patch 32,
width 768, 12 layers, 12 heads, MLP 3072; text width 512, 8 heads, 12 layers, MLP 2048,
77 positions, vocab 49408; projection 512; quick_gelu), HF's own random initialisation
from a fixed seed, saved with save_pretrained as F32 safetensors (~600 MB).

    python bench/forward/make_model.py [--out /tmp/rcc-bench/clip-vit-b32] [--seed 0]

The directory is never committed. If it already holds a model made with the same shapes
and seed (recorded in bench_spec.json, written last), nothing is done.
"""
import argparse
import json
import os
import sys

SPEC_FILE = "bench_spec.json"

VISION = dict(image_size=224, patch_size=32, num_channels=3, hidden_size=768,
              intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              hidden_act="quick_gelu")
TEXT = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
            num_attention_heads=8, max_position_embeddings=77, vocab_size=49408,
            hidden_act="quick_gelu")
PROJECTION_DIM = 512


def wanted_spec(seed):
    return {"vision_config": VISION, "text_config": TEXT, "projection_dim": PROJECTION_DIM,
            "seed": seed, "dtype": "float32"}


def is_current(out, spec):
    """True when `out` holds a complete model written by this script with `spec`."""
    path = os.path.join(out, SPEC_FILE)
    if not os.path.exists(os.path.join(out, "model.safetensors")) or not os.path.exists(path):
        return False
    with open(path) as f:
        return json.load(f) == spec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/rcc-bench/clip-vit-b32")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    spec = wanted_spec(args.seed)
    if is_current(args.out, spec):
        print(f"make_model: {args.out} is up to date")
        return 0

    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(args.seed)
    config = CLIPConfig(text_config=dict(TEXT), vision_config=dict(VISION),
                        projection_dim=PROJECTION_DIM)
    model = CLIPModel(config).to(torch.float32).eval()
    os.makedirs(args.out, exist_ok=True)
    # A stale spec must not survive a half-written model.
    if os.path.exists(os.path.join(args.out, SPEC_FILE)):
        os.remove(os.path.join(args.out, SPEC_FILE))
    model.save_pretrained(args.out, safe_serialization=True)
    with open(os.path.join(args.out, SPEC_FILE), "w") as f:
        json.dump(spec, f, indent=1)
    n = sum(p.numel() for p in model.parameters())
    print(f"make_model: wrote {args.out} ({n / 1e6:.1f} M parameters, float32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
