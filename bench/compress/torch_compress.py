#!/usr/bin/env python3
"""PyTorch anchor of bench/compress: the same compression methods, written from their papers.

    torch_compress.py prepare --work DIR [--tokens 4096] [--seed 0]
    torch_compress.py time --model DIR --work DIR --plan PLAN --threads T --rcc-out DIR

`prepare` writes the calibration statistics both sides use, H = X^T X (n, n) float64 for
the two input widths of a ViT-B/32 vision block (768: q, k, v, out, fc1; 3072: fc2), from
a synthetic but transformer-like X (tokens, n): a 32-dimensional shared component (features
are correlated), iid noise, a per-channel mean, log-normal channel scales and 1 % outlier
channels 8x larger, all from a seeded torch.Generator. Files <work>/calib-<n>.bin:
    char magic[8] = "RCCCAL1\\0", int32 n, int32 tokens, float64 H[n * n] (little-endian)

`time` times each method of PLAN (METHOD:BLOCKS,..., as bench_compress takes it) on the
linears of the first BLOCKS encoder blocks of the vision tower (q, k, v, out, fc1, fc2 per
block), one untimed warm-up call on the first layer, then one timed call per layer, with
torch.set_num_threads(T) under torch.inference_mode(), in float32 (what the methods'
reference code does) and, where the precision matters, float64 (what rcc computes in).
Then it compares each result with bench_compress's (files in --rcc-out, format in
bench_compress.c) and prints one JSON line per method; exit status 1 when a check failed.

The methods (settings fixed, the same as bench_compress.c):
  magnitude  the floor(0.5 m n) smallest |W| of the layer, ties by lower index (kthvalue)
  wanda      Sun et al. 2023: |W_ij| sqrt(sum_x x_j^2), the 50 % lowest of each row
             (stable sort, as the authors' code)
  sparsegpt  Frantar & Alistarh 2023, the authors' algorithm: Hinv = upper Cholesky of
             (H + 0.01 mean(diag H) I)^-1 (cholesky, cholesky_inverse, cholesky), blocks
             of 128 columns, each block's mask = the 50 % lowest w^2 / Hinv_jj^2 over the
             block, OBS updates column by column, lazy update of later columns
  svd        torch.linalg.svd (gesdd), rank = smallest reaching 90 % of ||W||_F^2, cap 1.0
  svd_rand   torch.svd_lowrank (Halko et al. 2011, q = k + max(10, k / 2), 2 power
             iterations), k = floor(0.1 min(m, n)), energy 0.9
  whitened   SVD-LLM (Wang et al. 2024): L = cholesky(H + 0.01 mean(diag H) I), truncated
             SVD of W L (energy 0.95, cap 0.25), V <- V L^-1 by a triangular solve; the
             SVD path follows rcc's AUTO rule (randomized when the cap <= min(m, n) / 4 and
             min(m, n) >= 256), so both sides do the same math
  alpha      closed form a_i = (w_i^T H v_i + l) / (v_i^T H v_i + l), l = 0.001, with
             W_hat = W pruned by magnitude 50 % (made untimed)
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
from safetensors import safe_open

CALIB_MAGIC = b"RCCCAL1\0"
WIDTHS = (768, 3072)
KINDS = (("self_attn.q_proj", "q"), ("self_attn.k_proj", "k"), ("self_attn.v_proj", "v"),
         ("self_attn.out_proj", "out"), ("mlp.fc1", "fc1"), ("mlp.fc2", "fc2"))
METHODS = ("magnitude", "wanda", "sparsegpt", "svd", "svd_rand", "whitened", "alpha")
SPARSITY, DAMP, ALPHA_LAMBDA, SPARSEGPT_BLOCK = 0.5, 0.01, 0.001, 128
RULES = {"svd": (0.9, 1.0, 1), "svd_rand": (0.9, 0.1, 1), "whitened": (0.95, 0.25, 1)}
# Precisions timed per method: float32 is what the reference code runs in; float64 is
# rcc's precision (magnitude compares float32 |W| exactly, so float64 adds nothing).
DTYPES = {m: ("float32",) if m == "magnitude" else ("float32", "float64") for m in METHODS}


# ---- calibration ------------------------------------------------------------------------

def calib_path(work, n):
    return os.path.join(work, f"calib-{n}.bin")


def make_x(n, tokens, seed):
    """Seeded synthetic activations X (tokens, n), float64."""
    g = torch.Generator().manual_seed(seed * 100003 + n)
    d = torch.float64
    shared = torch.randn(tokens, 32, generator=g, dtype=d) @ \
        (torch.randn(32, n, generator=g, dtype=d) / math.sqrt(32))
    noise = 0.5 * torch.randn(tokens, n, generator=g, dtype=d)
    mean = 0.2 * torch.randn(n, generator=g, dtype=d)
    scale = torch.exp(0.5 * torch.randn(n, generator=g, dtype=d))
    outliers = torch.randperm(n, generator=g)[: max(1, n // 100)]
    scale[outliers] *= 8.0
    return (shared + noise + mean) * scale


def prepare(args):
    os.makedirs(args.work, exist_ok=True)
    spec_path = os.path.join(args.work, "calib_spec.json")
    spec = {"tokens": args.tokens, "seed": args.seed, "widths": list(WIDTHS), "version": 1}
    if os.path.exists(spec_path) and all(os.path.exists(calib_path(args.work, n)) for n in WIDTHS):
        with open(spec_path) as f:
            if json.load(f) == spec:
                print(f"torch_compress: calibration in {args.work} is up to date", file=sys.stderr)
                return 0
        os.remove(spec_path)
    for n in WIDTHS:
        X = make_x(n, args.tokens, args.seed)
        H = (X.T @ X).contiguous()
        tmp = calib_path(args.work, n) + ".tmp"
        with open(tmp, "wb") as f:
            f.write(CALIB_MAGIC)
            f.write(struct.pack("<2i", n, args.tokens))
            f.write(H.numpy().astype("<f8").tobytes())
        os.replace(tmp, calib_path(args.work, n))
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    print(f"torch_compress: wrote H for widths {WIDTHS} from {args.tokens} tokens", file=sys.stderr)
    return 0


def read_calib(work, n):
    with open(calib_path(work, n), "rb") as f:
        magic = f.read(8)
        n_file, _tokens = struct.unpack("<2i", f.read(8))
        data = np.frombuffer(f.read(), dtype="<f8")
    if magic != CALIB_MAGIC or n_file != n or data.size != n * n:
        raise SystemExit(f"torch_compress: {calib_path(work, n)} is not a calibration file for n={n}")
    return torch.from_numpy(data.copy()).reshape(n, n)


# ---- the methods: each takes float32 W (m, n) and returns its results -------------------

def prune_count(sparsity, count):
    """floor(sparsity * count) with rcc's 1e-6 allowance for binary rounding."""
    return min(count, int(math.floor(sparsity * count + 1e-6)))


def magnitude(W):
    """Returns (W pruned, kept mask): exactly k smallest |W| pruned, ties by lower index."""
    a = W.abs().flatten()
    k = prune_count(SPARSITY, a.numel())
    t = torch.kthvalue(a, k).values
    below, tie = a < t, a == t
    need = k - int(below.sum())
    pruned = below | (tie & (torch.cumsum(tie, 0) <= need))
    kept = ~pruned.reshape(W.shape)
    return W * kept, kept


def wanda(W, col_sq, dtype):
    metric = W.to(dtype).abs() * torch.sqrt(col_sq).reshape(1, -1)
    k = prune_count(SPARSITY, W.shape[1])
    idx = torch.sort(metric, dim=-1, stable=True)[1][:, :k]
    kept = torch.ones_like(W, dtype=torch.bool)
    kept.scatter_(1, idx, False)
    return W * kept, kept


def sparsegpt(W, H, dtype):
    W = W.to(dtype).clone()
    H = H.clone()
    m, n = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H.diagonal().add_(DAMP * torch.mean(torch.diag(H)))
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    pruned = torch.zeros(m, n, dtype=torch.bool)
    for i1 in range(0, n, SPARSEGPT_BLOCK):
        i2 = min(i1 + SPARSEGPT_BLOCK, n)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        tmp = W1 ** 2 / torch.diag(Hinv1).reshape(1, -1) ** 2
        # Exactly k lowest over the block (the authors take sort()[k] with <=, one more).
        k = prune_count(SPARSITY, tmp.numel())
        mask1 = torch.zeros(tmp.numel(), dtype=torch.bool)
        mask1[torch.sort(tmp.flatten(), stable=True)[1][:k]] = True
        mask1 = mask1.reshape(m, count)
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        pruned[:, i1:i2] = mask1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W.float(), ~pruned


def rank_max(ratio, min_rank, kmin):
    return min(kmin, max(min_rank, int(math.floor(ratio * kmin))))


def randomized_auto(rmax, kmin):
    """rcc's AUTO rule: the randomized path when only a small top part can be kept."""
    return rmax <= kmin // 4 and kmin >= 256


def truncated_svd(A, rule):
    """A (m, n) in its dtype -> (U_r sigma_r (m, r), V_r^T (r, n), sigma_r) under the rank
    rule, on rcc's AUTO path."""
    energy, ratio, min_rank = rule
    kmin = min(A.shape)
    rmax = rank_max(ratio, min_rank, kmin)
    total = float((A * A).sum())
    if randomized_auto(rmax, kmin):
        q = min(kmin, rmax + max(10, rmax // 2))
        U, S, V = torch.svd_lowrank(A, q=q, niter=2)
        Vh = V.mT
    else:
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    cum = torch.cumsum(S[:rmax].double() ** 2, 0)
    reached = torch.nonzero(cum >= energy * total)
    r = int(reached[0]) + 1 if reached.numel() else rmax
    r = max(r, min(min_rank, kmin))
    return U[:, :r] * S[:r], Vh[:r], S[:r]


def svd_method(W, rule, dtype):
    U, V, _ = truncated_svd(W.to(dtype), rule)
    return U.float(), V.float()


def whitened(W, H, dtype):
    Hd = H.clone()
    Hd.diagonal().add_(DAMP * torch.mean(torch.diag(Hd)))
    L = torch.linalg.cholesky(Hd)
    U, Vh, _ = truncated_svd(W.to(dtype) @ L, RULES["whitened"])
    V = torch.linalg.solve_triangular(L, Vh, upper=False, left=False)  # V L = Vh
    return U.float(), V.float()


def alpha_closed_form(W, W_hat, H, dtype):
    V = W_hat.to(dtype)
    G = V @ H  # (m, n): row i is H v_i (H symmetric)
    num = (W.to(dtype) * G).sum(1)
    den = (V * G).sum(1)
    scale = (V * V).sum(1) * torch.diag(H).max()
    d = den + ALPHA_LAMBDA
    ok = (d > 0) & (d > 1e-12 * scale)
    return torch.where(ok, (num + ALPHA_LAMBDA) / d, torch.ones_like(d)).float()


# ---- timing -----------------------------------------------------------------------------

def parse_plan(text):
    plan = {}
    for item in text.split(","):
        name, _, blocks = item.partition(":")
        if name not in METHODS or not blocks.isdigit() or not 1 <= int(blocks) <= 12:
            raise SystemExit(f"torch_compress: --plan: '{item}' is not METHOD:BLOCKS (1..12)")
        plan[name] = int(blocks)
    return plan


def run_one(method, W, H, col_sq):
    """Returns (seconds, result) for one call in H's precision; H and col_sq are made in it
    beforehand, as the reference code keeps them (it accumulates H in float32)."""
    dtype = H.dtype
    extra = None
    if method == "alpha":
        extra = magnitude(W)[0]  # W_hat, untimed
    t0 = time.perf_counter()
    if method == "magnitude":
        out = magnitude(W)
    elif method == "wanda":
        out = wanda(W, col_sq, dtype)
    elif method == "sparsegpt":
        out = sparsegpt(W, H, dtype)
    elif method in ("svd", "svd_rand"):
        out = svd_method(W, RULES[method], dtype)
    elif method == "whitened":
        out = whitened(W, H, dtype)
    else:
        out = alpha_closed_form(W, extra, H, dtype)
    return time.perf_counter() - t0, out


# ---- checks against rcc's results -------------------------------------------------------

def read_rcc(rcc_out, method, lid, m, n):
    stem = os.path.join(rcc_out, f"{method}-{lid}")
    if method in ("magnitude", "wanda", "sparsegpt"):
        bits = np.fromfile(stem + ".mask", dtype=np.uint8)
        kept = torch.from_numpy(np.unpackbits(bits, count=m * n).astype(bool)).reshape(m, n)
        W = None
        if method == "sparsegpt":
            W = torch.from_numpy(np.fromfile(stem + ".w", dtype="<f4")).reshape(m, n)
        return kept, W
    if method == "alpha":
        return torch.from_numpy(np.fromfile(stem + ".alpha", dtype="<f4"))
    raw = open(stem + ".lr", "rb").read()
    r = struct.unpack("<i", raw[:4])[0]
    f = np.frombuffer(raw[4:], dtype="<f4")
    if f.size != r * (m + n):
        raise SystemExit(f"torch_compress: {stem}.lr holds {f.size} floats, rank {r} wants {r * (m + n)}")
    U = torch.from_numpy(f[: m * r].copy()).reshape(m, r)
    V = torch.from_numpy(f[m * r:].copy()).reshape(r, n)
    return U, V


def rel(a, b):
    return abs(a - b) / abs(b) if b != 0 else abs(a - b)


class Check:
    """Per-precision worst cases over the layers of one method, each compared with the
    method's tolerance. Every metric compares rcc's result with torch's for the same layer:
      mask_diff  fraction of entries kept by one side and pruned by the other
      kept_diff  |difference of the kept counts|
      err_rel    relative difference of the layer's error (sparsegpt: output error on the
                 calibration data; svd, svd_rand: ||W - U V||_F; whitened: ||(W - U V) L||_F)
      rank_diff  |difference of the chosen ranks|
      sigma_rel  worst relative difference of the kept singular values
      alpha_abs  worst |difference of alpha|"""

    # method -> metric -> (tolerance vs float32 torch, vs float64 torch). Magnitude and
    # Wanda in float64 compute bit-identical scores, so their masks must be identical.
    # The randomized sketches of svd_rand and whitened differ (rcc: splitmix64 and
    # Box-Muller, torch: its own generator), so those agree only to the accuracy of the
    # approximation itself. rcc's svd computes in float32, so it meets float64 torch only to
    # float32 rounding (and may pick a rank one off where the energy rule falls between
    # two singular values that float32 cannot order against the threshold).
    TOLERANCES = {
        "magnitude": {"mask_diff": (0, 0), "kept_diff": (0, 0)},
        "wanda": {"mask_diff": (1e-3, 0), "kept_diff": (0, 0)},
        "sparsegpt": {"mask_diff": (1e-2, 1e-4), "kept_diff": (0, 0), "err_rel": (2e-2, 1e-3)},
        "svd": {"rank_diff": (1, 1), "sigma_rel": (1e-4, 1e-5), "err_rel": (1e-4, 1e-5)},
        "svd_rand": {"rank_diff": (0, 0), "sigma_rel": (5e-2, 5e-2), "err_rel": (1e-2, 1e-2)},
        "whitened": {"rank_diff": (0, 0), "sigma_rel": (5e-2, 5e-2), "err_rel": (1e-2, 1e-2)},
        "alpha": {"alpha_abs": (1e-3, 1e-5)},
    }

    def __init__(self, method):
        self.method = method
        self.worst = {}

    def add(self, dtype, metric, value):
        key, value = (dtype, metric), float(value)
        old = self.worst.get(key)
        if old is None or math.isnan(value) or (not math.isnan(old) and value > old):
            self.worst[key] = value  # a NaN sticks: it fails the check

    def tolerance(self, dtype, metric):
        return self.TOLERANCES[self.method][metric][0 if dtype == "float32" else 1]

    def failures(self):
        return [f"{metric} {v:.2g} > {self.tolerance(d, metric):.2g} vs torch {d}"
                for (d, metric), v in sorted(self.worst.items()) if not v <= self.tolerance(d, metric)]

    def summary(self):
        """The worst metrics against the most precise torch run, for the table."""
        d = "float64" if any(k[0] == "float64" for k in self.worst) else "float32"
        parts = [f"{metric} {int(v)}" if metric in ("kept_diff", "rank_diff") else f"{metric} {v:.1e}"
                 for (dd, metric), v in sorted(self.worst.items()) if dd == d]
        return f"vs {d.replace('float', 'f')}: " + ", ".join(parts)


def layer_error(W, Wp, H):
    """tr((W - Wp) H (W - Wp)^T) / tr(W H W^T), float64: the layer's relative output error
    on the calibration data."""
    D = (W - Wp).double()
    Wd = W.double()
    return float(((D @ H) * D).sum() / ((Wd @ H) * Wd).sum())


def check_layer(chk, method, dtype, W, H, L, torch_out, rcc_out):
    if method in ("magnitude", "wanda", "sparsegpt"):
        kept_rcc, W_rcc = rcc_out
        W_t, kept_t = torch_out
        chk.add(dtype, "mask_diff", float((kept_rcc != kept_t).sum()) / kept_t.numel())
        chk.add(dtype, "kept_diff", abs(int(kept_rcc.sum()) - int(kept_t.sum())))
        if method == "sparsegpt":
            chk.add(dtype, "err_rel", rel(layer_error(W, W_rcc, H), layer_error(W, W_t, H)))
    elif method == "alpha":
        chk.add(dtype, "alpha_abs", float((rcc_out - torch_out).abs().max()))
    else:
        (U_r, V_r), (U_t, V_t) = rcc_out, torch_out
        chk.add(dtype, "rank_diff", abs(U_r.shape[1] - U_t.shape[1]))
        # U holds left vectors times sigma: its column norms are the kept singular values.
        s_r, s_t = U_r.double().norm(dim=0), U_t.double().norm(dim=0)
        r = min(s_r.numel(), s_t.numel())
        chk.add(dtype, "sigma_rel", float(((s_r[:r] - s_t[:r]).abs() / s_t[:r]).max()))
        # Error of the factorisation: ||W - U V||_F, whitened: ||(W - U V) L||_F.
        def weigh(A):
            return A @ L if method == "whitened" else A

        Wd = weigh(W.double())
        e_r = float((Wd - weigh(U_r.double() @ V_r.double())).norm() / Wd.norm())
        e_t = float((Wd - weigh(U_t.double() @ V_t.double())).norm() / Wd.norm())
        chk.add(dtype, "err_rel", rel(e_r, e_t))


def time_methods(args):
    torch.set_num_threads(args.threads)
    plan = parse_plan(args.plan)
    H64 = {n: read_calib(args.work, n) for n in WIDTHS}
    H = {("float64", n): H64[n] for n in WIDTHS}
    H.update({("float32", n): H64[n].float() for n in WIDTHS})
    # Whitening factor for the whitened check (rcc's damping), float64.
    Lchk = {}
    for n in WIDTHS:
        Hd = H64[n].clone()
        Hd.diagonal().add_(DAMP * torch.mean(torch.diag(Hd)))
        Lchk[n] = torch.linalg.cholesky(Hd)
    status = 0
    with safe_open(os.path.join(args.model, "model.safetensors"), framework="pt") as st, \
            torch.inference_mode():
        def weight(b, kind):
            return st.get_tensor(f"vision_model.encoder.layers.{b}.{kind}.weight").float().contiguous()

        for method in METHODS:
            if method not in plan:
                continue
            chk = Check(method)
            seconds, layer_s, warm = {}, {}, {}
            for dtype in DTYPES[method]:
                torch.manual_seed(0)  # torch.svd_lowrank draws from the global generator
                W0 = weight(0, KINDS[0][0])
                hs = H[(dtype, W0.shape[1])]
                warm[dtype], _ = run_one(method, W0, hs, torch.diag(hs))
                total = 0.0
                for b in range(plan[method]):
                    for kind, short in KINDS:
                        lid = f"b{b}.{short}"
                        W = weight(b, kind)
                        m, n = W.shape
                        hs = H[(dtype, n)]
                        s, out = run_one(method, W, hs, torch.diag(hs))
                        total += s
                        layer_s.setdefault(dtype, {})[lid] = round(s, 6)
                        check_layer(chk, method, dtype, W, H64[n], Lchk[n], out,
                                    read_rcc(args.rcc_out, method, lid, m, n))
                seconds[dtype] = total
            failures = chk.failures()
            if failures:
                status = 1
            print(json.dumps({"impl": "torch", "method": method, "threads": args.threads,
                              "blocks": plan[method], "seconds": seconds, "warmup_s": warm,
                              "layer_s": layer_s, "check": "fail" if failures else "pass",
                              "check_summary": chk.summary(), "failures": failures,
                              "worst": {f"{d}:{k}": v for (d, k), v in chk.worst.items()}}),
                  flush=True)
            for f in failures:
                print(f"torch_compress: {method}: rcc differs from torch: {f}", file=sys.stderr)
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write the calibration statistics H")
    p.add_argument("--work", default="/tmp/rcc-bench/compress")
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("time", help="time the methods and check rcc's results")
    t.add_argument("--model", default="/tmp/rcc-bench/clip-vit-b32")
    t.add_argument("--work", default="/tmp/rcc-bench/compress")
    t.add_argument("--plan", required=True)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--rcc-out", required=True)
    args = ap.parse_args()
    return prepare(args) if args.cmd == "prepare" else time_methods(args)


if __name__ == "__main__":
    sys.exit(main())
