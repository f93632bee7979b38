#!/usr/bin/env bash
# The same compression job at 1, 2 and 4 MPI ranks: wall time per phase and speed-up.
#
#   bench/scaling/run.sh [--ranks "1 2 4"] [--models "fmnist vitb32"] [--bin PATH]
#                        [--vit-model DIR] [--work DIR]
#
# Builds rcc-dist (Release, CUDA off, in build-scaling/) unless --bin is given, writes the
# random ViT-B/32-shaped CLIP (bench/forward/make_model.py) when missing, derives two job
# files from examples/clip-fmnist.yaml into WORK/ and runs each at every rank count R with
#   mpiexec -n R --oversubscribe --bind-to none rcc-dist JOB --fresh --threads T
# where T = max(1, cores / R) OpenMP threads per rank (OMP_NUM_THREADS = T, OpenBLAS
# serial as in rcc-dist), so that ranks x threads = cores while R <= cores; above that the
# cores are oversubscribed (the table's threads column says by how much).
#   fmnist  the demo job as examples/clip-fmnist.yaml has it (its cascade on both towers of
#           models/clip-fmnist), with 256 calibration and 2000 validation images and a
#           checkpoint after every stage.
#   vitb32  the ViT-B/32-shaped model with random weights, the 36 linears of the first 6
#           of the vision tower's 12 encoder blocks (all 12 take about 4 minutes at 1 rank
#           alone): dare/wanda 0.5, nullu/svd ratio 0.25 energy 1.0 (a plain truncated SVD
#           of the pruned layer), alphaedit/closed_form; 32 calibration and 64 validation
#           images. Random weights score at chance, so the accuracy gate means nothing:
#           threshold 0.01, no retry, no roll-back (every stage commits).
# Every run starts fresh in its own output directory WORK/runs/MODEL-rR and holds
# /tmp/rcc-bench.lock while it runs (one benchmark at a time on a shared machine).
#
# The phases are report.json's phases_seconds, as rank 0 sees them: calibration (forwards
# and the all-reduce of H), compression (rank 0's own layers), exchange (agreement on
# failures, which also waits for the slowest rank, and the broadcast of every layer),
# validation (baseline and every attempt), checkpoint, outputs; other = final.seconds minus
# every phase of the report (distillation too, which these jobs do not run): placing layers
# in the model, the dare-to-nullu subspace analysis (an exact SVD of every pruned layer
# when nullu follows dare, each rank its own layers); total = final.seconds
# (from the cascade's start: the model is already loaded); process = wall time of mpiexec
# as a whole (start-up, model load, report). Speed-ups are against the same model's
# 1-rank run; compression + exchange is the sharded part as a whole (rank 0's compression
# alone looks better than it is when other ranks finish later: they show up in exchange).
# The runs must agree: final.metric within 0.2 points, params_stored and every attempt's
# decision equal across the rank counts of a model. Exit status: 0; 1 when they do not
# agree (the table still prints); 2 on any other error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=""
ranks="1 2 4"
models="fmnist vitb32"
vit_model=/tmp/rcc-bench/clip-vit-b32
work=/tmp/rcc-scaling
lock=/tmp/rcc-bench.lock

usage() { sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks=$2; shift ;;
    --models) models=$2; shift ;;
    --bin) bin=$2; shift ;;
    --vit-model) vit_model=$2; shift ;;
    --work) work=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$bin" ]; then
  build="$root/build-scaling"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    # A CPU benchmark: the CUDA backend is not needed and would only slow the build.
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRCC_ENABLE_CUDA=OFF >/dev/null
  fi
  cmake --build "$build" -j "$(nproc)" --target rcc-dist >/dev/null
  bin="$build/rcc-dist"
fi
[ -x "$bin" ] || { echo "run.sh: $bin is not an executable" >&2; exit 2; }
mkdir -p "$work/runs"
case " $models " in *" vitb32 "*) python3 "$root/bench/forward/make_model.py" --out "$vit_model" >&2 ;; esac

# Job files, both derived from the demo job: model and output rewritten, the data sizes
# set, checkpoints after every stage; vitb32 also narrows the layers and replaces the
# cascade (everything from `cascade:` on).
demo="$root/examples/clip-fmnist.yaml"
write_job() {
  local name=$1 out=$2
  case "$name" in
    fmnist)
      echo "# bench/scaling/run.sh: examples/clip-fmnist.yaml with model, output and the" \
        "data sizes set"
      sed -e "s|^model: .*|model: $root/models/clip-fmnist|" \
          -e "s|^output: .*|output: $out|" \
          -e "s|^\(  calibration_samples:\) *[0-9]*|\1 256|" \
          -e "s|^\(  validation_samples:\) *[0-9]*|\1 2000|" \
          -e "s|^\(  checkpoint_frequency:\) *[0-9]*|\1 1|" "$demo"
      ;;
    vitb32)
      # The demo's comments describe the demo: they go.
      echo "# bench/scaling/run.sh: examples/clip-fmnist.yaml on the random ViT-B/32-shaped" \
        "model, vision encoder only, cheaper data and cascade"
      sed -e '/^cascade:/,$d' -e '/^ *#/d' -e 's/ *#.*$//' \
          -e "s|^model: .*|model: $vit_model|" \
          -e "s|^output: .*|output: $out|" \
          -e "s|^\(  calibration_samples:\) *[0-9]*|\1 32|" \
          -e "s|^\(  validation_samples:\) *[0-9]*|\1 64|" \
          -e "s|^\(  batch_size:\) *[0-9]*|\1 32|" \
          -e 's|^\(  include:\) .*|\1 ["vision_model.encoder.layers.[0-5].*"]|' "$demo"
      cat <<'EOF'
cascade:
  stages:
    - name: dare
      config:
        method: wanda
        target_sparsity: 0.5
    - name: nullu
      config:
        method: svd                # truncated SVD of the pruned layer, no residual
        energy_threshold: 1.0      # the rank is the cap below
        rank_reduction_ratio: 0.25
    - name: alphaedit
      config:
        method: closed_form
  validation:                      # random weights: the gate only has to run
    performance_threshold: 0.01
    rollback_enabled: false
    max_retries: 0
  checkpoint_frequency: 1
EOF
      ;;
    *) echo "run.sh: unknown model '$name' (fmnist, vitb32)" >&2; exit 2 ;;
  esac
}

cores=$(nproc)
cpu=$(lscpu | sed -n "s/^Model name: *//p" | head -n 1)
results="$work/results.jsonl"
: >"$results"

# Other work on the machine skews the timings; the header shows how busy it was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for name in $models; do
  for r in $ranks; do
    t=$(( cores / r > 1 ? cores / r : 1 ))
    out="$work/runs/$name-r$r"
    job="$work/$name-r$r.yaml"
    rm -rf "$out"
    write_job "$name" "$out" >"$job"
    echo "run.sh: $name, $r rank(s) x $t thread(s) (log: $out.log) ..." >&2
    rc=0
    {
      flock 9
      start=$(date +%s.%N)
      env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS=1 \
        mpiexec -n "$r" --oversubscribe --bind-to none \
        -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS \
        "$bin" "$job" --fresh --threads "$t" >"$out.log" 2>&1 || rc=$?
      end=$(date +%s.%N)
    } 9>"$lock"
    if [ "$rc" != 0 ] || [ ! -f "$out/report.json" ]; then
      tail -n 20 "$out.log" >&2
      echo "run.sh: rcc-dist failed on $job (exit $rc)" >&2
      exit 2
    fi
    python3 - "$out/report.json" "$name" "$r" "$t" "$start" "$end" >>"$results" <<'EOF'
import json, sys

path, name, ranks, threads, start, end = sys.argv[1:]
with open(path) as f:
    report = json.load(f)
print(json.dumps({"model": name, "ranks": int(ranks), "ranks_reported": report["ranks"],
                  "threads": int(threads), "phases": report["phases_seconds"],
                  "total": report["final"]["seconds"], "process": float(end) - float(start),
                  "metric": report["final"]["metric"],
                  "params_stored": report["final"]["params_stored"],
                  "decisions": [a["decision"] for s in report["stages"] for a in s["attempts"]],
                  "report": path}))
EOF
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | machine: $cpu, $cores cores (lscpu, nproc)" \
  "| load average before/after: $load_before / $load_after"
echo "# mpiexec -n R --oversubscribe --bind-to none rcc-dist JOB --fresh --threads T," \
  "OMP_NUM_THREADS=T, OpenBLAS serial (T threads inside the compression kernels);" \
  "T = max(1, $cores / R); seconds as rank 0 sees them"
status=0
python3 - "$results" "$cores" <<'EOF' || status=$?
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1])]
cores = int(sys.argv[2])
phases = ["calibration", "compression", "exchange", "validation", "checkpoint", "outputs"]


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


def sharded(r):
    """Seconds until every rank holds every layer: rank 0's own layers, then the exchange
    (which waits for the slowest rank)."""
    return r["phases"]["compression"] + r["phases"]["exchange"]


print("| model | ranks | threads/rank | " + " | ".join(phases) +
      " | other | total s | speed-up total | speed-up compression "
      "| speed-up compression + exchange | process s | final metric | params stored |")
print("|---|---:|---|" + "---:|" * (len(phases) + 8))
base = {}
bad = []
for r in rows:
    p = r["phases"]
    other = r["total"] - sum(v or 0.0 for v in p.values())  # every phase the report has
    ref = base.setdefault(r["model"], r)
    busy = r["ranks"] * r["threads"]
    threads = str(r["threads"]) + (f" ({busy / cores:.0f}x oversubscribed)" if busy > cores else "")
    print(f"| {r['model']} | {r['ranks']} | {threads} | " +
          " | ".join(f"{p[k]:.2f}" if p[k] is not None else "n/a" for k in phases) +
          f" | {other:.2f} | {r['total']:.2f} | {ratio(ref['total'], r['total'])} "
          f"| {ratio(ref['phases']['compression'], p['compression'])} "
          f"| {ratio(sharded(ref), sharded(r))} | {r['process']:.2f} "
          f"| {r['metric']:.2f} | {r['params_stored']} |")
    if r["ranks_reported"] != r["ranks"]:
        bad.append(f"{r['report']}: ran on {r['ranks_reported']} ranks, not {r['ranks']}")
    if abs(r["metric"] - ref["metric"]) > 0.2:
        bad.append(f"{r['report']}: final metric {r['metric']:.2f}, "
                   f"{ref['ranks']} rank(s): {ref['metric']:.2f}")
    if r["decisions"] != ref["decisions"]:
        bad.append(f"{r['report']}: decisions {r['decisions']}, "
                   f"{ref['ranks']} rank(s): {ref['decisions']}")
    if r["params_stored"] != ref["params_stored"]:
        bad.append(f"{r['report']}: params stored {r['params_stored']}, "
                   f"{ref['ranks']} rank(s): {ref['params_stored']}")
for b in bad:
    print(f"run.sh: runs disagree: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
echo "# raw JSON lines: $results; job files and logs: $work" >&2
exit $status
