#!/usr/bin/env bash
# CLIP ViT-B/32 forward, rcc-dist vs PyTorch, same machine, same run, same threads.
#
#   bench/forward/run.sh [--packed] [--native-openblas] [--rcc-env VAR=VALUE]... [--bin PATH]
#                        [--rcc-dist PATH] [--threads "1 2"] [--batch 32] [--warmup 1]
#                        [--iters 3] [--model DIR] [--work DIR]
#
# Builds bench_forward and rcc-dist (Release, in build-bench/) unless --bin is given, writes
# the random model (make_model.py), then for each thread count runs torch_forward.py (which
# also writes its inputs and features) and bench_forward on the same inputs (which checks
# its features against them) with the same thread count T on both sides: PyTorch gets
# torch.set_num_threads(T) and OMP_NUM_THREADS = MKL_NUM_THREADS = T; rcc gets
# OMP_NUM_THREADS = T and --threads T (its one thread pool is OpenMP's; the CPU backend
# keeps OpenBLAS serial, so OPENBLAS_NUM_THREADS = 1 there, which spares OpenBLAS's idle
# pthreads) and, as rcc-dist gives itself at start-up (runner/main.c), OMP_WAIT_POLICY =
# PASSIVE unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set (libgomp's own default is
# measured with --rcc-env GOMP_SPINCOUNT=300000, which is what it spins when no policy is
# set). Prints a header naming the machine and the BLAS of each side, then a
# Markdown table; ratio = rcc / torch (above 1: rcc is faster).
#
# --packed: compressed models instead. Each job in bench/forward/jobs/ is run with rcc-dist
# (model: and output: rewritten to --model and WORK/runs/NAME; skipped when its
# packed.safetensors is newer than the job and the model), then per thread count PyTorch
# and rcc time the dense model (rcc checked against PyTorch) and rcc times each
# packed.safetensors (checked against rcc's features of the job's dense export
# compressed/, which is what the packed file must compute). The table compares each row
# with rcc on the dense model at the same threads.
#
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as the environment sets them (some hosts
# pin them because old OpenBLAS builds misdetect their CPU); --native-openblas unsets both
# for the rcc runs only, so OpenBLAS picks its kernel itself (the header says which).
# --rcc-env adds a variable to the rcc runs only (e.g. GOMP_SPINCOUNT=300000), to measure
# a runtime setting before the code adopts it; the header lists it.
# On a shared machine run it as `flock /tmp/rcc-bench.lock bench/forward/run.sh ...`, so
# that benchmarks take turns; the header shows the load average before and after.
# Exit status: 0, or 1 when a features check failed (the table still prints).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=""
rcc_dist=""
threads="1 2"
batch=32
warmup=1
iters=3
model=/tmp/rcc-bench/clip-vit-b32
work=/tmp/rcc-bench
native=0
packed=0
rcc_extra=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --packed) packed=1 ;;
    --native-openblas) native=1 ;;
    --rcc-env)
      case "$2" in *=*) rcc_extra+=("$2") ;; *) echo "run.sh: --rcc-env wants VAR=VALUE" >&2; exit 2 ;; esac
      shift ;;
    --bin) bin=$2; shift ;;
    --rcc-dist) rcc_dist=$2; shift ;;
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

build="$root/build-bench"
if [ -z "$bin" ]; then
  if [ ! -f "$build/CMakeCache.txt" ]; then
    # A CPU benchmark: the CUDA backend is not needed and would only slow the build.
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRCC_ENABLE_CUDA=OFF >/dev/null
  fi
  targets=(bench_forward)
  [ "$packed" = 1 ] && [ -z "$rcc_dist" ] && targets+=(rcc-dist)
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" >/dev/null
  bin="$build/bench/forward/bench_forward"
fi
[ -z "$rcc_dist" ] && rcc_dist="$build/rcc-dist"
[ -x "$bin" ] || { echo "run.sh: $bin is not an executable" >&2; exit 2; }
if [ "$packed" = 1 ] && [ ! -x "$rcc_dist" ]; then
  echo "run.sh: $rcc_dist is not an executable (give --rcc-dist PATH)" >&2
  exit 2
fi
mkdir -p "$work"
python3 "$here/make_model.py" --out "$model" >&2

# The compressed models of --packed: NAME -> WORK/runs/NAME (packed.safetensors,
# compressed/, report.json).
jobs=()
if [ "$packed" = 1 ]; then
  mkdir -p "$work/runs"
  for job in "$here"/jobs/*.yaml; do
    name=$(basename "$job" .yaml)
    out="$work/runs/$name"
    jobs+=("$name")
    if [ -f "$out/packed.safetensors" ] && [ "$out/packed.safetensors" -nt "$job" ] &&
       [ "$out/packed.safetensors" -nt "$model/model.safetensors" ]; then
      continue
    fi
    sed -e "s|^model: .*|model: $model|" -e "s|^output: .*|output: $out|" "$job" \
      >"$work/runs/$name.yaml"
    echo "run.sh: compressing with $work/runs/$name.yaml (log: $out/log.txt) ..." >&2
    "$rcc_dist" "$work/runs/$name.yaml" >"$work/runs/$name.log" 2>&1 ||
      { tail -n 20 "$work/runs/$name.log" >&2; echo "run.sh: rcc-dist failed on $name" >&2; exit 2; }
  done
fi

# The rcc side's environment: as given, or without the OpenBLAS pins; the OpenMP wait
# policy rcc-dist would run with (bench_forward calls the library, not rcc-dist's main).
policy=(OMP_WAIT_POLICY=PASSIVE)
for v in "${rcc_extra[@]}"; do
  case "$v" in OMP_WAIT_POLICY=*|GOMP_SPINCOUNT=*) policy=() ;; esac
done
[ -n "${OMP_WAIT_POLICY+x}${GOMP_SPINCOUNT+x}" ] && policy=()
rcc_env() {
  if [ "$native" = 1 ]; then
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${policy[@]}" "${rcc_extra[@]}" "$@"
  else
    env "${policy[@]}" "${rcc_extra[@]}" "$@"
  fi
}

mode=$([ "$native" = 1 ] && echo "native-openblas" || echo "default")
[ ${#rcc_extra[@]} -gt 0 ] && mode="$mode-env"
[ "$packed" = 1 ] && mode="$mode-packed"
results="$work/results-$mode.jsonl"
: >"$results"
core=$(rcc_env OPENBLAS_VERBOSE=2 "$bin" --help 2>&1 | sed -n 's/^Core: *//p' | head -n 1)
pins="OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-unset}"
[ "$native" = 1 ] && pins="both unset for rcc (--native-openblas); environment has $pins"
[ ${#rcc_extra[@]} -gt 0 ] && pins="$pins; rcc runs also with ${rcc_extra[*]}"
waiting="OMP_WAIT_POLICY=${OMP_WAIT_POLICY-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT-unset} in the environment, no policy added"
[ ${#policy[@]} -gt 0 ] && waiting="${policy[*]} (as rcc-dist sets it)"
cpu=$(lscpu | sed -n "s/^Model name: *//p" | head -n 1)
cpus=$(lscpu | sed -n "s/^CPU(s): *//p" | head -n 1)
torch_blas=$(python3 -c '
import re, torch
cfg = torch.__config__.show()
blas = re.search(r"BLAS_INFO=(\w+)", cfg)
dnn = re.search(r"MKL-DNN (v[\d.]+)", cfg)
print("torch %s, BLAS=%s, oneDNN %s (%s)" % (torch.__version__, blas.group(1) if blas else "?",
      dnn.group(1) if dnn else "?", "on" if torch.backends.mkldnn.is_available() else "off"))')

# One bench_forward run appended to the results; a failed check sets status 1.
status=0
rcc_run() {
  local t=$1
  shift
  local rc=0
  rcc_env OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS=1 \
    "$bin" --threads "$t" --warmup "$warmup" --iters "$iters" "$@" >>"$results" || rc=$?
  case $rc in
    0) ;;
    1) status=1 ;;
    *) echo "run.sh: bench_forward failed (exit $rc)" >&2; exit 2 ;;
  esac
}

# Other work on the machine skews both sides; the header shows how busy it was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for t in $threads; do
  ref="$work/ref-t$t.bin"
  echo "run.sh: threads=$t torch ..." >&2
  OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t \
    python3 "$here/torch_forward.py" --model "$model" --threads "$t" --batch "$batch" \
    --warmup "$warmup" --iters "$iters" --ref "$ref" 2>"$work/torch-t$t.log" >>"$results" ||
    { cat "$work/torch-t$t.log" >&2; echo "run.sh: torch_forward.py failed" >&2; exit 2; }
  echo "run.sh: threads=$t rcc ..." >&2
  rcc_run "$t" --model "$model" --ref "$ref"
  for name in "${jobs[@]}"; do
    echo "run.sh: threads=$t rcc $name ..." >&2
    rcc_run "$t" --model "$work/runs/$name/packed.safetensors" --ref "$ref" \
      --check-model "$work/runs/$name/compressed"
  done
done

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | machine: $cpu, $cpus CPUs (lscpu)" \
  "| load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# CLIP ViT-B/32 shapes, random weights, float32, batch $batch," \
  "warm-up $warmup, median of $iters timed calls per tower"
echo "# rcc: OpenBLAS core $core ($pins), $waiting | $torch_blas"
if [ "$packed" = 0 ]; then
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
else
  python3 - "$results" "$model" "$work/runs" "${jobs[@]}" <<'EOF'
import json, os, sys

results, model, runs, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows = [json.loads(line) for line in open(results)]
dense_bytes = os.path.getsize(os.path.join(model, "model.safetensors"))
# What each packed file is: the job's name, its compression (1 - params stored / params of
# the dense model) from report.json, and the file's size.
about = {}
for name in names:
    packed = os.path.join(runs, name, "packed.safetensors")
    with open(os.path.join(runs, name, "report.json")) as f:
        report = json.load(f)
    about[packed] = (name, report["final"]["compression"], os.path.getsize(packed))


def num(v, fmt):
    return "n/a" if v is None else format(v, fmt)


def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


print("| threads | side | model | compression | file MB | images/s | x dense rcc "
      "| texts/s | x dense rcc | peak RSS MB | max rel diff image / text (against) |")
print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
for t in sorted({r["threads"] for r in rows}):
    at = [r for r in rows if r["threads"] == t]
    dense = next(r for r in at if r["impl"] == "rcc" and r["checked_against"] == "torch")
    for r in sorted(at, key=lambda r: (r["impl"] == "rcc", r.get("checked_against") != "torch")):
        if r["impl"] == "torch":
            name, comp, size, check = "dense", 0.0, dense_bytes, "-"
        else:
            name, comp, size = about.get(r["model"], ("dense", 0.0, dense_bytes))
            against = ("PyTorch" if r["checked_against"] == "torch"
                       else os.path.basename(os.path.dirname(r["checked_against"].rstrip("/")))
                       + "/compressed")
            check = (f"{num(r['image_max_rel_diff'], '.1e')} / "
                     f"{num(r['text_max_rel_diff'], '.1e')} ({r['check']}, {against})")
        print(f"| {t} | {r['impl']} | {name} | {comp:.3f} | {size / 1e6:.0f} "
              f"| {num(r['images_per_s'], '.2f')} "
              f"| {ratio(r['images_per_s'], dense['images_per_s'])} "
              f"| {num(r['texts_per_s'], '.2f')} "
              f"| {ratio(r['texts_per_s'], dense['texts_per_s'])} "
              f"| {r['peak_rss_mb']:.0f} | {check} |")
EOF
fi
echo "# raw JSON lines: $results" >&2
exit $status
