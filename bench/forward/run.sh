#!/usr/bin/env bash
# CLIP ViT-B/32 forward, rcc-dist vs PyTorch, same machine, same run, same threads.
#
#   bench/forward/run.sh [--native-openblas] [--rcc-env VAR=VALUE]... [--bin PATH]
#                        [--threads "1 2"] [--batch 32] [--warmup 1] [--iters 3]
#                        [--model DIR] [--work DIR]
#
# Builds bench_forward (Release, in build-bench/) unless --bin is given, writes the random
# model (make_model.py), then for each thread count runs torch_forward.py (which also
# writes its inputs and features) and bench_forward on the same inputs (which checks its
# features against them) with the same thread count T on both sides: PyTorch gets
# torch.set_num_threads(T) and OMP_NUM_THREADS = MKL_NUM_THREADS = T; rcc gets
# OMP_NUM_THREADS = T and --threads T (its one thread pool is OpenMP's; the CPU backend
# keeps OpenBLAS serial, so OPENBLAS_NUM_THREADS = 1 there, which spares OpenBLAS's idle
# pthreads). Prints a header naming the machine and the BLAS of each side,
# then a Markdown table; ratio = rcc / torch (above 1: rcc is faster).
#
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as the environment sets them (some hosts
# pin them because old OpenBLAS builds misdetect their CPU); --native-openblas unsets both
# for the rcc runs only, so OpenBLAS picks its kernel itself (the header says which).
# --rcc-env adds a variable to the rcc runs only (e.g. OMP_WAIT_POLICY=PASSIVE), to measure
# a runtime setting before the code adopts it; the header lists it.
# Exit status: 0, or 1 when a check against PyTorch failed (the table still prints).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=""
threads="1 2"
batch=32
warmup=1
iters=3
model=/tmp/rcc-bench/clip-vit-b32
work=/tmp/rcc-bench
native=0
rcc_extra=()

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --native-openblas) native=1 ;;
    --rcc-env)
      case "$2" in *=*) rcc_extra+=("$2") ;; *) echo "run.sh: --rcc-env wants VAR=VALUE" >&2; exit 2 ;; esac
      shift ;;
    --bin) bin=$2; shift ;;
    --threads) threads=$2; shift ;;
    --batch) batch=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --iters) iters=$2; shift ;;
    --model) model=$2; shift ;;
    --work) work=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$bin" ]; then
  build="$root/build-bench"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    # A CPU benchmark: the CUDA backend is not needed and would only slow the build.
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRCC_ENABLE_CUDA=OFF >/dev/null
  fi
  cmake --build "$build" -j "$(nproc)" --target bench_forward >/dev/null
  bin="$build/bench/forward/bench_forward"
fi
[ -x "$bin" ] || { echo "run.sh: $bin is not an executable" >&2; exit 2; }
mkdir -p "$work"
python3 "$here/make_model.py" --out "$model" >&2

# The rcc side's environment: as given, or without the OpenBLAS pins.
rcc_env() {
  if [ "$native" = 1 ]; then
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${rcc_extra[@]}" "$@"
  else
    env "${rcc_extra[@]}" "$@"
  fi
}

mode=$([ "$native" = 1 ] && echo "native-openblas" || echo "default")
[ ${#rcc_extra[@]} -gt 0 ] && mode="$mode-env"
results="$work/results-$mode.jsonl"
: >"$results"
core=$(rcc_env OPENBLAS_VERBOSE=2 "$bin" --help 2>&1 | sed -n 's/^Core: *//p' | head -n 1)
pins="OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-unset}"
[ "$native" = 1 ] && pins="both unset for rcc (--native-openblas); environment has $pins"
[ ${#rcc_extra[@]} -gt 0 ] && pins="$pins; rcc runs also with ${rcc_extra[*]}"
cpu=$(lscpu | sed -n "s/^Model name: *//p" | head -n 1)
cpus=$(lscpu | sed -n "s/^CPU(s): *//p" | head -n 1)
torch_blas=$(python3 -c '
import re, torch
cfg = torch.__config__.show()
blas = re.search(r"BLAS_INFO=(\w+)", cfg)
dnn = re.search(r"MKL-DNN (v[\d.]+)", cfg)
print("torch %s, BLAS=%s, oneDNN %s (%s)" % (torch.__version__, blas.group(1) if blas else "?",
      dnn.group(1) if dnn else "?", "on" if torch.backends.mkldnn.is_available() else "off"))')

# Other work on the machine skews both sides; the header shows how busy it was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
for t in $threads; do
  ref="$work/ref-t$t.bin"
  echo "run.sh: threads=$t torch ..." >&2
  OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t \
    python3 "$here/torch_forward.py" --model "$model" --threads "$t" --batch "$batch" \
    --warmup "$warmup" --iters "$iters" --ref "$ref" 2>"$work/torch-t$t.log" >>"$results" ||
    { cat "$work/torch-t$t.log" >&2; echo "run.sh: torch_forward.py failed" >&2; exit 2; }
  echo "run.sh: threads=$t rcc ..." >&2
  rc=0
  rcc_env OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS=1 \
    "$bin" --model "$model" --ref "$ref" --threads "$t" --warmup "$warmup" \
    --iters "$iters" >>"$results" || rc=$?
  case $rc in
    0) ;;
    1) status=1 ;;
    *) echo "run.sh: bench_forward failed (exit $rc)" >&2; exit 2 ;;
  esac
done

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | machine: $cpu, $cpus CPUs (lscpu)" \
  "| load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# CLIP ViT-B/32 shapes, random weights, float32, batch $batch," \
  "warm-up $warmup, median of $iters timed calls per tower"
echo "# rcc: OpenBLAS core $core ($pins) | $torch_blas"
python3 - "$results" <<'EOF'
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["threads"], {})[r["impl"]] = r


def num(v, fmt):
    return "n/a" if v is None else format(v, fmt)


def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


print("| threads | images/s rcc | images/s torch | ratio | texts/s rcc | texts/s torch | ratio "
      "| peak RSS rcc MB | peak RSS torch MB | max rel diff image / text | rcc kernel |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
for t in sorted(by):
    c, p = by[t]["rcc"], by[t]["torch"]
    diff = (f"{num(c['image_max_rel_diff'], '.1e')} / {num(c['text_max_rel_diff'], '.1e')}"
            f" ({c['check']})")
    print(f"| {t} | {num(c['images_per_s'], '.2f')} | {p['images_per_s']:.2f} "
          f"| {ratio(c['images_per_s'], p['images_per_s'])} "
          f"| {num(c['texts_per_s'], '.2f')} | {p['texts_per_s']:.2f} "
          f"| {ratio(c['texts_per_s'], p['texts_per_s'])} "
          f"| {c['peak_rss_mb']:.0f} | {p['peak_rss_mb']:.0f} | {diff} | {c['openblas_core']} |")
EOF
echo "# raw JSON lines: $results" >&2
exit $status
