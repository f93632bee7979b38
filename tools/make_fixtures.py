#!/usr/bin/env python3
"""Builds the two tiny random CLIP checkpoints of the test suite and Hugging Face's own
outputs for them, the reference the C forward pass is compared with.

    python3 tools/make_fixtures.py

Writes, for X in a, b:
  tests/fixtures/clip-tiny-X/      config.json, model.safetensors (a: F32, b: F16),
                                   tokenizer files (tools/make_tokenizer.py),
                                   preprocessor_config.json (PIL CLIPImageProcessor)
  tests/fixtures/clip-tiny-X.ref.safetensors
                                   input_ids, attention_mask (I64), pixel_values,
                                   image_features, text_features, logits_per_image,
                                   vision/text_last_hidden_state (F32); metadata: the
                                   image paths, the texts, the library versions
and the input photos tests/fixtures/clip-images/*.png (from scikit-image's data folder).

clip-tiny-a uses eos_token_id 2 (transformers' legacy argmax pooling of the text tower)
and quick_gelu; clip-tiny-b uses the tokenizer's real <|endoftext|> id (first-EOS pooling)
and exact gelu, and is stored in float16: its references are computed in float32 from
the float16-rounded weights. Every parameter is random and non-trivial (biases and
LayerNorms included, a non-default logit scale), so a test that ignores one fails.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# (file name, scikit-image source, crop box (left, upper, right, lower), size (w, h), mode):
# a square, a landscape, a portrait and a gray image, so that the processor's
# shortest-edge resize, center crop and gray-to-RGB conversion are all exercised.
IMAGES = [
    ("astronaut.png", "astronaut.png", (0, 0, 512, 512), (56, 56), "RGB"),
    ("chelsea.png", "chelsea.png", (0, 0, 451, 300), (84, 56), "RGB"),
    ("coffee.png", "coffee.png", (150, 0, 450, 400), (45, 60), "RGB"),
    ("camera.png", "camera.png", (0, 96, 512, 416), (80, 50), "L"),
]

TEXTS = [
    "a photo of a cat",
    "an astronaut in a white space suit.",
    "A Cup of COFFEE, please!",
    "a grayscale photo of a man with a camera on a tripod",
    "dog",
    "two red apples and 3 green pears on a table",
    "a very long caption that keeps going on and on about a small orange tabby cat "
    "sitting on a wooden floor next to a cup of hot coffee and an astronaut",
    "the sky at night",
]

MODELS = {
    "clip-tiny-a": dict(
        vision=dict(hidden_size=64, num_attention_heads=2, num_hidden_layers=2,
                    intermediate_size=128, image_size=32, patch_size=4, hidden_act="quick_gelu"),
        text=dict(hidden_size=64, num_attention_heads=2, num_hidden_layers=2,
                  intermediate_size=128, max_position_embeddings=16, hidden_act="quick_gelu"),
        projection_dim=32, legacy_eos=True, dtype=torch.float32, seed=1, logit_scale=3.0),
    "clip-tiny-b": dict(
        vision=dict(hidden_size=96, num_attention_heads=4, num_hidden_layers=3,
                    intermediate_size=160, image_size=48, patch_size=8, hidden_act="gelu"),
        text=dict(hidden_size=48, num_attention_heads=4, num_hidden_layers=3,
                  intermediate_size=96, max_position_embeddings=24, hidden_act="gelu"),
        projection_dim=48, legacy_eos=False, dtype=torch.float16, seed=2, logit_scale=2.2),
}

# Larger than CLIP's default 1.0 so that embeddings and attention logits are not tiny.
INITIALIZER_FACTOR = 3.0


def make_images(images_dir):
    """Writes the input photos; returns their paths relative to the repository root."""
    import skimage
    from PIL import Image
    src_dir = os.path.join(os.path.dirname(skimage.__file__), "data")
    os.makedirs(images_dir, exist_ok=True)
    paths = []
    for name, src, box, size, mode in IMAGES:
        img = Image.open(os.path.join(src_dir, src)).convert(mode)
        img = img.crop(box).resize(size, Image.LANCZOS)
        path = os.path.join(images_dir, name)
        img.save(path, optimize=True)
        paths.append(os.path.relpath(os.path.abspath(path), REPO))
    return paths


def randomize(model, gen):
    """Gives LayerNorms, biases and the logit scale random non-default values."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1.0 + 0.3 * torch.randn(module.weight.shape, generator=gen))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=gen))
            elif getattr(module, "bias", None) is not None:
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))


def build(name, spec, out_dir, tokenizer_script, merges):
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"])
    model_dir = os.path.join(out_dir, name)
    os.makedirs(model_dir, exist_ok=True)
    max_length = spec["text"]["max_position_embeddings"]
    subprocess.run([sys.executable, tokenizer_script, "--out", model_dir, "--max-length",
                    str(max_length), "--merges", str(merges), "--no-cases"], check=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    # The sub-configs' projection_dim is unused by CLIPModel; set it anyway so that no
    # reader of config.json can pick up transformers' default 512 by mistake.
    common = dict(initializer_factor=INITIALIZER_FACTOR, projection_dim=spec["projection_dim"])
    text = dict(spec["text"], vocab_size=len(tokenizer), **common)
    if spec["legacy_eos"]:
        # eos_token_id 2 selects transformers' pre-#24773 pooling: argmax of the ids.
        text.update(bos_token_id=0, eos_token_id=2, pad_token_id=1)
    else:
        text.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=tokenizer.pad_token_id)
    vision = dict(spec["vision"], num_channels=3, **common)
    config = CLIPConfig(text_config=text, vision_config=vision,
                        projection_dim=spec["projection_dim"],
                        logit_scale_init_value=spec["logit_scale"],
                        initializer_factor=INITIALIZER_FACTOR)
    model = CLIPModel(config).eval()
    randomize(model, gen)
    with torch.no_grad():
        model.logit_scale.fill_(spec["logit_scale"])
    if spec["dtype"] == torch.float16:
        # The references must come from exactly the weights the file holds.
        model = model.half().float()
    model.to(spec["dtype"]).save_pretrained(model_dir)
    model = model.float()

    size = spec["vision"]["image_size"]
    processor = CLIPImageProcessorPil(size={"shortest_edge": size},
                                      crop_size={"height": size, "width": size})
    processor.save_pretrained(model_dir)
    return model_dir


@torch.no_grad()
def reference(model_dir, image_paths, texts, ref_path, projection_dim):
    """Runs the saved model directory, reloaded through transformers, and writes the
    reference tensors."""
    import transformers
    from PIL import Image
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, CLIPImageProcessorPil, CLIPModel

    model = CLIPModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    processor = CLIPImageProcessorPil.from_pretrained(model_dir)
    max_length = model.config.text_config.max_position_embeddings

    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length,
                    return_tensors="pt")
    images = [Image.open(os.path.join(REPO, p)) for p in image_paths]
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"].float()
    ids, mask = enc["input_ids"].long(), enc["attention_mask"].long()

    # transformers 5.x: get_*_features return a BaseModelOutputWithPooling whose
    # pooler_output is the projected feature (not normalized).
    vision = model.get_image_features(pixel_values=pixel_values)
    textout = model.get_text_features(input_ids=ids, attention_mask=mask)
    image_features, text_features = vision.pooler_output, textout.pooler_output
    full = model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values)
    assert image_features.shape == (len(images), projection_dim), image_features.shape
    assert text_features.shape == (len(texts), projection_dim), text_features.shape
    assert torch.allclose(full.image_embeds,
                          torch.nn.functional.normalize(image_features, dim=-1), atol=1e-6)
    assert full.logits_per_image.shape == (len(images), len(texts))

    tensors = {
        "input_ids": ids.contiguous(),
        "attention_mask": mask.contiguous(),
        "pixel_values": pixel_values.contiguous(),
        "image_features": image_features.contiguous(),
        "text_features": text_features.contiguous(),
        "logits_per_image": full.logits_per_image.contiguous(),
        "vision_last_hidden_state": vision.last_hidden_state.contiguous(),
        "text_last_hidden_state": textout.last_hidden_state.contiguous(),
    }
    metadata = {"images": json.dumps(image_paths), "texts": json.dumps(texts),
                "transformers": transformers.__version__, "torch": torch.__version__}
    save_file(tensors, ref_path, metadata=metadata)
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures"),
                        help="folder of clip-tiny-{a,b}/ and clip-tiny-{a,b}.ref.safetensors")
    parser.add_argument("--images-dir", default=os.path.join(REPO, "tests", "fixtures", "clip-images"))
    parser.add_argument("--tokenizer-script", default=os.path.join(HERE, "make_tokenizer.py"))
    parser.add_argument("--merges", type=int, default=500,
                        help="BPE merges of the tokenizer (vocab 514 + merges); few keep "
                             "the token embedding, hence the fixture, small")
    args = parser.parse_args()

    torch.set_num_threads(2)
    np.random.seed(0)
    image_paths = make_images(args.images_dir)
    for name, spec in MODELS.items():
        model_dir = build(name, spec, args.out, args.tokenizer_script, args.merges)
        ref_path = os.path.join(args.out, f"{name}.ref.safetensors")
        t = reference(model_dir, image_paths, TEXTS, ref_path, spec["projection_dim"])
        lengths = t["attention_mask"].sum(1).tolist()
        print(f"make_fixtures: {name}: token counts {lengths}, "
              f"|image_features| {t['image_features'].norm(dim=-1).mean():.3f}, "
              f"logits_per_image std {t['logits_per_image'].std():.3f} -> {ref_path}")


if __name__ == "__main__":
    main()
