#!/usr/bin/env bash
# Two ranks on `backend: cuda` under cudasim (label cudasim), placed as on a cluster:
# - one GPU per task (Slurm's --gpus-per-task=1: each rank sees its own GPU as cuda:0) and a
#   node with two GPUs (rank r on cuda:r): the session must pick NCCL (emulated over MPI)
#   for backend buffers;
# - both ranks on one GPU (the same UUID): it must stage them through the host instead.
# Every run (sparsegpt, a low-rank residual and distill with biases, whose statistics and
# gradients are all-reduced on the device) must agree with the same job on 2 CPU ranks
# (compare_runs: same decisions and ranks, masks >= 99.9 % equal, top-1 within 0.2).
# Then the backend choice: `cuda` without a device is a clear error, `auto` falls back to
# the CPU with a note.
# usage: test_ranks_cuda.sh RCC_DIST SOURCE_DIR COMPARE_RUNS MPIEXEC
set -u
bin=$1 src=$2 compare=$3 mpiexec=$4
cd "$src" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
passed=0 failures=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }

job() { # job OUTPUT BACKEND
  cat <<YAML
model: tests/fixtures/clip-tiny-a
output: $1
backend: $2
threads: 1
data: {calibration: 'fmnist:train', calibration_samples: 64, validation: 'fmnist:test', validation_samples: 200}
layers: {include: ['*encoder.layers.*']}
cascade:
  stages:
    - {name: dare, config: {method: sparsegpt, target_sparsity: 0.5}}
    - {name: nullu, config: {method: residual, energy_threshold: 0.9}}
    - name: alphaedit
      config: {method: distill, learning_rate: 2.0e-3, num_epochs: 1, batch_size: 16,
               train_samples: 64, trainable: [alpha, bias]}
  validation: {performance_threshold: 0.01}
YAML
}

run() { # run NAME BACKEND [ENV...]
  local name=$1 backend=$2
  shift 2
  job "$tmp/$name" "$backend" >"$tmp/$name.yaml"
  if timeout 900 "$mpiexec" -n 2 env "$@" "$bin" "$tmp/$name.yaml" >"$tmp/$name.out" 2>&1; then ok
  else bad "$name failed:"; tail -20 "$tmp/$name.out"; fi
}

run cpu cpu RCC_UNUSED=1
run nccl cuda RCC_UNUSED=1
run node cuda CUDASIM_DEVICES=2 CUDASIM_UUID_SEED=node
run shared cuda CUDASIM_UUID_SEED=one-gpu
for name in nccl node; do
  grep -q "nccl for backend buffers" "$tmp/$name.out" && ok ||
    bad "$name: two ranks with a GPU each did not use NCCL: $(grep collectives "$tmp/$name.out")"
done
grep -q "rank 1 on .*cuda:1 " "$tmp/node.out" && ok ||
  bad "on a node with 2 GPUs rank 1 is not on cuda:1: $(grep 'rank 1 on' "$tmp/node.out")"
grep -q "staged through the host for backend buffers" "$tmp/shared.out" && ok ||
  bad "two ranks on one GPU did not stage: $(grep collectives "$tmp/shared.out")"
for name in nccl node shared; do
  "$compare" "$tmp/cpu" "$tmp/$name" && ok || bad "the $name run differs from the CPU run"
done

evaluate() { # evaluate BACKEND: rcc-dist eval of the fixture on 16 images, no GPU visible
  CUDASIM_DEVICES=0 "$bin" eval --model tests/fixtures/clip-tiny-a --data fmnist:test --limit 16 \
    --backend "$1" >"$tmp/eval.out" 2>&1
}
if evaluate cuda; then bad "backend cuda without a GPU succeeded"; else
  grep -q "no CUDA device is visible" "$tmp/eval.out" && ok ||
    bad "backend cuda without a GPU: unclear error: $(cat "$tmp/eval.out")"
fi
if evaluate auto; then
  grep -q "backend auto: no CUDA device visible.*using cpu" "$tmp/eval.out" && ok ||
    bad "backend auto without a GPU gave no note: $(cat "$tmp/eval.out")"
else bad "backend auto without a GPU failed: $(cat "$tmp/eval.out")"; fi
echo "test_ranks_cuda: $passed passed, $failures failed"
[ "$failures" = 0 ]
