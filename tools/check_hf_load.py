#!/usr/bin/env python3
"""Checks that a run directory's compressed/ model loads in Hugging Face transformers
unchanged and scores what rcc-dist says it scores.

Loads RUN/compressed with CLIPModel.from_pretrained (strict: any missing or unexpected key
fails), evaluates zero-shot on the Fashion-MNIST test set with tools/hf_zeroshot.py, then
runs `rcc-dist eval --json` on RUN/compressed and on RUN/packed.safetensors, and fails
(exit 1) when any two top-1 numbers differ by more than --tolerance points:

    python3 tools/check_hf_load.py --run runs/clip-fmnist --rcc build/rcc-dist
"""
import argparse
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_zeroshot  # noqa: E402  (the reference evaluator, shared with training)


def rcc_eval(rcc, model, limit):
    cmd = [rcc, "eval", "--model", model, "--data", "fmnist:test", "--json"]
    if limit:
        cmd += ["--limit", str(limit)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["top1"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run directory (output: of a job)")
    parser.add_argument("--rcc", default="build/rcc-dist", help="the rcc-dist binary")
    parser.add_argument("--limit", type=int, default=0, help="first N test images only")
    parser.add_argument("--tolerance", type=float, default=0.1, help="points of top-1")
    args = parser.parse_args()

    from transformers import AutoTokenizer, CLIPModel

    torch.set_num_threads(2)
    model_dir = os.path.join(args.run, "compressed")
    model, info = CLIPModel.from_pretrained(model_dir, dtype=torch.float32,
                                            output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        print(f"check_hf_load: {model_dir}: loading reported {problems}")
        return 1
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    processor = hf_zeroshot.load_processor(model_dir)
    images, labels = hf_zeroshot.load_fmnist("t10k")
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    pixel_values = hf_zeroshot.preprocess_fmnist(processor, images)
    hf_top1, _, _ = hf_zeroshot.evaluate(model, tokenizer, pixel_values, labels,
                                         model.config.text_config.max_position_embeddings)
    dense_top1 = rcc_eval(args.rcc, model_dir, args.limit)
    packed_top1 = rcc_eval(args.rcc, os.path.join(args.run, "packed.safetensors"), args.limit)
    print(f"check_hf_load: {len(labels)} test images, zero-shot top-1: transformers on "
          f"compressed/ {hf_top1:.2f}%, rcc-dist on compressed/ {dense_top1:.2f}%, rcc-dist on "
          f"packed.safetensors {packed_top1:.2f}%")
    worst = max(abs(hf_top1 - dense_top1), abs(hf_top1 - packed_top1), abs(dense_top1 - packed_top1))
    if worst > args.tolerance:
        print(f"check_hf_load: FAIL: they differ by {worst:.2f} points (> {args.tolerance})")
        return 1
    print("check_hf_load: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
