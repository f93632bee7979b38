#!/usr/bin/env bash
# Compression kernels, rcc-dist vs PyTorch, same machine, same run, same threads.
#
#   bench/compress/run.sh [--native-openblas] [--bin PATH]
#                         [--threads "1 2"] [--plan PLAN] [--model DIR] [--work DIR]
#
# Builds bench_compress (Release, CUDA off, in build-bench-compress/) unless --bin is given,
# writes the random ViT-B/32 CLIP (bench/forward/make_model.py) and the calibration
# statistics H (torch_compress.py prepare), then for each thread count T runs bench_compress
# (the C kernels, CPU backend with T OpenMP threads as in rcc-dist; the kernels give
# OpenBLAS T threads around their LAPACK and BLAS calls) and
# torch_compress.py (the same methods in PyTorch, torch.set_num_threads(T)), which checks
# rcc's results against its own. OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS
# are T for both. All timed runs happen under one hold of /tmp/rcc-bench.lock (one
# benchmark at a time on the machine; the rcc and torch runs see the same machine).
#
# PLAN (METHOD:BLOCKS,...) says on how many leading encoder blocks of the vision tower each
# method runs; a block has 6 linears (q, k, v, out 768x768, fc1 3072x768, fc2 768x3072),
# 12 blocks are the whole tower. The default times the cheap methods on all 72 linears and
# the others on blocks 0-1 (12 linears), to keep the run near 10 minutes; seconds in the
# table are totals over the layers named in its `layers` column, never extrapolated.
#
# ratio = torch seconds / rcc seconds (above 1: rcc is faster), against PyTorch in float32
# (what the methods' reference code runs in, and rcc's svd and svd_rand) and in float64
# (rcc's precision for the other methods).
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as the environment sets them;
# --native-openblas unsets both for the rcc runs only (the header names the kernel that ran).
# Exit status: 0, 1 when a result check against PyTorch failed (the table still prints),
# 2 on any other error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=""
threads="1 2"
plan="magnitude:12,wanda:12,sparsegpt:2,svd:2,svd_rand:2,whitened:2,alpha:2"
model=/tmp/rcc-bench/clip-vit-b32
work=/tmp/rcc-bench/compress
native=0
lock=/tmp/rcc-bench.lock

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --native-openblas) native=1 ;;
    --bin) bin=$2; shift ;;
    --threads) threads=$2; shift ;;
    --plan) plan=$2; shift ;;
    --model) model=$2; shift ;;
    --work) work=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$bin" ]; then
  build="$root/build-bench-compress"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    # A CPU benchmark: the CUDA backend is not needed and would only slow the build.
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRCC_ENABLE_CUDA=OFF >/dev/null
  fi
  cmake --build "$build" -j "$(nproc)" --target bench_compress >"$build/bench-compress-build.log" 2>&1 ||
    { cat "$build/bench-compress-build.log" >&2; echo "run.sh: build failed" >&2; exit 2; }
  bin="$build/bench/compress/bench_compress"
fi
[ -x "$bin" ] || { echo "run.sh: $bin is not an executable" >&2; exit 2; }
mkdir -p "$work"
python3 "$root/bench/forward/make_model.py" --out "$model" >&2
python3 "$here/torch_compress.py" prepare --work "$work" >&2

# The rcc side's environment: as given, or without the OpenBLAS pins.
rcc_env() {
  if [ "$native" = 1 ]; then
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"
  else
    env "$@"
  fi
}

mode=$([ "$native" = 1 ] && echo "native-openblas" || echo "default")
results="$work/results-$mode.jsonl"
: >"$results"
core=$(rcc_env OPENBLAS_VERBOSE=2 "$bin" --help 2>&1 | sed -n 's/^Core: *//p' | head -n 1)
pins="OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-unset}"
[ "$native" = 1 ] && pins="both unset for rcc (--native-openblas); environment has $pins"
cpu=$(lscpu | sed -n "s/^Model name: *//p" | head -n 1)
cpus=$(lscpu | sed -n "s/^CPU(s): *//p" | head -n 1)
torch_blas=$(python3 -c '
import re, torch
cfg = torch.__config__.show()
blas = re.search(r"BLAS_INFO=(\w+)", cfg)
lapack = re.search(r"LAPACK_INFO=(\w+)", cfg)
print("torch %s, BLAS=%s, LAPACK=%s" % (torch.__version__, blas.group(1) if blas else "?",
      lapack.group(1) if lapack else "?"))')

exec 9>>"$lock"
echo "run.sh: waiting for $lock ..." >&2
flock 9
# Other work on the machine skews both sides; the header shows how busy it was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
for t in $threads; do
  out="$work/out-t$t"
  rm -rf "$out"
  mkdir -p "$out"
  echo "run.sh: threads=$t rcc ..." >&2
  rcc_env OMP_NUM_THREADS="$t" MKL_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" \
    "$bin" --model "$model" --calib "$work" --out "$out" --plan "$plan" \
    --threads "$t" >>"$results" 2>"$work/rcc-t$t.log" ||
    { cat "$work/rcc-t$t.log" >&2; echo "run.sh: bench_compress failed" >&2; exit 2; }
  echo "run.sh: threads=$t torch ..." >&2
  rc=0
  OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
    python3 "$here/torch_compress.py" time --model "$model" --work "$work" \
    --plan "$plan" --threads "$t" --rcc-out "$out" >>"$results" 2>"$work/torch-t$t.log" || rc=$?
  case $rc in
    0) ;;
    1) status=1; cat "$work/torch-t$t.log" >&2 ;;
    *) cat "$work/torch-t$t.log" >&2; echo "run.sh: torch_compress.py failed (exit $rc)" >&2; exit 2 ;;
  esac
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
flock -u 9

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | machine: $cpu, $cpus CPUs (lscpu)" \
  "| load average before/after: $load_before / $load_after"
echo "# CLIP ViT-B/32 vision tower linears, random weights (make_model.py), H = X^T X of" \
  "4096 synthetic correlated tokens (torch_compress.py prepare); plan $plan"
echo "# rcc: OpenMP threads = T, OpenBLAS T threads inside the kernels, OpenBLAS core" \
  "$core ($pins); svd and svd_rand in float32, the rest in float64 | $torch_blas," \
  "torch.set_num_threads(T)"
echo "# settings: magnitude/wanda/sparsegpt 50 % unstructured (sparsegpt block 128, damp" \
  "0.01); svd energy 0.9 ratio 1.0 (exact sgesdd); svd_rand energy 0.9 ratio 0.1" \
  "(randomized); whitened energy 0.95 ratio 0.25 damp 0.01 (randomized); alpha closed" \
  "form lambda 0.001 on W pruned 50 %"
python3 - "$results" <<'EOF'
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault((r["method"], r["threads"]), {})[r["impl"]] = r


def seconds(v):
    return "n/a" if v is None else f"{v:.3f}"


def ratio(t, c):
    return "n/a" if t is None else f"{t / c:.2f}"


print("| method | threads | layers | rcc s | torch f32 s | ratio f32 | torch f64 s | ratio f64 "
      "| check (rcc vs torch, worst layer) |")
print("|---|---:|---|---:|---:|---:|---:|---:|---|")
order = ["magnitude", "wanda", "sparsegpt", "svd", "svd_rand", "whitened", "alpha"]
for (method, t) in sorted(by, key=lambda k: (k[1], order.index(k[0]))):
    c, p = by[(method, t)]["rcc"], by[(method, t)].get("torch")
    blocks = c["blocks"]
    layers = f"{6 * blocks} (all)" if blocks == 12 else \
        f"{6 * blocks} (block{'s 0-' + str(blocks - 1) if blocks > 1 else ' 0'})"
    f32 = p["seconds"].get("float32") if p else None
    f64 = p["seconds"].get("float64") if p else None
    check = f"{p['check']}: {p['check_summary']}" if p else "not run"
    print(f"| {method} | {t} | {layers} | {c['seconds']:.3f} | {seconds(f32)} | {ratio(f32, c['seconds'])} "
          f"| {seconds(f64)} | {ratio(f64, c['seconds'])} | {check} |")
EOF
echo "# raw JSON lines (per-layer seconds, warm-up, worst differences): $results" >&2
exit $status
