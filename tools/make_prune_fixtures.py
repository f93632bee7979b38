#!/usr/bin/env python3
"""Writes tests/fixtures/prune/prune_ref.safetensors: reference Wanda and SparseGPT results
for tests/unit/test_prune.c, computed in float64 with PyTorch by implementations written
here from the papers' algorithms:

  Wanda     (Sun et al. 2023): score |W_ij| * ||X_j||_2, the floor(s * n) lowest scores of
            each row pruned (unstructured) or the M - N lowest of each group of M (N:M).
  SparseGPT (Frantar & Alistarh 2023, Algorithm 1 and the authors' column loop): dead
            inputs (H_jj = 0) -> H_jj = 1, W[:, j] = 0; H += 0.01 mean(diag H) I;
            Hinv = upper Cholesky factor of H^-1; per column block, the mask from
            W^2 / diag(Hinv)^2 (one threshold over the block, or per row and group of M
            for N:M, taken when the group's first column is reached), then the OBS update
            column by column and the lazy update of the later columns.

Both break ties by index (stable sorts: the lower index is pruned first) and prune exactly
floor(s * count + 1e-6) entries per selection, as compress/prune.h specifies (the authors'
SparseGPT code prunes the entries <= the k-th score, one more than the fraction).

Two layers, each for unstructured 50% and 2:4:
  small  W (24, 64),  X (256, 64),  SparseGPT block 32  (two blocks)
  large  W (40, 256), X (256, 256), SparseGPT block 128 (two blocks); input 17 is dead

What must stay exact: H and col_sq. Instead of storing them (large H in float64 would be
512 KB), X is stored as I8 with x = k / 32: every product x_a x_b is a multiple of 2^-10
below 2^4, so every partial sum of H = X^T X is exact in float64 whatever the order, and
the C test recomputes the same H bit for bit. W is F32 (the reference starts from those
float32 values); outputs are F32 (C returns float32) and U8 masks (1 = kept). Tensors:
  <layer>.W, <layer>.X_i8
  <layer>.wanda.<pattern>.mask
  <layer>.sparsegpt.<pattern>.mask, <layer>.sparsegpt.<pattern>.W    pattern: u50 | 2of4
Metadata: x_scale, sparsity, damp, <layer>.block.

Run from the repository root: python3 tools/make_prune_fixtures.py [--out FILE]
"""
import argparse
import math
import pathlib

import torch
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
X_SCALE = 1.0 / 32.0
SPARSITY = 0.5
DAMP = 0.01
LAYERS = {  # name: (m, n, samples, block, dead inputs)
    "small": (24, 64, 256, 32, []),
    "large": (40, 256, 256, 128, [17]),
}
PATTERNS = {"u50": None, "2of4": (2, 4)}


def prune_count(sparsity, count):
    return min(math.floor(sparsity * count + 1e-6), count)


def lowest_mask(score, k):
    """Bool mask of score's shape, False at the k lowest (score, flat index)."""
    order = torch.argsort(score.reshape(-1), stable=True)
    keep = torch.ones(score.numel(), dtype=torch.bool)
    keep[order[:k]] = False
    return keep.reshape(score.shape)


def nm_mask(score, n_keep, m_group):
    """score (rows, cols): in each row's group of m_group, False at the m - n lowest."""
    rows, cols = score.shape
    groups = score.reshape(rows, cols // m_group, m_group)
    order = torch.argsort(groups, dim=2, stable=True)
    keep = torch.ones_like(groups, dtype=torch.bool)
    keep.scatter_(2, order[:, :, : m_group - n_keep], False)
    return keep.reshape(rows, cols)


def wanda(W, col_sq, sparsity, nm):
    score = W.abs() * col_sq.sqrt()[None, :]
    if nm:
        keep = nm_mask(score, *nm)
    else:
        k = prune_count(sparsity, W.shape[1])
        keep = torch.stack([lowest_mask(row, k) for row in score])
    return keep


def sparsegpt(W, H, sparsity, nm, block, damp):
    W = W.clone()
    H = H.clone()
    m, n = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += damp * torch.mean(torch.diag(H)) * torch.eye(n, dtype=H.dtype)
    Hinv = torch.cholesky_inverse(torch.linalg.cholesky(H))
    Hinv = torch.linalg.cholesky(Hinv, upper=True)
    keep = torch.ones_like(W, dtype=torch.bool)
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        W1 = W[:, b0:b1].clone()
        H1 = Hinv[b0:b1, b0:b1]
        d = torch.diag(H1)
        err = torch.zeros_like(W1)
        keep1 = torch.ones_like(W1, dtype=torch.bool)
        if nm is None:
            keep1 = lowest_mask(W1**2 / d[None, :] ** 2, prune_count(sparsity, W1.numel()))
        for i in range(b1 - b0):
            if nm and i % nm[1] == 0:
                g = slice(i, i + nm[1])
                keep1[:, g] = nm_mask(W1[:, g] ** 2 / d[None, g] ** 2, *nm)
            w = W1[:, i]
            q = torch.where(keep1[:, i], w, torch.zeros_like(w))
            e = (w - q) / d[i]
            W1[:, i:] -= e[:, None] * H1[i, i:][None, :]
            W1[:, i] = q
            err[:, i] = e
        W[:, b0:b1] = W1
        W[:, b1:] -= err @ Hinv[b0:b1, b1:]
        keep[:, b0:b1] = keep1
    return torch.where(keep, W, torch.zeros_like(W)), keep


def make_layer(gen, m, n, samples, dead):
    W = (torch.randn(m, n, generator=gen) * 0.1).float()
    # Correlated inputs with uneven scales, as activations are.
    mix = torch.eye(n) + 0.6 * torch.randn(n, n, generator=gen) / math.sqrt(n)
    scales = torch.exp(0.5 * torch.randn(n, generator=gen))
    X = (torch.randn(samples, n, generator=gen) @ mix) * scales
    X = X / X.abs().max() * 3.9
    X_i8 = torch.round(X / X_SCALE).clamp(-127, 127).to(torch.int8)
    X_i8[:, dead] = 0
    return W, X_i8


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/prune/prune_ref.safetensors"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(20240601)
    tensors = {}
    meta = {"x_scale": repr(X_SCALE), "sparsity": repr(SPARSITY), "damp": repr(DAMP)}
    for name, (m, n, samples, block, dead) in LAYERS.items():
        W, X_i8 = make_layer(gen, m, n, samples, dead)
        X = X_i8.double() * X_SCALE
        H = X.T @ X
        col_sq = (X * X).sum(0)
        tensors[f"{name}.W"] = W
        tensors[f"{name}.X_i8"] = X_i8
        meta[f"{name}.block"] = str(block)
        for pat, nm in PATTERNS.items():
            keep = wanda(W.double(), col_sq, SPARSITY, nm)
            tensors[f"{name}.wanda.{pat}.mask"] = keep.to(torch.uint8)
            Wp, keep = sparsegpt(W.double(), H, SPARSITY, nm, block, DAMP)
            tensors[f"{name}.sparsegpt.{pat}.mask"] = keep.to(torch.uint8)
            tensors[f"{name}.sparsegpt.{pat}.W"] = Wp.float()
            err_s = torch.trace((W.double() - Wp) @ H @ (W.double() - Wp).T).item()
            Ww = torch.where(wanda(W.double(), col_sq, SPARSITY, nm), W.double(), 0.0)
            err_w = torch.trace((W.double() - Ww) @ H @ (W.double() - Ww).T).item()
            print(f"{name} {pat}: kept {int(keep.sum())}/{keep.numel()}, "
                  f"||(W - W_s) X||^2 sparsegpt {err_s:.4g} wanda {err_w:.4g}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out), metadata=meta)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
