#!/usr/bin/env bash
# CLIP ViT-B/32 vision tower, training step (forward + backward) samples/s, rcc vs PyTorch,
# same machine, same run, same threads.
#
#   bench/train/run.sh [--bin PATH] [--threads "1 2"] [--batch 8] [--warmup 1] [--iters 3]
#                      [--model DIR]
#
# Builds bench_train (Release, in build-bench-train/) unless --bin is given, writes the
# random model with bench/forward/make_model.py (shared with bench/forward), then for each
# thread count T runs torch_train.py (every vision weight, bias and LayerNorm trains) and
# bench_train --train all (the same plus alpha) and --train alpha (alpha, biases and
# LayerNorms only: distillation's default). PyTorch gets torch.set_num_threads(T) and
# OMP_NUM_THREADS = MKL_NUM_THREADS = T; rcc gets OMP_NUM_THREADS = T, OPENBLAS_NUM_THREADS = 1
# and OMP_WAIT_POLICY = PASSIVE (as bench/forward/run.sh). Timed runs hold
# /tmp/rcc-bench.lock so that benchmarks take turns. Prints a header with the machine and
# load, then a Markdown table; ratio = rcc / torch (above 1: rcc is faster).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=""
threads="1 2"
batch=8
warmup=1
iters=3
model=/tmp/rcc-bench/clip-vit-b32

while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift ;;
    --threads) threads=$2; shift ;;
    --batch) batch=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --iters) iters=$2; shift ;;
    --model) model=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$bin" ]; then
  build="$root/build-bench-train"
  [ -f "$build/CMakeCache.txt" ] ||
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRCC_ENABLE_CUDA=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" --target bench_train >/dev/null
  bin="$build/bench/train/bench_train"
fi
python3 "$root/bench/forward/make_model.py" --out "$model" >&2

results=$(mktemp /tmp/rcc-bench-train.XXXXXX.jsonl)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for t in $threads; do
  echo "run.sh: threads=$t torch ..." >&2
  flock /tmp/rcc-bench.lock env OMP_NUM_THREADS="$t" MKL_NUM_THREADS="$t" \
    python3 "$here/torch_train.py" --model "$model" --threads "$t" --batch "$batch" \
    --warmup "$warmup" --iters "$iters" 2>/dev/null >>"$results"
  for mode in all alpha; do
    echo "run.sh: threads=$t rcc --train $mode ..." >&2
    flock /tmp/rcc-bench.lock env OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS=1 \
      OMP_WAIT_POLICY=PASSIVE "$bin" --model "$model" --threads "$t" --batch "$batch" \
      --warmup "$warmup" --iters "$iters" --train "$mode" >>"$results"
  done
done

cpu=$(lscpu | sed -n "s/^Model name: *//p" | head -n 1)
echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | machine: $cpu, $(nproc) CPUs" \
  "| load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# CLIP ViT-B/32 vision tower, random weights, float32, batch $batch, warm-up $warmup," \
  "median of $iters timed steps (zero grads + forward + backward)"
python3 - "$results" <<'PY'
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1])]
print("| threads | side | trains | params trained | step s | samples/s | ratio vs torch "
      "| activations MB | peak RSS MB |")
print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
for t in sorted({r["threads"] for r in rows}):
    torch = next(r for r in rows if r["threads"] == t and r["impl"] == "torch")
    for r in (r for r in rows if r["threads"] == t):
        what = "weights, biases, LN" + (" + alpha" if r["impl"] == "rcc" and r["train"] == "all"
                                        else "") if r["train"] == "all" else "alpha, biases, LN"
        print(f"| {t} | {r['impl']} | {what} | {r['trainable_params']} | {r['step_s']:.2f} "
              f"| {r['samples_per_s']:.3f} | {r['samples_per_s'] / torch['samples_per_s']:.2f} "
              f"| {r.get('activation_mb', 'n/a')} | {r['peak_rss_mb']} |")
PY
rm -f "$results"
