#!/usr/bin/env python3
"""Zero-shot Fashion-MNIST evaluation of a Hugging Face CLIP model directory, with
transformers itself: the reference number that rcc-dist's own evaluator must reproduce.

For each class, the text features of every template (get_text_features on ids padded to
max_length) are L2-normalized, averaged and normalized again; the image features of the
CLIPImageProcessor (PIL backend) outputs are L2-normalized; the class with the highest
cosine is the prediction. Writes top-1 / top-5 accuracy (percent) and the first 1000
top-1 predictions as JSON:

    python3 tools/hf_zeroshot.py --model models/clip-fmnist --out models/clip-fmnist/hf_eval.json

Also a module: tools/train_clip_fmnist.py imports the data loader, the class names, the
templates and the evaluation from here so that training and evaluation cannot drift apart.
"""
import argparse
import gzip
import json
import os

import numpy as np
import torch

CLASS_NAMES = ["t-shirt or top", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot"]

# The C evaluator uses the same templates in the same order.
TEMPLATES = ["a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
             "a low contrast photo of a {}.", "a close-up photo of a {}.", "a photo of the {}.",
             "a cropped photo of a {}.", "a good photo of a {}."]

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


def load_fmnist(split, data_dir=FMNIST_DIR):
    """Returns (images uint8 (N,28,28), labels int64 (N,)) of split "train" or "t10k",
    read from the IDX files of Debian's dataset-fashion-mnist."""
    with gzip.open(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
    if magic != 2051:
        raise ValueError(f"{split}-images: bad IDX magic {magic}")
    images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows, cols)
    with gzip.open(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"), "rb") as f:
        raw = f.read()
    magic, n_labels = np.frombuffer(raw[:8], dtype=">i4")
    if magic != 2049 or n_labels != n:
        raise ValueError(f"{split}-labels: bad IDX header (magic {magic}, {n_labels} labels)")
    labels = np.frombuffer(raw[8:], dtype=np.uint8).astype(np.int64)
    return images, labels


def tokenize_prompts(tokenizer, max_length):
    """All class x template prompts as ids (n_classes, n_templates, L) and mask, padded to
    max_length. Fails if a prompt would be truncated (its EOS token would be lost)."""
    texts = [t.format(c) for c in CLASS_NAMES for t in TEMPLATES]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length,
                    return_tensors="pt")
    full = tokenizer(texts)["input_ids"]
    longest = max(len(ids) for ids in full)
    if longest > max_length:
        raise ValueError(f"a prompt has {longest} tokens, more than max_length {max_length}")
    shape = (len(CLASS_NAMES), len(TEMPLATES), max_length)
    return enc["input_ids"].view(shape), enc["attention_mask"].view(shape)


def class_embeddings(model, input_ids, attention_mask):
    """(n_classes, D) zero-shot classifier: per class, the mean of the normalized text
    features of its templates, normalized again. ids/mask are (n_classes, n_templates, L)."""
    n_classes, n_templates, length = input_ids.shape
    out = model.get_text_features(input_ids=input_ids.reshape(-1, length),
                                  attention_mask=attention_mask.reshape(-1, length))
    # transformers 5.x returns a model output whose pooler_output is the projected feature.
    feats = out.pooler_output if hasattr(out, "pooler_output") else out
    feats = torch.nn.functional.normalize(feats, dim=-1).view(n_classes, n_templates, -1)
    return torch.nn.functional.normalize(feats.mean(dim=1), dim=-1)


def image_embeddings(model, pixel_values):
    """(N, D) normalized image features of preprocessed pixel_values (N,3,S,S)."""
    out = model.get_image_features(pixel_values=pixel_values)
    feats = out.pooler_output if hasattr(out, "pooler_output") else out
    return torch.nn.functional.normalize(feats, dim=-1)


def load_processor(model_dir):
    """The PIL-backend CLIP image processor (transformers 5.x's CLIPImageProcessorPil; the
    plain CLIPImageProcessor name there is the torchvision backend)."""
    from transformers import CLIPImageProcessorPil
    return CLIPImageProcessorPil.from_pretrained(model_dir)


def preprocess_fmnist(processor, images, batch=1000):
    """uint8 (N,28,28) gray images -> pixel_values (N,3,S,S) float32 through the processor,
    as PIL "L" images (the processor converts them to RGB)."""
    from PIL import Image
    chunks = []
    for i in range(0, len(images), batch):
        pil = [Image.fromarray(img, mode="L") for img in images[i:i + batch]]
        chunks.append(processor(images=pil, return_tensors="pt")["pixel_values"])
    return torch.cat(chunks)


@torch.no_grad()
def evaluate(model, tokenizer, pixel_values, labels, max_length, batch=1000):
    """Returns (top1 %, top5 %, top-1 predictions (N,) int64) of the zero-shot classifier."""
    model.eval()
    ids, mask = tokenize_prompts(tokenizer, max_length)
    classes = class_embeddings(model, ids, mask)
    preds = []
    for i in range(0, len(pixel_values), batch):
        scores = image_embeddings(model, pixel_values[i:i + batch]) @ classes.T
        preds.append(scores.topk(5, dim=-1).indices)
    top5 = torch.cat(preds)
    labels = torch.as_tensor(labels)
    top1_hit = (top5[:, 0] == labels).float().mean().item() * 100.0
    top5_hit = (top5 == labels[:, None]).any(dim=1).float().mean().item() * 100.0
    return top1_hit, top5_hit, top5[:, 0]


def main():
    parser = argparse.ArgumentParser(description="Zero-shot Fashion-MNIST accuracy with transformers.")
    parser.add_argument("--model", default="models/clip-fmnist", help="HF CLIP model directory")
    parser.add_argument("--out", help="JSON output (default: MODEL/hf_eval.json)")
    parser.add_argument("--data-dir", default=FMNIST_DIR, help="Fashion-MNIST IDX .gz files")
    parser.add_argument("--limit", type=int, default=0, help="evaluate the first N test images only")
    args = parser.parse_args()

    import transformers
    from transformers import AutoTokenizer, CLIPModel

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = CLIPModel.from_pretrained(args.model, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    processor = load_processor(args.model)
    images, labels = load_fmnist("t10k", args.data_dir)
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    pixel_values = preprocess_fmnist(processor, images)
    max_length = model.config.text_config.max_position_embeddings
    top1, top5, pred = evaluate(model, tokenizer, pixel_values, labels, max_length)
    result = {
        "model": os.path.normpath(args.model),
        "top1": round(top1, 2),
        "top5": round(top5, 2),
        "samples": int(len(labels)),
        "class_names": CLASS_NAMES,
        "templates": TEMPLATES,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "pred_top1_first1000": pred[:1000].tolist(),
    }
    out = args.out or os.path.join(args.model, "hf_eval.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"hf_zeroshot: {args.model}: top1 {top1:.2f}% top5 {top5:.2f}% on {len(labels)} images -> {out}")


if __name__ == "__main__":
    main()
