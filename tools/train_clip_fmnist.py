#!/usr/bin/env python3
"""Trains models/clip-fmnist, rcc-dist's embedded default model: a small Hugging Face
CLIPModel (vision and text towers) trained from scratch on the Fashion-MNIST training set
with captions made from the class names and the zero-shot prompt templates.

    python3 tools/train_clip_fmnist.py --out models/clip-fmnist
    python3 tools/hf_zeroshot.py --model models/clip-fmnist

Loss: many images of a batch share a class, so instead of CLIP's in-batch contrastive
loss each image is classified against the 10 class captions (one random template per
class and step, run through the text tower so that it trains too): cross-entropy of the
cosine similarities times the learned logit scale. Training sees exactly what
CLIPImageProcessor produces at inference (a 28x28 gray image replicated to RGB, scaled to
[0,1], normalized with the mean/std written to preprocessor_config.json); the script
checks this against the processor before training. Deterministic for a given thread
count: every random draw comes from seeded generators.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch

import hf_zeroshot
from hf_zeroshot import CLASS_NAMES, TEMPLATES

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Fashion-MNIST's own pixel mean/std (of the training set, in [0,1]), one per RGB channel.
FMNIST_MEAN = [0.2860, 0.2860, 0.2860]
FMNIST_STD = [0.3530, 0.3530, 0.3530]


def make_config(args, tokenizer):
    """CLIP config; the sub-configs' projection_dim is unused by CLIPModel but set to the
    real one so that no reader of config.json picks up transformers' default 512."""
    from transformers import CLIPConfig
    text = dict(vocab_size=len(tokenizer), hidden_size=args.text_hidden,
                num_hidden_layers=args.text_layers, num_attention_heads=args.text_heads,
                intermediate_size=4 * args.text_hidden, max_position_embeddings=args.max_length,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, hidden_act="quick_gelu",
                projection_dim=args.projection)
    vision = dict(hidden_size=args.vision_hidden, num_hidden_layers=args.vision_layers,
                  num_attention_heads=args.vision_heads, intermediate_size=args.vision_intermediate,
                  image_size=28, patch_size=args.patch, num_channels=3, hidden_act="quick_gelu",
                  projection_dim=args.projection)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=args.projection)


def write_tokenizer(out, max_length, script):
    """Writes the truncated real CLIP tokenizer into the model directory with the project's
    tools/make_tokenizer.py, then loads it back through transformers."""
    from transformers import AutoTokenizer
    subprocess.run([sys.executable, script, "--out", out, "--max-length", str(max_length),
                    "--no-cases"], check=True)
    return AutoTokenizer.from_pretrained(out)


def to_pixels(images_u8, mean, std):
    """uint8 (N,28,28) -> float32 (N,3,28,28), as CLIPImageProcessor does for 28x28 gray
    images with size 28 / crop 28 (resize and crop are identities)."""
    x = torch.from_numpy(np.array(images_u8)).float().div_(255.0)
    x = x[:, None].expand(-1, 3, -1, -1)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return ((x - m) / s).contiguous()


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "models", "clip-fmnist"))
    parser.add_argument("--data-dir", default=hf_zeroshot.FMNIST_DIR)
    parser.add_argument("--tokenizer-script", default=os.path.join(HERE, "make_tokenizer.py"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=200, help="linear warm-up steps")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--patch", type=int, default=7)
    parser.add_argument("--vision-hidden", type=int, default=96)
    parser.add_argument("--vision-intermediate", type=int, default=384)
    parser.add_argument("--vision-layers", type=int, default=3)
    parser.add_argument("--vision-heads", type=int, default=4)
    parser.add_argument("--text-hidden", type=int, default=64)
    parser.add_argument("--text-layers", type=int, default=2)
    parser.add_argument("--text-heads", type=int, default=4)
    parser.add_argument("--projection", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import transformers
    from transformers import CLIPImageProcessorPil, CLIPModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    tokenizer = write_tokenizer(args.out, args.max_length, args.tokenizer_script)
    processor = CLIPImageProcessorPil(size={"shortest_edge": 28},
                                      crop_size={"height": 28, "width": 28},
                                      image_mean=FMNIST_MEAN, image_std=FMNIST_STD)
    processor.save_pretrained(args.out)

    train_u8, train_y = hf_zeroshot.load_fmnist("train", args.data_dir)
    test_u8, test_y = hf_zeroshot.load_fmnist("t10k", args.data_dir)
    train_x = to_pixels(train_u8, FMNIST_MEAN, FMNIST_STD)
    test_x = to_pixels(test_u8, FMNIST_MEAN, FMNIST_STD)
    # Train on exactly what inference sees: compare with the processor on a few images.
    via_processor = hf_zeroshot.preprocess_fmnist(processor, train_u8[:64])
    err = (via_processor - train_x[:64]).abs().max().item()
    if err > 1e-5:
        sys.exit(f"train_clip_fmnist: training preprocessing differs from the processor by {err}")
    train_y_t = torch.from_numpy(train_y)

    prompt_ids, prompt_mask = hf_zeroshot.tokenize_prompts(tokenizer, args.max_length)
    config = make_config(args, tokenizer)
    model = CLIPModel(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"train_clip_fmnist: {n_params} parameters, vocab {len(tokenizer)}", flush=True)

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        # Biases, LayerNorms, embeddings and the logit scale are not weight-decayed.
        is_matrix = p.ndim == 2 and "embedding" not in name
        (decay if is_matrix else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)

    n_train = len(train_x)
    steps_per_epoch = n_train // args.batch
    total = steps_per_epoch * args.epochs
    n_classes, n_templates = prompt_ids.shape[:2]
    class_index = torch.arange(n_classes)
    log = []
    start = time.time()
    step = 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n_train, generator=gen)
        running = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x = train_x[idx]
            # Light augmentation: a random horizontal flip (clothes stay clothes).
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y = train_y_t[idx]
            pick = torch.randint(n_templates, (n_classes,), generator=gen)
            ids = prompt_ids[class_index, pick]
            mask = prompt_mask[class_index, pick]

            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, args.lr, args.warmup)
            img = model.get_image_features(pixel_values=x).pooler_output
            txt = model.get_text_features(input_ids=ids, attention_mask=mask).pooler_output
            img = torch.nn.functional.normalize(img, dim=-1)
            txt = torch.nn.functional.normalize(txt, dim=-1)
            logits = model.logit_scale.exp() * img @ txt.T
            loss = torch.nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                # CLIP's clamp: a temperature below 0.01 makes training unstable.
                model.logit_scale.clamp_(0.0, math.log(100.0))
            running += loss.item()
            step += 1
            if (b + 1) % 50 == 0:
                print(f"epoch {epoch + 1} step {b + 1}/{steps_per_epoch} loss {running / 50:.4f} "
                      f"scale {model.logit_scale.exp().item():.1f} "
                      f"{time.time() - start:.0f}s", flush=True)
                running = 0.0
        top1, top5, _ = hf_zeroshot.evaluate(model, tokenizer, test_x, test_y, args.max_length)
        elapsed = time.time() - start
        log.append({"epoch": epoch + 1, "top1": round(top1, 2), "top5": round(top5, 2),
                    "seconds": round(elapsed)})
        print(f"epoch {epoch + 1}: test zero-shot top1 {top1:.2f}% top5 {top5:.2f}% "
              f"({elapsed:.0f}s)", flush=True)

    model.save_pretrained(args.out)
    print(json.dumps({"epochs": log, "train_seconds": round(time.time() - start),
                      "parameters": n_params, "transformers": transformers.__version__,
                      "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
