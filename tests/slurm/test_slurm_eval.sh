#!/usr/bin/env bash
# rcc-dist eval as a 2-rank MPI job on a private single-node Slurm: sbatch --wait of a batch
# script that runs `srun --mpi=pmix -n 2 rcc-dist eval`. The ranks find each other through
# Slurm's PMIx server (no mpiexec); the JSON must say 2 ranks and the same top-1 as one
# process, since the ranks split the images and sum their counts.
# usage: test_slurm_eval.sh RCC_DIST SOURCE_DIR
set -u
bin=$1
src=$2
. "$(dirname "$0")/slurm_lib.sh"
slurm_start_mpi

args=(eval --model "$src/models/clip-fmnist" --data fmnist:test --limit 1000 --json)
"$bin" "${args[@]}" >single.json 2>single.err || {
  echo "FAIL: $bin ${args[*]} (one process) failed:"
  cat single.err
  exit 1
}
ref=$(jq -e .top1 single.json) || fail "no top1 in the one-process output: $(cat single.json)"

cat >eval.sbatch <<SCRIPT
#!/bin/bash
#SBATCH --ntasks=2
srun --mpi=pmix -n 2 $(printf '%q ' "$bin" "${args[@]}")>$SLURM_TMP/slurm.json
SCRIPT
slurm_sbatch_wait eval eval.sbatch || slurm_fail "the eval job failed"

out=$(cat slurm.json)
jq -e '.ranks == 2' slurm.json >/dev/null || fail "want \"ranks\":2 in the srun output, got: $out"
jq -e --argjson ref "$ref" '.top1 == $ref' slurm.json >/dev/null ||
  fail "top1 under srun -n 2 differs from one process ($ref): $out"
echo "ok: srun --mpi=pmix -n 2 rcc-dist eval: ranks 2, top1 $ref as one process"
