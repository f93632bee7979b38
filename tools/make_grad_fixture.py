#!/usr/bin/env python3
"""Writes PyTorch autograd's gradients of a partly compressed tests/fixtures/clip-tiny-a, the
reference for the C backward pass (tests/unit/test_clip_grad.c).

    python3 tools/make_grad_fixture.py

The model is loaded with transformers' CLIPModel in float64 with sdpa attention (the eager
one runs its softmax in float32); the reference is computed in float64, stored in float32. A fixed plan gives 19 of its 26
linear layers (rcc_clip_linear order: per block k, v, q, out_proj, fc1, fc2, then the
projection, vision tower first) a compressed form W ~ diag(alpha) (S + U V): a masked S
(~50% of the entries kept), S + U V (masked or dense S, rank 2-4), pure U V (rank 2-4),
alpha = 1 + 0.1 N(0,1) or none (it then trains from 1); the other 7 stay dense.
Inputs: the 4 images and 8 padded token sequences of clip-tiny-a.ref.safetensors.
Loss = sum(image_embeds * R_image) + sum(text_embeds * R_text), R seeded N(0,1).
Every bias, LayerNorm, alpha, U, V and S value trains; embeddings, dense weights and
the logit scale are frozen.

Writes tests/fixtures/clip-tiny-a.grad.safetensors (float32 unless noted):
  pixel_values (4,3,32,32), input_ids (8,16) I32, R_image (4,32), R_text (8,32),
  image_embeds (4,32), text_embeds (8,32) (get_*_features, the loss's inputs),
  layer.{i}.S, layer.{i}.mask (U8, 1 = kept), layer.{i}.U, layer.{i}.V, layer.{i}.alpha
  (only the parts layer i has; a layer absent from these stays dense),
  grad.{name} for every trainable tensor, named as rcc_clip_train's groups:
  "<HF layer>.bias|alpha|U|V|weight" (weight = S, pruned entries 0), "<HF LayerNorm>.weight|bias".
"""
import argparse
import os

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(REPO, "tests", "fixtures")

# Per linear layer (rcc_clip_linear order): None = dense, else (S, rank, alpha) with
# S in {None, "masked", "dense"}.
PLAN = [
    # vision block 0: k, v, q, out_proj, fc1, fc2
    ("masked", 0, True), None, ("dense", 2, True), (None, 4, True), ("masked", 3, False),
    ("masked", 0, True),
    # vision block 1
    None, ("masked", 0, True), None, ("masked", 2, True), (None, 4, True), None,
    # visual_projection
    ("masked", 0, True),
    # text block 0
    ("masked", 0, True), (None, 3, True), None, ("dense", 2, False), ("masked", 0, True), None,
    # text block 1
    None, ("masked", 0, True), (None, 2, True), None, ("masked", 4, True), ("masked", 0, True),
    # text_projection
    ("masked", 2, True),
]


class Compressed(torch.nn.Module):
    """y = alpha * (x (S*mask)^T + (x V^T) U^T) + b, the form rcc_clip_train computes."""

    def __init__(self, S, mask, U, V, alpha, bias):
        super().__init__()
        p = lambda t: torch.nn.Parameter(t.clone()) if t is not None else None
        self.S, self.U, self.V, self.alpha = p(S), p(U), p(V), p(alpha)
        self.register_buffer("mask", mask)
        self.bias = bias  # the original layer's Parameter (or None)

    def forward(self, x):
        y = 0
        if self.S is not None:
            S = self.S * self.mask if self.mask is not None else self.S
            y = x @ S.T
        if self.U is not None:
            y = y + (x @ self.V.T) @ self.U.T
        if self.alpha is not None:
            y = y * self.alpha
        return y + self.bias if self.bias is not None else y


def linears(model):
    """(HF name, parent module, attribute) of every linear layer in rcc_clip_linear order."""
    out = []
    for tower, proj in (("vision_model", "visual_projection"), ("text_model", "text_projection")):
        for l, layer in enumerate(getattr(model, tower).encoder.layers):
            p = f"{tower}.encoder.layers.{l}"
            for sub, parent in (("k_proj", layer.self_attn), ("v_proj", layer.self_attn),
                                ("q_proj", layer.self_attn), ("out_proj", layer.self_attn),
                                ("fc1", layer.mlp), ("fc2", layer.mlp)):
                prefix = "self_attn" if parent is layer.self_attn else "mlp"
                out.append((f"{p}.{prefix}.{sub}", parent, sub))
        out.append((proj, model, proj))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.path.join(FIXTURES, "clip-tiny-a"))
    parser.add_argument("--ref", default=os.path.join(FIXTURES, "clip-tiny-a.ref.safetensors"))
    parser.add_argument("--out", default=os.path.join(FIXTURES, "clip-tiny-a.grad.safetensors"))
    args = parser.parse_args()

    from transformers import CLIPModel

    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(5)
    model = CLIPModel.from_pretrained(args.model, dtype=torch.float64,
                                      attn_implementation="sdpa").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.weight.requires_grad_(True)
            m.bias.requires_grad_(True)

    out, trained = {}, {}
    layers = linears(model)
    assert len(layers) == len(PLAN), (len(layers), len(PLAN))
    for i, ((name, parent, attr), plan) in enumerate(zip(layers, PLAN)):
        lin = getattr(parent, attr)
        if lin.bias is not None:
            lin.bias.requires_grad_(True)
            trained[f"{name}.bias"] = lin.bias
        if plan is None:
            continue
        s_kind, rank, has_alpha = plan
        W = lin.weight.detach()
        m, n = W.shape
        S = mask = U = V = alpha = None
        if s_kind == "masked":
            mask = (torch.rand(m, n, generator=gen) < 0.5).to(torch.uint8)
            S = W * mask
        if rank > 0:
            R = W - S if s_kind == "masked" else W
            u, s, vt = torch.linalg.svd(R, full_matrices=False)
            U, V = u[:, :rank] * s[:rank], vt[:rank].clone()
            if s_kind == "dense":
                S = W - U @ V
        if has_alpha:
            alpha = 1.0 + 0.1 * torch.randn(m, generator=gen, dtype=torch.float64)
        c = Compressed(S, mask, U, V, alpha if has_alpha else torch.ones(m, dtype=torch.float64),
                       lin.bias)
        setattr(parent, attr, c)
        for part, t in (("S", S), ("mask", mask), ("U", U), ("V", V), ("alpha", alpha)):
            if t is not None:
                out[f"layer.{i}.{part}"] = t
        if S is not None:
            trained[f"{name}.weight"] = c.S
        if rank > 0:
            trained[f"{name}.U"], trained[f"{name}.V"] = c.U, c.V
        trained[f"{name}.alpha"] = c.alpha
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.LayerNorm):
            trained[f"{name}.weight"], trained[f"{name}.bias"] = m.weight, m.bias

    ref = load_file(args.ref)
    pixels = ref["pixel_values"].double()
    ids, attention = ref["input_ids"], ref["attention_mask"]
    img = model.get_image_features(pixel_values=pixels).pooler_output
    txt = model.get_text_features(input_ids=ids, attention_mask=attention).pooler_output
    R_img = torch.randn(img.shape, generator=gen, dtype=torch.float64)
    R_txt = torch.randn(txt.shape, generator=gen, dtype=torch.float64)
    ((img * R_img).sum() + (txt * R_txt).sum()).backward()

    out.update(pixel_values=pixels, R_image=R_img, R_text=R_txt, image_embeds=img.detach(),
               text_embeds=txt.detach())
    for name, p in trained.items():
        assert p.grad is not None, name
        out[f"grad.{name}"] = p.grad
    tensors = {k: (v.to(torch.float32) if v.is_floating_point() else v).contiguous()
               for k, v in out.items()}
    tensors["input_ids"] = ids.to(torch.int32).contiguous()
    save_file(tensors, args.out, metadata={"torch": torch.__version__, "compute": "float64"})
    print(f"make_grad_fixture: {len(trained)} trained tensors, "
          f"{sum(p.numel() for p in trained.values())} values -> {args.out} "
          f"({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
