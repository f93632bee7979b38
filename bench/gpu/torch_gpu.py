#!/usr/bin/env python3
"""PyTorch anchors of bench/gpu: float32 matmul TFLOP/s and float64 SVD, same shapes.

    torch_gpu.py gemm [--device cuda] [--shapes LIST] [--warmup 2] [--iters 5]
    torch_gpu.py svd  [--device cuda] --out DIR [--shapes LIST] [--warmup 2] [--iters 3]
    torch_gpu.py info [--device cuda]

gemm: Y (M,N) = X (M,K) W^T as torch.nn.functional.linear computes it (torch.bmm of
X and W^T for BATCH@MxNxK), float32 with TF32 off (allow_tf32 = False, matmul precision
"highest"), so that both sides do the same arithmetic. A sample is R back-to-back calls
timed with CUDA events (R chosen so that a sample lasts about 20 ms, as bench_gpu does);
the median of --iters samples after --warmup untimed calls, one JSON line per shape.

svd: for each MxN a float64 matrix, standard normal from a fixed seed, and
torch.linalg.svd(A, full_matrices=False) on the device: the median of --iters timed calls
(synchronized) after --warmup untimed ones. Writes DIR/svd_MxN.bin for bench_gpu svd
(little-endian): char magic[8] = "RCCSVD1\\0", int32 m, n, float64 A[m*n] row-major,
float64 S[min(m,n)] (torch's singular values, descending).

info: one JSON line naming torch, its CUDA and the device.
--device cpu runs all of it on the CPU (the smoke test of bench/gpu/run.sh --smoke).
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time

SVD_MAGIC = b"RCCSVD1\0"
SAMPLE_TARGET_S = 0.02
DEFAULT_GEMM = "12800x768x768,12800x3072x768,12800x768x3072,8192x8192x8192,3072@50x50x64"
DEFAULT_SVD = "768x768,3072x768,768x3072,512x512,2048x512,512x2048"


def parse_shapes(text, gemm):
    shapes = []
    for item in text.split(","):
        batch, dims = (item.split("@") + [None])[:2] if "@" in item else ("1", item)
        nums = [int(v) for v in dims.split("x")]
        if len(nums) != (3 if gemm else 2) or min(nums) < 1 or int(batch) < 1:
            raise SystemExit(f"torch_gpu.py: bad shape '{item}'")
        shapes.append((int(batch), *nums))
    return shapes


class Timer:
    """Seconds between two points of the device's stream (events on CUDA)."""

    def __init__(self, torch, device):
        self.torch, self.cuda = torch, device.startswith("cuda")

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def time(self, fn, reps):
        if self.cuda:
            start = self.torch.cuda.Event(enable_timing=True)
            end = self.torch.cuda.Event(enable_timing=True)
            self.sync()
            start.record()
            for _ in range(reps):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) * 1e-3
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return time.perf_counter() - t0


def setup(device):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("skipped: no GPU", file=sys.stderr)
        sys.exit(77)
    return torch


def cmd_gemm(args):
    torch = setup(args.device)
    timer = Timer(torch, args.device)
    g = torch.Generator(device=args.device).manual_seed(0)
    for batch, m, n, k in parse_shapes(args.shapes or DEFAULT_GEMM, True):
        x = torch.randn(batch, m, k, generator=g, device=args.device)
        w = torch.randn(batch, n, k, generator=g, device=args.device)
        if batch == 1:
            x2, w2 = x[0], w[0]
            fn = lambda: torch.nn.functional.linear(x2, w2)  # noqa: E731
        else:
            wt = w.transpose(1, 2)
            fn = lambda: torch.bmm(x, wt)  # noqa: E731
        for _ in range(args.warmup):
            fn()
        one = timer.time(fn, 1)
        reps = 1 if one >= SAMPLE_TARGET_S else min(10000, -(-SAMPLE_TARGET_S // max(one, 1e-7)))
        reps = int(reps)
        samples = [timer.time(fn, reps) / reps for _ in range(args.iters)]
        t = statistics.median(samples)
        print(json.dumps({"part": "gemm", "impl": "torch", "device": args.device,
                          "batch": batch, "m": m, "n": n, "k": k, "seconds": t,
                          "tflops": 2.0 * batch * m * n * k / t * 1e-12,
                          "calls_per_sample": reps, "samples": samples}), flush=True)
        del x, w


def cmd_svd(args):
    torch = setup(args.device)
    timer = Timer(torch, args.device)
    os.makedirs(args.out, exist_ok=True)
    for _, m, n in parse_shapes(args.shapes or DEFAULT_SVD, False):
        g = torch.Generator().manual_seed(m * 100003 + n)
        a_host = torch.randn(m, n, generator=g, dtype=torch.float64)
        a = a_host.to(args.device)
        calls = max(args.warmup, 1) + args.iters
        times = []
        for c in range(calls):
            # A fresh copy each call, as bench_gpu uploads one (its solver destroys A).
            b = a.clone()
            timer.sync()
            t = timer.time(lambda: torch.linalg.svd(b, full_matrices=False), 1)
            if c >= calls - args.iters:
                times.append(t)
        s = torch.linalg.svd(a, full_matrices=False).S.cpu()
        path = os.path.join(args.out, f"svd_{m}x{n}.bin")
        with open(path + ".tmp", "wb") as f:
            f.write(SVD_MAGIC)
            f.write(struct.pack("<2i", m, n))
            f.write(a_host.contiguous().numpy().astype("<f8").tobytes())
            f.write(s.numpy().astype("<f8").tobytes())
        os.replace(path + ".tmp", path)
        print(json.dumps({"part": "svd", "impl": "torch", "device": args.device, "batch": 1,
                          "m": m, "n": n, "seconds": statistics.median(times),
                          "samples": times}), flush=True)


def cmd_info(args):
    torch = setup(args.device)
    info = {"part": "info", "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "device": args.device, "device_name": "cpu", "tf32": False}
    if args.device.startswith("cuda"):
        p = torch.cuda.get_device_properties(torch.device(args.device))
        info.update(device_name=p.name, multiprocessors=p.multi_processor_count,
                    memory_gib=p.total_memory / 2**30,
                    capability=f"{p.major}.{p.minor}")
    print(json.dumps(info))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("gemm", "svd", "info"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shapes", help="comma-separated: MxNxK or BATCH@MxNxK (gemm), MxN (svd)")
    ap.add_argument("--out", help="svd: where svd_MxN.bin go")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int)
    args = ap.parse_args()
    if args.iters is None:
        args.iters = 3 if args.command == "svd" else 5
    if args.iters < 1 or args.warmup < 0:
        ap.error("--iters must be >= 1 and --warmup >= 0")
    if args.command == "svd" and not args.out:
        ap.error("svd wants --out DIR")
    {"gemm": cmd_gemm, "svd": cmd_svd, "info": cmd_info}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
