#!/usr/bin/env python3
"""PyTorch anchor of bench/train: CLIP vision-tower training steps per second on CPU.

Loads the model written by bench/forward/make_model.py with transformers' CLIPModel
(float32, default attention), freezes the embeddings (patch, class, position), the text
tower and the logit scale, and trains every other vision parameter (linear weights,
biases, LayerNorms, visual_projection): what rcc's `bench_train --train all` computes,
less alpha. One step = zero grads, get_image_features on B seeded random images,
loss = sum(emb * R) with a fixed random R, backward. `--warmup` untimed steps, then the
median of `--iters` timed steps with torch.set_num_threads(T). Prints one JSON line.

    python bench/train/torch_train.py --model DIR [--threads T] [--batch 8] [--warmup 1] [--iters 3]
"""
import argparse
import json
import resource
import statistics
import time

import torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()

    from transformers import CLIPModel

    torch.set_num_threads(args.threads)
    model = CLIPModel.from_pretrained(args.model, dtype=torch.float32)
    model.train(False)  # no dropout (CLIP has none); the autograd graph is what is timed
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(("vision_model.", "visual_projection."))
                         and ".embeddings." not in name)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    g = torch.Generator().manual_seed(0)
    vc = model.config.vision_config
    pixels = torch.rand(args.batch, vc.num_channels, vc.image_size, vc.image_size,
                        generator=g) * 4 - 2
    R = torch.rand(args.batch, model.config.projection_dim, generator=g) * 2 - 1

    times = []
    for it in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        emb = model.get_image_features(pixel_values=pixels).pooler_output
        (emb * R).sum().backward()
        if it >= args.warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    print(json.dumps({"impl": "torch", "train": "all", "threads": args.threads,
                      "batch": args.batch, "step_s": round(step, 4),
                      "samples_per_s": round(args.batch / step, 3), "trainable_params": trained,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
