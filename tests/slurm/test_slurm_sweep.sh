#!/usr/bin/env bash
# A sweep as a Slurm job array on a private single-node Slurm: `rcc-dist sweep --submit`
# of 4 random-sampler trials of the tiny fixture model, 2 at a time (--array=0-3%2); once
# the array has left the queue every trial's result.json says complete, `rcc-dist report`
# marks the Pareto front and writes a best.yaml that validates. A bad sweep file fails
# with file:line:col before anything is submitted.
# usage: test_slurm_sweep.sh RCC_DIST SOURCE_DIR
set -u
bin=$1
src=$2
. "$(dirname "$0")/slurm_lib.sh"
. "$(dirname "$0")/sweep_lib.sh"
slurm_start
cd "$SLURM_TMP" || exit 1
sweep_files "$src" random

sed 's/target_sparsity: {low: 0.3, high: 0.8}/target_sparsity: {low: 0.9, high: 0.8}/' sweep.yaml >bad.yaml
if "$bin" sweep bad.yaml --submit --output bad >bad.out 2>&1; then fail "a sweep with low > high was submitted"; fi
grep -q '^bad.yaml:4:.*: error: low (0.9) is above high (0.8)' bad.out || fail "no file:line:col error: $(cat bad.out)"
[ -z "$(squeue -h)" ] || fail "something was submitted for the bad sweep: $(squeue -h)"

start=$(date +%s)
sweep_submit_wait "$bin" "$SLURM_TMP/out"
sweep_check "$bin" "$SLURM_TMP/out"
echo "ok: 4-trial job array sweep (%2) in $(($(date +%s) - start)) s, report with pareto, best.yaml valid"
