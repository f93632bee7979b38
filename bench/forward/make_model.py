#!/usr/bin/env python3
"""Writes the CLIP ViT-B/32-shaped model with random weights that bench/forward times.

No machine here can reach a model hub, so the benchmark model is made locally: a
transformers CLIPModel with OpenAI CLIP ViT-B/32's shapes (vision 224 px, patch 32,
width 768, 12 layers, 12 heads, MLP 3072; text width 512, 8 heads, 12 layers, MLP 2048,
77 positions, vocab 49408; projection 512; quick_gelu), HF's own random initialisation
from a fixed seed, saved with save_pretrained as F32 safetensors (~600 MB).

rcc-dist's cascade (bench/forward/run.sh --packed) validates zero-shot, so the model
also needs a tokenizer: that of the embedded model models/clip-fmnist is copied in (the
CLIP BPE cut to its first 4514 tokens, every id within the 49408-row embedding), and the
text config takes its BOS/EOS ids (4512/4513, where OpenAI's full vocabulary has
49406/49407) so that the EOS the text tower pools is the one the tokenizer writes.

    python bench/forward/make_model.py [--out /tmp/rcc-bench/clip-vit-b32] [--seed 0]

The directory is never committed. If it already holds a model made with the same shapes
and seed (recorded in bench_spec.json, written last), nothing is done.
"""
import argparse
import json
import os
import shutil
import sys

SPEC_FILE = "bench_spec.json"
TOKENIZER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models",
                             "clip-fmnist")
TOKENIZER_FILES = ("vocab.json", "merges.txt", "special_tokens_map.json",
                   "tokenizer_config.json")

VISION = dict(image_size=224, patch_size=32, num_channels=3, hidden_size=768,
              intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              hidden_act="quick_gelu")
TEXT = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
            num_attention_heads=8, max_position_embeddings=77, vocab_size=49408,
            hidden_act="quick_gelu")
PROJECTION_DIM = 512


def special_ids():
    """(bos, eos) ids of the copied tokenizer."""
    with open(os.path.join(TOKENIZER_DIR, "vocab.json")) as f:
        vocab = json.load(f)
    return vocab["<|startoftext|>"], vocab["<|endoftext|>"]


def wanted_spec(seed):
    bos, eos = special_ids()
    text = dict(TEXT, bos_token_id=bos, eos_token_id=eos)
    return {"vision_config": VISION, "text_config": text, "projection_dim": PROJECTION_DIM,
            "seed": seed, "dtype": "float32", "tokenizer": "models/clip-fmnist"}


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
    config = CLIPConfig(text_config=dict(spec["text_config"]), vision_config=dict(VISION),
                        projection_dim=PROJECTION_DIM)
    model = CLIPModel(config).to(torch.float32).eval()
    os.makedirs(args.out, exist_ok=True)
    # A stale spec must not survive a half-written model.
    if os.path.exists(os.path.join(args.out, SPEC_FILE)):
        os.remove(os.path.join(args.out, SPEC_FILE))
    # Written beside the model, then renamed file by file: other benchmarks may have the old
    # model.safetensors mapped, and a rename leaves their mapping intact.
    tmp = args.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(TOKENIZER_DIR, name), os.path.join(tmp, name))
    for name in os.listdir(tmp):
        os.replace(os.path.join(tmp, name), os.path.join(args.out, name))
    os.rmdir(tmp)
    with open(os.path.join(args.out, SPEC_FILE), "w") as f:
        json.dump(spec, f, indent=1)
    n = sum(p.numel() for p in model.parameters())
    print(f"make_model: wrote {args.out} ({n / 1e6:.1f} M parameters, float32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
