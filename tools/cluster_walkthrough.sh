#!/usr/bin/env bash
# Runs the commands of docs/CLUSTER.md on this machine and prints each with its output, so
# that the document shows what they really print: first on the laptop (one process, then
# mpirun), then on a private single-node Slurm started by tests/slurm/slurm_lib.sh
# (munged, slurmctld, slurmd as root in a temporary directory), where `rcc-dist slurm`
# submits the demo job and `rcc-dist sweep` a small sweep as a job array.
#   tools/cluster_walkthrough.sh [RCC_DIST]      (default build/rcc-dist; run as root)
# Writes into runs/walkthrough-* in the repository (ignored by git) and removes nothing
# else. Needs jq. Not a test: the tests are tests/slurm/*.sh.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(realpath "${1:-$root/build/rcc-dist}")
cd "$root" || exit 1
. tests/slurm/slurm_lib.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf runs/walkthrough-*
mkdir -p runs

# show CMD...: prints "$ CMD" and its output (stdout and stderr), indented for Markdown.
show() {
  echo
  echo "    \$ $*"
  "$@" 2>&1 | sed 's/^/    /'
}

# The demo job, smaller (500 validation images) and with its own run directory.
job() {
  sed -e "s#^output: [^ ]*#output: runs/walkthrough-$1#" \
    -e 's/validation_samples: [0-9]*/validation_samples: 500/' examples/clip-fmnist.yaml
}
job laptop >runs/walkthrough-laptop.yaml
job mpi >runs/walkthrough-mpi.yaml
job slurm >runs/walkthrough-slurm.yaml
rcc() { "$bin" "$@"; }

echo "## 1. On the laptop"
show rcc validate runs/walkthrough-laptop.yaml
show rcc runs/walkthrough-laptop.yaml --threads 2
echo "## 2. Several ranks on one machine"
show mpirun -np 2 --oversubscribe "$bin" runs/walkthrough-mpi.yaml --threads 1
show jq -c '{ranks, final: .final | {metric, compression}, owners: [.layers[].owner_rank] | group_by(.) | map({rank: .[0], layers: length})}' runs/walkthrough-mpi/report.json

echo "## 3. On the cluster"
slurm_start >/dev/null
show sinfo
show rcc slurm runs/walkthrough-slurm.yaml --nodes 1 --gpus-per-node 0 --ntasks-per-node 2 --cpus-per-task 1 --time 00:20:00
show cat runs/walkthrough-slurm/slurm/rcc-dist.sbatch
show rcc slurm runs/walkthrough-slurm.yaml --nodes 1 --gpus-per-node 0 --ntasks-per-node 2 --cpus-per-task 1 --time 00:20:00 --submit
id=$(squeue -h -o %i | head -n 1)
show squeue
for _ in $(seq 240); do squeue -h -j "$id" 2>/dev/null | grep -q . || break; sleep 1; done
show jq -c '{ranks, slurm, final: .final | {metric, retention, compression}}' runs/walkthrough-slurm/report.json
show tail -n 3 "runs/walkthrough-slurm/slurm/walkthrough-slurm-$id.out"

echo "## 4. A sweep as a job array"
sed -e 's#^base: .*#base: ../examples/clip-fmnist.yaml#' -e 's#^output: .*#output: runs/walkthrough-sweep#' \
  examples/clip-fmnist-sweep.yaml >runs/walkthrough-sweep.yaml
show rcc sweep runs/walkthrough-sweep.yaml --trials 4 --submit
for _ in $(seq 600); do squeue -h 2>/dev/null | grep -q . || break; sleep 1; done
show rcc report runs/walkthrough-sweep
show head -n 12 runs/walkthrough-sweep/best.yaml
