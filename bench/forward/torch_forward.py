#!/usr/bin/env python3
"""PyTorch anchor of bench/forward: CLIP image and text features per second on CPU.

Loads the model written by make_model.py with transformers' CLIPModel (float32, default
attention implementation), builds one batch of B random inputs from a fixed seed, and
times get_image_features / get_text_features under torch.inference_mode() with
torch.set_num_threads(T): `--warmup` untimed calls, then `--iters` timed calls each,
reporting the median. Prints one JSON line.

Inputs: pixel_values (B, 3, 224, 224) standard normal (the range of CLIP-normalised
pixels); token ids (B, 77) as CLIP's tokenizer lays them out: BOS, random ordinary tokens,
EOS at a random position, EOS as padding after it (as the openai/clip-vit-base-patch32
tokenizer pads). Without an attention mask, HF pools the first EOS (config eos_token_id).

--ref FILE writes those inputs and the features of the first call, for bench_forward to
check against (little-endian, written by write_ref below):
    char magic[8] = "RCCFWD1\\0"
    int32 B, C, H, W, T, P
    float32 pixels[B*C*H*W], int32 ids[B*T], float32 image_features[B*P], text_features[B*P]
"""
import argparse
import json
import os
import resource
import statistics
import struct
import sys
import time

REF_MAGIC = b"RCCFWD1\0"


def make_inputs(config, B, seed):
    """Seeded (pixel_values (B,C,H,W) float32, input_ids (B,T) int64)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    vc, tc = config.vision_config, config.text_config
    pixels = torch.randn(B, vc.num_channels, vc.image_size, vc.image_size, generator=g)
    T = tc.max_position_embeddings
    # Ordinary tokens avoid the special ids (pad 1, BOS, EOS) so that pooling and any
    # padding rule see exactly one BOS and the EOS we place.
    # CLIP's config puts them at 1 and at the end of the vocabulary.
    low, high = tc.pad_token_id + 1, min(tc.bos_token_id, tc.eos_token_id)
    assert low < high and max(tc.bos_token_id, tc.eos_token_id) < tc.vocab_size
    ids = torch.randint(low, high, (B, T), generator=g, dtype=torch.int64)
    eos_pos = torch.randint(1, T, (B,), generator=g)
    for b in range(B):
        ids[b, 0] = tc.bos_token_id
        ids[b, eos_pos[b]:] = tc.eos_token_id
    return pixels, ids


def features(out):
    """transformers >= 5 returns a BaseModelOutputWithPooling, older ones a tensor."""
    return out if hasattr(out, "shape") else out.pooler_output


def time_calls(fn, warmup, iters, sync=lambda: None):
    """Returns (first output, per-call seconds of the timed calls). `sync` waits for the
    device (CUDA runs asynchronously), so each time covers the call's whole work."""
    first = fn()
    for _ in range(warmup - 1):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return first, times


def write_ref(path, pixels, ids, img, txt):
    B, C, H, W = pixels.shape
    T = ids.shape[1]
    P = img.shape[1]
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(REF_MAGIC)
        f.write(struct.pack("<6i", B, C, H, W, T, P))
        f.write(pixels.contiguous().numpy().astype("<f4").tobytes())
        f.write(ids.numpy().astype("<i4").tobytes())
        f.write(img.contiguous().cpu().numpy().astype("<f4").tobytes())
        f.write(txt.contiguous().cpu().numpy().astype("<f4").tobytes())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="/tmp/rcc-bench/clip-vit-b32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ref", help="write inputs and first-call features here")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda (fp32, no TF32)")
    args = ap.parse_args()
    if args.warmup < 1 or args.iters < 1 or args.batch < 1 or args.threads < 1:
        ap.error("--warmup, --iters, --batch and --threads must be >= 1")

    import torch
    from transformers import CLIPModel

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = CLIPModel.from_pretrained(args.model, dtype=torch.float32).eval()
    sync = lambda: None  # noqa: E731
    if args.device != "cpu":
        # The anchor is float32 arithmetic, as rcc's: no TF32 in matmuls or convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        model = model.to(args.device)
        sync = torch.cuda.synchronize
    load_s = time.perf_counter() - t0
    pixels, ids = make_inputs(model.config, args.batch, args.seed)
    dev_pixels, dev_ids = pixels.to(args.device), ids.to(args.device)

    with torch.inference_mode():
        img, img_times = time_calls(
            lambda: features(model.get_image_features(pixel_values=dev_pixels)),
            args.warmup, args.iters, sync)
        txt, txt_times = time_calls(
            lambda: features(model.get_text_features(input_ids=dev_ids)), args.warmup,
            args.iters, sync)
    if args.ref:
        write_ref(args.ref, pixels, ids, img, txt)

    img_s = statistics.median(img_times)
    txt_s = statistics.median(txt_times)
    print(json.dumps({
        "impl": "torch",
        "threads": args.threads,
        "batch": args.batch,
        "warmup": args.warmup,
        "iters": args.iters,
        "images_per_s": args.batch / img_s,
        "texts_per_s": args.batch / txt_s,
        "image_batch_s": img_times,
        "text_batch_s": txt_times,
        "load_s": load_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch": torch.__version__,
        "attn_implementation": model.config._attn_implementation,
        "device": args.device,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
