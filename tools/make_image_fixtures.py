#!/usr/bin/env python3
"""Makes the image fixtures of tests/unit/test_image.c.

tests/fixtures/images/: small real photos (scikit-image's data folder) saved in every
format rcc_image_load reads: PNG gray, gray+alpha, RGB, RGBA, palette (with tRNS), JPEG
4:2:0, 4:4:4 and progressive gray, at various aspect ratios, one smaller than the crops.

tests/fixtures/preprocess/: what Pillow and transformers make of them:
  index.json                      the list below, with shapes
  decoded/<image>.u8.gz           pixels as rcc_image_load must return them, (H, W, C) uint8:
                                  Image.open, then transformers' convert_to_rgb (alpha
                                  composited onto white); gray images stay one channel
  <config>/preprocessor_config.json   written by CLIPImageProcessorPil.save_pretrained
  <config>/<image>.f32.gz         pixel_values (3, H, W) float32 little-endian

The reference is CLIPImageProcessorPil, the PIL backend of CLIP's processor. In
transformers 5.x the class named CLIPImageProcessor is the torchvision ("fast") backend
and AutoImageProcessor picks it when torchvision is installed; rcc-dist reproduces the
PIL one (Pillow's bicubic on 8-bit pixels), which is what older transformers called
CLIPImageProcessor. Binaries are gzip (mtime 0) so the folders stay small; the C test
reads them with zlib.

Run: pip install scikit-image; python3 tools/make_image_fixtures.py
"""
import gzip
import json
import os
import shutil

import numpy as np
import skimage
from PIL import Image
from transformers import CLIPImageProcessorPil
from transformers.image_transforms import convert_to_rgb

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
IMAGES = os.path.join(ROOT, "tests", "fixtures", "images")
PREPROCESS = os.path.join(ROOT, "tests", "fixtures", "preprocess")
SKDATA = os.path.join(os.path.dirname(skimage.__file__), "data")


def photo(name, box, size, mode=None):
    """Crops box (left, upper, right, lower) of a scikit-image photo and shrinks it."""
    im = Image.open(os.path.join(SKDATA, name))
    im = im.convert(mode) if mode else im.convert("RGB") if im.mode != "L" else im
    return im.crop(box).resize(size, Image.Resampling.LANCZOS)


def alpha_ramp(w, h, seed):
    """Alpha covering 0..255: a diagonal ramp plus noise, with fully clear and opaque parts."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = (x + y) * 400.0 / (w + h) - 70 + rng.integers(-20, 21, size=(h, w))
    return np.clip(a, 0, 255).astype(np.uint8)


def make_images():
    os.makedirs(IMAGES, exist_ok=True)
    made = []

    im = photo("astronaut.png", (60, 20, 460, 320), (96, 72))
    im.save(os.path.join(IMAGES, "astronaut_rgb.png"))
    made.append("astronaut_rgb.png")

    im = photo("camera.png", (100, 0, 440, 510), (60, 90))
    im.save(os.path.join(IMAGES, "camera_gray.png"))
    made.append("camera_gray.png")

    rgb = np.array(photo("coffee.png", (0, 0, 600, 400), (80, 64)))
    rgba = np.dstack([rgb, alpha_ramp(80, 64, 1)])
    Image.fromarray(rgba, "RGBA").save(os.path.join(IMAGES, "coffee_rgba.png"))
    made.append("coffee_rgba.png")

    # Palette with a tRNS chunk: the first eight entries are partly transparent.
    im = photo("chelsea.png", (60, 20, 360, 320), (70, 70)).quantize(48)
    im.save(os.path.join(IMAGES, "chelsea_palette.png"),
            transparency=bytes([0, 40, 80, 120, 160, 200, 240, 250]))
    made.append("chelsea_palette.png")

    gray = np.array(photo("coins.png", (0, 0, 384, 303), (24, 20), "L"))
    la = np.dstack([gray, alpha_ramp(24, 20, 2)])
    Image.fromarray(la, "LA").save(os.path.join(IMAGES, "coins_la.png"))
    made.append("coins_la.png")

    im = photo("rocket.jpg", (100, 0, 400, 427), (63, 87))
    im.save(os.path.join(IMAGES, "rocket_420.jpg"), quality=90, subsampling="4:2:0")
    made.append("rocket_420.jpg")

    im = photo("chelsea.png", (0, 0, 451, 300), (81, 61))
    im.save(os.path.join(IMAGES, "chelsea_444.jpg"), quality=90, subsampling="4:4:4")
    made.append("chelsea_444.jpg")

    im = photo("camera.png", (50, 30, 450, 500), (45, 53))
    im.save(os.path.join(IMAGES, "camera_gray.jpg"), quality=90, progressive=True)
    made.append("camera_gray.jpg")
    return made


def write_gz(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(np.ascontiguousarray(array).tobytes())


def decoded(path):
    """What rcc_image_load returns: Pillow's pixels after transformers' convert_to_rgb."""
    im = Image.open(path)
    if im.mode in ("L", "RGB") and im.info.get("transparency") is None:
        px = np.array(im)
    else:
        px = convert_to_rgb(im, return_numpy=True)
        if im.mode in ("L", "LA"):
            assert (px[..., 0] == px[..., 1]).all() and (px[..., 0] == px[..., 2]).all()
            px = px[..., 0]
    return px.reshape(px.shape[0], px.shape[1], -1)


CONFIGS = {
    # name: (processor arguments, images it runs on; None = all)
    "se32_c32": (dict(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}), None),
    "se48_c40x36": (dict(size={"shortest_edge": 48}, crop_size={"height": 40, "width": 36},
                         image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]),
                    None),
    # Shortest edge below the crop: the crop pads with zeros on both sides, by odd amounts
    # (3 = 1 before + 2 after) to check the rounding of the offsets.
    "se31_c34": (dict(size={"shortest_edge": 31}, crop_size={"height": 34, "width": 34}),
                 ["astronaut_rgb.png", "rocket_420.jpg", "coins_la.png"]),
    "se224_c224": (dict(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}),
                   ["chelsea_444.jpg"]),
}


def main():
    names = make_images()
    shutil.rmtree(PREPROCESS, ignore_errors=True)
    index = {"images": [], "configs": []}
    for name in names:
        px = decoded(os.path.join(IMAGES, name))
        rel = f"decoded/{name}.u8.gz"
        write_gz(os.path.join(PREPROCESS, rel), px)
        h, w, c = px.shape
        index["images"].append({"file": name, "height": h, "width": w, "channels": c,
                                "pixels": rel})
    for cname, (kwargs, subset) in CONFIGS.items():
        cdir = os.path.join(PREPROCESS, cname)
        CLIPImageProcessorPil(**kwargs).save_pretrained(cdir)
        proc = CLIPImageProcessorPil.from_pretrained(cdir)
        cases = []
        for name in subset or names:
            pv = proc(images=Image.open(os.path.join(IMAGES, name)), return_tensors="np")
            pv = pv["pixel_values"][0]
            assert pv.dtype == np.float32 and pv.shape[0] == 3
            rel = f"{cname}/{name}.f32.gz"
            write_gz(os.path.join(PREPROCESS, rel), pv.astype("<f4"))
            cases.append({"image": name, "pixel_values": rel, "shape": list(pv.shape)})
        index["configs"].append({"name": cname, "dir": cname, "cases": cases})
    with open(os.path.join(PREPROCESS, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
