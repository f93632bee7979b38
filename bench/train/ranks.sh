#!/usr/bin/env bash
# alphaedit distill on 1 and 2 MPI ranks: training images/s of the data-parallel loop
# (runner/distill.c) on the ViT-B/32-shaped CLIP, from report.json's distill summary.
#
#   bench/train/ranks.sh [--ranks "1 2"] [--bin PATH] [--model DIR] [--work DIR]
#
# The job: the random ViT-B/32-shaped model (bench/forward/make_model.py), the 36 linears
# of its first 6 vision blocks, wanda 0.5, then alphaedit distill on 64 Fashion-MNIST
# training images, batch 16 (all ranks together), 1 epoch (4 steps), alpha and the kept
# values of S training; 16 validation images (random weights score at chance: the gate
# only has to run). Only vision layers are compressed, so the text tower is frozen and the
# class embeddings come from the teacher. At R ranks each rank runs T = cores / R OpenMP
# threads (OpenBLAS serial, but T threads inside the compression kernels), so every run
# uses the same cores; the global batch is the same, so every run takes the same steps (the script checks that the first loss agrees to
# 1e-4). samples/s = training images x epochs / seconds of forward, backward, all-reduce
# and optimizer steps (validation excluded). Timed runs hold /tmp/rcc-bench.lock.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="" ranks="1 2" model=/tmp/rcc-bench/clip-vit-b32 work=/tmp/rcc-train-ranks
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks=$2; shift ;;
    --bin) bin=$2; shift ;;
    --model) model=$2; shift ;;
    --work) work=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
    *) echo "ranks.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  build="$root/build-scaling"
  [ -f "$build/CMakeCache.txt" ] ||
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRCC_ENABLE_CUDA=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" --target rcc-dist >/dev/null
  bin="$build/rcc-dist"
fi
python3 "$root/bench/forward/make_model.py" --out "$model" >&2
mkdir -p "$work"
cores=$(nproc)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
for r in $ranks; do
  t=$(( cores / r > 1 ? cores / r : 1 ))
  out="$work/r$r"
  cat >"$work/r$r.yaml" <<YAML
# bench/train/ranks.sh: alphaedit distill on the ViT-B/32-shaped model, $r rank(s)
model: $model
output: $out
backend: cpu
seed: 0
data: {calibration: fmnist:train, calibration_samples: 64, validation: fmnist:test,
       validation_samples: 16, batch_size: 16}
layers: {include: ["vision_model.encoder.layers.[0-5].*"]}
cascade:
  stages:
    - {name: dare, config: {method: wanda, target_sparsity: 0.5}}
    - name: alphaedit
      config: {method: distill, num_epochs: 1, batch_size: 16, train_samples: 64,
               trainable: [alpha, sparse_values]}
  validation: {performance_threshold: 0.01, rollback_enabled: false, max_retries: 0}
  checkpoint_frequency: 0
YAML
  echo "ranks.sh: $r rank(s) x $t thread(s) (log: $out.log) ..." >&2
  flock /tmp/rcc-bench.lock env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS=1 \
    mpiexec -n "$r" --oversubscribe --bind-to none -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS \
    "$bin" "$work/r$r.yaml" --fresh --threads "$t" >"$out.log" 2>&1 ||
    { tail -n 20 "$out.log" >&2; echo "ranks.sh: rcc-dist failed on $r rank(s)" >&2; exit 2; }
  rows+=("$r $t $out/report.json")
done
echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1)," \
  "$cores cores | load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "${rows[@]}" <<'PY'
import json, sys

rows = []
for arg in sys.argv[1:]:
    r, t, path = arg.split(" ", 2)
    d = json.load(open(path))["stages"][1]["attempts"][-1]["distill"]
    rows.append((int(r), int(t), d))
print("| ranks | threads/rank | steps | train s | images/s | speed-up | first loss | "
      "activations MB per rank |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
base = rows[0][2]
bad = False
for r, t, d in rows:
    print(f"| {r} | {t} | {d['steps']} | {d['train_seconds']:.2f} | {d['samples_per_second']:.2f} "
          f"| {d['samples_per_second'] / base['samples_per_second']:.2f} | {d['first_loss']:.6f} "
          f"| {d['activation_bytes'] / 2**20:.0f} |")
    if abs(d["first_loss"] - base["first_loss"]) > 1e-4 * abs(base["first_loss"]):
        bad = True
        print(f"ranks.sh: first loss {d['first_loss']} on {r} ranks, {base['first_loss']} on "
              f"{rows[0][0]}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
