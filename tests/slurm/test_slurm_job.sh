#!/usr/bin/env bash
# A compression job (examples/clip-fmnist.yaml with 500 validation and 64 calibration
# images) as a 2-rank MPI job on a private single-node Slurm: sbatch --wait of a batch script
# that runs `srun --mpi=pmix -n 2 rcc-dist JOB.yaml`. report.json must say 2 ranks, and the
# final top-1 must match a plain 1-rank run of the same job within 0.2 points (the ranks sum
# calibration statistics in another order, so the weights may differ in the last bits).
# usage: test_slurm_job.sh RCC_DIST SOURCE_DIR
set -u
bin=$1
src=$2
. "$(dirname "$0")/slurm_lib.sh"
slurm_start_mpi

# job.yaml OUTPUT: the example job, smaller, on the model in the source tree.
make_job() {
  sed -e "s#^model: [^ ]*#model: $src/models/clip-fmnist#" \
    -e "s#^output: [^ ]*#output: $1#" \
    -e 's/calibration_samples: [0-9]*/calibration_samples: 64/' \
    -e 's/validation_samples: [0-9]*/validation_samples: 500/' \
    "$src/examples/clip-fmnist.yaml"
}
make_job "$SLURM_TMP/single" >single.yaml
make_job "$SLURM_TMP/slurm" >slurm.yaml
for want in 'validation_samples: 500( |$)' 'calibration_samples: 64( |$)' "^model: $src/"; do
  grep -Eq "$want" single.yaml || fail "could not derive the job from examples/clip-fmnist.yaml: no /$want/"
done

"$bin" single.yaml >single.log 2>&1 || {
  echo "FAIL: $bin single.yaml (one process) failed:"
  tail -n 20 single.log
  exit 1
}
ref=$(jq -e .final.metric single/report.json) || fail "no final.metric in the 1-rank report.json"

cat >job.sbatch <<SCRIPT
#!/bin/bash
#SBATCH --ntasks=2
srun --mpi=pmix -n 2 $(printf '%q ' "$bin" "$SLURM_TMP/slurm.yaml")
SCRIPT
slurm_sbatch_wait job job.sbatch || slurm_fail "the compression job failed"

report=slurm/report.json
[ -s "$report" ] || slurm_fail "the Slurm job wrote no $SLURM_TMP/$report"
jq -e '.ranks == 2' "$report" >/dev/null ||
  fail "want \"ranks\": 2 in $report, got $(jq -c .ranks "$report")"
got=$(jq -e .final.metric "$report") || fail "no final.metric in $report"
jq -en --argjson a "$got" --argjson b "$ref" '($a - $b) | fabs <= 0.2' >/dev/null ||
  fail "final top-1 $got with 2 ranks under Slurm, $ref with 1 rank: more than 0.2 apart"
echo "ok: srun --mpi=pmix -n 2 rcc-dist job: ranks 2, final top-1 $got (1 rank: $ref)"

# Without a PMI plugin the 2 tasks would be 2 unrelated 1-rank runs writing the same run
# directory: rcc-dist must refuse, on every task, and write nothing.
cat >nopmi.sbatch <<SCRIPT
#!/bin/bash
#SBATCH --ntasks=2
srun --mpi=none -n 2 $(printf '%q ' "$bin" "$SLURM_TMP/nopmi.yaml")
SCRIPT
make_job "$SLURM_TMP/nopmi" >nopmi.yaml
if slurm_sbatch_wait nopmi nopmi.sbatch; then
  fail "srun --mpi=none -n 2 rcc-dist JOB.yaml succeeded; it must refuse"
fi
grep -q "no MPI/PMI environment" "$SLURM_TMP"/nopmi-*.out 2>/dev/null ||
  fail "srun --mpi=none: no 'no MPI/PMI environment' message in the job's output"
[ ! -e "$SLURM_TMP/nopmi/report.json" ] || fail "srun --mpi=none wrote $SLURM_TMP/nopmi/report.json"
echo "ok: srun --mpi=none -n 2 is refused with a clear message"
