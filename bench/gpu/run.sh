#!/usr/bin/env bash
# Issue 7 on one GPU: the CUDA backend against PyTorch on the same GPU, same run.
#
#   bench/gpu/run.sh [--build DIR] [--out DIR] [--work DIR] [--budget S] [--smoke]
#
# (a) GEMM TFLOP/s (bench_gpu gemm: rcc_gemm / rcc_gemm_strided_batched, cuBLAS float32,
#     no TF32) at the ViT-B/32 linears for 256 images x 50 tokens (12800 x 768 x 768,
#     12800 x 3072 x 768, 12800 x 768 x 3072), 8192^3 and one attention batch, against
#     torch's float32 matmul (TF32 off) at the same shapes. The anchor "measured peak" is the
#     best FP32 TFLOP/s either side reached at any shape in this run.
# (b) float64 SVD of every ViT-B/32 layer shape (vision 768x768, 3072x768, 768x3072; text
#     512x512, 2048x512, 512x2048): rcc_backend_svd_f64 against torch.linalg.svd
#     (full_matrices=False) of the same matrices, singular values checked against torch's.
# (c) the cascade of jobs/cascade.yaml (SparseGPT 50% -> whitened nullu -> closed-form
#     alphaedit, both towers) on the ViT-B/32-shaped model: wall time of rcc-dist and the
#     per-stage seconds of its report.json, against the 30 s target.
# (d) forward images/s and texts/s at batch 256: bench_forward --backend cuda against
#     torch_forward.py --device cuda (float32, TF32 off), features checked (1e-3 per row).
#
# Uses the programs of --build DIR (bench/gpu/bench_gpu, bench/forward/bench_forward,
# rcc-dist): built there first (Release, CUDA for sm_90) when DIR has a CMakeCache.txt or
# lacks them; a directory of prebuilt programs (tools/gpu/bundle.sh) is used as it is.
# The model (bench/forward/make_model.py, ~600 MB) and the images go to --work
# (default /tmp/rcc-gpu-bench). Prints a header naming the machine, then one Markdown
# table (ratio: above 1, rcc is better), and writes both to OUT/gpu_bench.md; each part's
# JSON lines and logs go to OUT too (default $OUT, else WORK/out). Each part has a time
# limit, cut so that all of them end within --budget seconds of the start (default 480,
# which leaves room in a 10-minute device command): one that hangs, or starts too late,
# gets a FAIL row and the table still prints.
#
# --smoke: the plumbing on a machine without a GPU: everything on the CPU backend and torch
# on the CPU, at small sizes: the forward at batch 4, the cascade on the small embedded
# model models/clip-fmnist.
# Exit status: 0; 1 when a check failed or a part failed; 77 without a GPU (and no --smoke).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build="$root/build-gpu-bench"
work=/tmp/rcc-gpu-bench
out=${OUT:-}
smoke=0
budget=480

usage() { sed -n '2,/^set -uo/p' "$0" | sed -n 's/^# \{0,1\}//p'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift ;;
    --out) out=$2; shift ;;
    --work) work=$2; shift ;;
    --budget) budget=$2; shift ;;
    --smoke) smoke=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ -n "$out" ] || out="$work/out"
mkdir -p "$work" "$out" || exit 2
t_all=$(date +%s.%N)
deadline=$(($(date +%s) + budget))

if [ "$smoke" = 1 ]; then
  backend=cpu device=cpu
  gemm_shapes="256x64x64,256x256x64,256x64x256,512x512x512,24@50x50x64"
  svd_shapes="96x96,384x96,96x384,64x64,256x64,64x256"
  model="$root/models/clip-fmnist"          # the cascade's; the forward's is make_model's
  batch=4 per_class=8 calib=16 valid=32 vbatch=16
else
  backend=cuda device=cuda
  gemm_shapes="12800x768x768,12800x3072x768,12800x768x3072,8192x8192x8192,3072@50x50x64"
  svd_shapes="768x768,3072x768,768x3072,512x512,2048x512,512x2048"
  model="$work/clip-vit-b32"
  batch=256 per_class=64 calib=128 valid=256 vbatch=64
  if ! nvidia-smi -L >/dev/null 2>&1; then
    echo "skipped: no GPU (bench/gpu/run.sh --smoke checks the plumbing on the CPU)" >&2
    exit 77
  fi
fi

# Seconds since $1 (a date +%s.%N), one decimal.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
elapsed=()
note() { echo "run.sh: $*" >&2; }

# ---- programs ----------------------------------------------------------------------------
t0=$(date +%s.%N)
bench_gpu="$build/bench/gpu/bench_gpu"
bench_forward="$build/bench/forward/bench_forward"
rcc_dist="$build/rcc-dist"
if [ -f "$build/CMakeCache.txt" ] || [ ! -x "$bench_gpu" ] || [ ! -x "$bench_forward" ] ||
   [ ! -x "$rcc_dist" ]; then
  if [ ! -f "$build/CMakeCache.txt" ]; then
    arch=()
    [ "$smoke" = 0 ] && arch=(-DCMAKE_CUDA_ARCHITECTURES=90)
    note "configuring $build (Release, CUDA on) ..."
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRCC_ENABLE_CUDA=ON "${arch[@]}" \
      >"$out/build.log" 2>&1 ||
      { tail -n 20 "$out/build.log" >&2
        note "configure failed; a GPU machine lacks the project's libraries: build here with" \
          "tools/gpu/bundle.sh and run tools/gpu/on_device.sh bench there"; exit 2; }
  fi
  note "building bench_gpu bench_forward rcc-dist in $build ..."
  cmake --build "$build" -j "$(nproc)" --target bench_gpu bench_forward rcc-dist \
    >>"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log" >&2; note "build failed"; exit 2; }
fi
if [ "$smoke" = 0 ] && ! grep -qs 'define RCC_HAVE_CUDA 1' "$build/generated/rcc_version.h" &&
   [ -f "$build/CMakeCache.txt" ]; then
  note "$build has no CUDA (is nvcc found?)"; exit 2
fi
elapsed+=("build $(since "$t0") s")

# ---- inputs ----------------------------------------------------------------------------
t0=$(date +%s.%N)
python3 "$root/bench/forward/make_model.py" --out "$work/clip-vit-b32" >&2 ||
  { note "make_model.py failed"; exit 2; }
python3 "$here/make_images.py" --out "$work/images" --per-class "$per_class" >&2 ||
  { note "make_images.py failed"; exit 2; }
elapsed+=("inputs $(since "$t0") s")

status=0
# Runs one part's command with a time limit, appending its JSON lines to OUT/NAME.json.
# Its exit status decides the part's state: 0 ok, 1 check failed, 77 skipped, else failed.
declare -A state
part() {
  local name=$1 limit=$2
  shift 2
  local rc=0 left=$((deadline - $(date +%s) - 15))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 1 ]; then
    [ -n "${state[$name]-}" ] || state[$name]="not run: --budget spent"
    status=1
    note "$name: not run: --budget spent"
    return 0
  fi
  timeout "$limit" "$@" >>"$out/$name.json" 2>>"$out/$name.log" || rc=$?
  local why
  case $rc in
    0) return 0 ;;
    1) why="check failed" ;;
    77) why="skipped: no GPU" ;;
    124) why="timed out after $limit s" ;;
    *) why="failed (exit $rc)" ;;
  esac
  status=1
  # A part's first failure is the one the table names.
  [ -n "${state[$name]-}" ] || state[$name]=$why
  note "$name: $why; last lines of $out/$name.log:"
  tail -n 8 "$out/$name.log" >&2
  return 0
}
for f in gemm svd forward cascade; do : >"$out/$f.json"; : >"$out/$f.log"; done

# ---- (a) GEMM --------------------------------------------------------------------------
t0=$(date +%s.%N)
note "(a) gemm: torch, then rcc ..."
part gemm 60 python3 "$here/torch_gpu.py" gemm --device "$device" --shapes "$gemm_shapes"
part gemm 60 "$bench_gpu" gemm --backend "$backend" --shapes "$gemm_shapes"
elapsed+=("gemm $(since "$t0") s")

# ---- (b) SVD ---------------------------------------------------------------------------
t0=$(date +%s.%N)
note "(b) svd: torch (writes the matrices), then rcc ..."
mkdir -p "$work/svd"
part svd 90 python3 "$here/torch_gpu.py" svd --device "$device" --shapes "$svd_shapes" \
  --out "$work/svd"
part svd 90 "$bench_gpu" svd --backend "$backend" --shapes "$svd_shapes" --inputs "$work/svd"
elapsed+=("svd $(since "$t0") s")

# ---- (c) cascade -----------------------------------------------------------------------
t0=$(date +%s.%N)
run_dir="$work/runs/cascade"
rm -rf "$run_dir"
mkdir -p "$work/runs"
sed -e "s|^model: .*|model: $model|" -e "s|^output: .*|output: $run_dir|" \
  -e "s|^  calibration: .*|  calibration: folder:$work/images|" \
  -e "s|^  validation: .*|  validation: folder:$work/images|" \
  -e "s|^  calibration_samples: .*|  calibration_samples: $calib|" \
  -e "s|^  validation_samples: .*|  validation_samples: $valid|" \
  -e "s|^  batch_size: .*|  batch_size: $vbatch|" \
  "$here/jobs/cascade.yaml" >"$work/runs/cascade.yaml"
note "(c) cascade: rcc-dist $work/runs/cascade.yaml --backend $backend ..."
c0=$(date +%s.%N)
part cascade 240 env OMP_WAIT_POLICY=PASSIVE "$rcc_dist" "$work/runs/cascade.yaml" \
  --backend "$backend"
wall=$(since "$c0")
python3 - "$run_dir/report.json" "$wall" "$backend" >>"$out/cascade.json" <<'EOF'
import json, os, sys

path, wall, backend = sys.argv[1], float(sys.argv[2]), sys.argv[3]
row = {"part": "cascade", "impl": "rcc", "wall_s": wall, "backend": backend}
if os.path.exists(path):
    r = json.load(open(path))
    row.update(outcome=r.get("outcome"), report_backend=r.get("backend"),
               compression=r.get("final", {}).get("compression"),
               report_seconds=r.get("final", {}).get("seconds"),
               stages=[{"name": s["name"], "method": s["method"], "seconds": s.get("seconds")}
                       for s in r.get("stages", [])],
               phases_seconds=r.get("phases_seconds"))
print(json.dumps(row))
EOF
elapsed+=("cascade $(since "$t0") s")

# ---- (d) forward -----------------------------------------------------------------------
t0=$(date +%s.%N)
note "(d) forward at batch $batch: torch (writes inputs and features), then rcc ..."
threads=()
[ "$smoke" = 1 ] && threads=(--threads "$(nproc)")
part forward 120 python3 "$root/bench/forward/torch_forward.py" --model "$work/clip-vit-b32" \
  --device "$device" --batch "$batch" --warmup 2 --iters 5 --ref "$work/forward-ref.bin" \
  "${threads[@]}"
part forward 120 env OMP_WAIT_POLICY=PASSIVE "$bench_forward" --backend "$backend" \
  --model "$work/clip-vit-b32" --ref "$work/forward-ref.bin" --warmup 2 --iters 5 "${threads[@]}"
elapsed+=("forward $(since "$t0") s")

# ---- header and table ------------------------------------------------------------------
if [ "$smoke" = 1 ]; then
  gpu="none (--smoke: CPU backend, torch on the CPU)"
else
  gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 |
    head -n 1)
fi
nvcc_v=$( (nvcc --version 2>/dev/null || /usr/local/cuda/bin/nvcc --version 2>/dev/null) |
  sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -n 1)
info=$(python3 "$here/torch_gpu.py" info --device "$device" 2>/dev/null)
torch_v=$(python3 -c 'import json, sys; d = json.loads(sys.argv[1])
print("torch %s (CUDA %s)" % (d["torch"], d["torch_cuda"]))' "$info" 2>/dev/null || echo "torch ?")
cpu=$(lscpu | sed -n "s/^Model name: *//p" | head -n 1)
smoke_note=""
[ "$smoke" = 1 ] && smoke_note=" (SMOKE: CPU only, small sizes; no GPU figure)"
{
  echo "# bench/gpu $(date -u '+%Y-%m-%d %H:%M UTC')$smoke_note"
  echo "# GPU: $gpu | CUDA: nvcc ${nvcc_v:-?}, $torch_v"
  echo "# CPU: $cpu, $(nproc) CPUs | elapsed: ${elapsed[*]}, total $(since "$t_all") s"
  python3 - "$out" "$smoke" "${state[gemm]-}" "${state[svd]-}" "${state[forward]-}" \
    "${state[cascade]-}" <<'EOF'
import json, os, sys

out, smoke = sys.argv[1], sys.argv[2] == "1"
states = dict(zip(("gemm", "svd", "forward", "cascade"), sys.argv[3:7]))


def rows(name):
    path = os.path.join(out, name + ".json")
    res = []
    for line in open(path) if os.path.exists(path) else []:
        line = line.strip()
        if line.startswith("{"):
            res.append(json.loads(line))
    return res


def shape(r):
    s = f"{r['m']}x{r['n']}" + (f"x{r['k']}" if "k" in r else "")
    return s if r.get("batch", 1) == 1 else f"{r['batch']} x {s}"


def fmt(v, f):
    return "n/a" if v is None else format(v, f)


def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


table = []
gemm = rows("gemm")
peak = max((r["tflops"] for r in gemm), default=None)
by = {}
for r in gemm:
    by.setdefault(shape(r), {})[r["impl"]] = r
for s, d in by.items():
    c, t = d.get("rcc"), d.get("torch")
    rc = c["tflops"] if c else None
    check = f"{c['check']} (rel err {c['rel_err']:.1e} vs float64 sums)" if c else "-"
    table.append(("(a) gemm TFLOP/s", s, fmt(rc, ".2f"), fmt(t and t["tflops"], ".2f"),
                  "torch fp32", ratio(rc, t and t["tflops"]),
                  f"{fmt(rc and peak and 100 * rc / peak, '.0f')}% of measured peak", check))
if peak is not None:
    best = max(gemm, key=lambda r: r["tflops"])
    table.append(("(a) measured peak", shape(best), "-", f"{peak:.2f}", f"best, {best['impl']}",
                  "-", "H100/H200 SXM datasheet FP32: 67 TFLOP/s (a note, not the anchor)", "-"))
by = {}
for r in rows("svd"):
    by.setdefault(shape(r), {})[r["impl"]] = r
for s, d in by.items():
    c, t = d.get("rcc"), d.get("torch")
    cs, ts = c and c["seconds"], t and t["seconds"]
    check = (f"{c['check']} (S {c['s_max_rel_diff']:.1e}, recon {c['recon_rel_err']:.1e})"
             if c else "-")
    table.append(("(b) svd f64 ms", s, fmt(cs and 1e3 * cs, ".1f"), fmt(ts and 1e3 * ts, ".1f"),
                  "torch.linalg.svd", ratio(ts, cs), "ratio = torch time / rcc time", check))
fw = {r["impl"]: r for r in rows("forward")}
c, t = fw.get("rcc"), fw.get("torch")
for what, key, dkey in (("images/s", "images_per_s", "image_max_rel_diff"),
                        ("texts/s", "texts_per_s", "text_max_rel_diff")):
    cv, tv = c and c.get(key), t and t.get(key)
    check = f"{c['check']} (max row rel diff {fmt(c.get(dkey), '.1e')})" if c else "-"
    table.append((f"(d) forward {what}", f"batch {(c or t or {}).get('batch', '?')}",
                  fmt(cv, ".1f"), fmt(tv, ".1f"), "torch fp32", ratio(cv, tv), "", check))
for r in rows("cascade"):
    stages = ", ".join(f"{s['name']}/{s['method']} {fmt(s['seconds'], '.1f')} s"
                       for s in r.get("stages", []))
    target = None if smoke else 30.0
    table.append(("(c) cascade wall s", f"{r['backend']}", f"{r['wall_s']:.1f}",
                  fmt(target, ".0f"), "target", ratio(target, r["wall_s"]),
                  f"{stages}; compression {fmt(r.get('compression'), '.3f')}; "
                  f"report total {fmt(r.get('report_seconds'), '.1f')} s",
                  r.get("outcome") or "no report.json"))
for name, st in states.items():
    if st:
        table.append((f"{name}: {st}", "-", "-", "-", "-", "-", f"see {name}.log", "FAIL"))

print()
print("| part | shape | rcc | anchor | anchor is | ratio | note | check |")
print("|---|---|---:|---:|---|---:|---|---|")
for row in table:
    print("| " + " | ".join(str(v) for v in row) + " |")
print()
print("ratio: above 1, rcc is better (faster, more TFLOP/s, under the target).")
EOF
} | tee "$out/gpu_bench.md"
note "exit $status; JSON lines and logs in $out"
exit $status
