#!/usr/bin/env bash
# `rcc-dist slurm JOB.yaml --submit` on a private single-node Slurm: the written script
# holds the #SBATCH lines asked for (flags over the job's `slurm:` section) and the srun
# line; the printed id is the job Slurm ran; the job's report.json records that job id
# and the task's place (procid, ntasks, localid, node). Also, without a cluster: a bad
# `slurm:` value is reported at its file:line:col, and --submit with no sbatch on PATH
# fails clearly after writing the script.
# usage: test_slurm_submit.sh RCC_DIST SOURCE_DIR
set -u
bin=$1
src=$2
. "$(dirname "$0")/slurm_lib.sh"
slurm_start_mpi

cat >job.yaml <<YAML
model: $src/models/clip-fmnist
output: out
backend: cpu
data: {calibration: fmnist:train, calibration_samples: 64, validation: fmnist:test, validation_samples: 300}
layers: {include: ['*encoder.layers.*']}
cascade:
  stages:
    - {name: dare, config: {method: wanda, target_sparsity: 0.5}}
  validation: {performance_threshold: 0.5}
slurm:
  nodes: 3                      # overridden by --nodes 1
  cpus_per_task: 2
  time: "10"                    # overridden by --time 3
  sbatch_args: ["--comment=rcc-test"]
YAML

# 1. Errors before anything is submitted.
sed 's/time: "10"  /time: "1:2:3:4"/' job.yaml >bad.yaml
"$bin" slurm bad.yaml >bad.out 2>&1 && fail "a bad slurm.time was accepted"
grep -q '^bad.yaml:13:9: error: .time. must be a Slurm time limit' bad.out ||
  fail "no file:line:col error for a bad slurm.time: $(cat bad.out)"
env PATH=/nonexistent "$bin" slurm job.yaml --output-dir nosbatch --submit >nosbatch.out 2>&1 &&
  fail "--submit without sbatch on PATH exited 0"
grep -q 'no sbatch on PATH' nosbatch.out || fail "no clear error without sbatch: $(cat nosbatch.out)"
[ -s nosbatch/rcc-dist.sbatch ] || fail "the script was not written before --submit failed"

# 2. Write and submit.
"$bin" slurm job.yaml --nodes 1 --gpus-per-node 0 --partition debug --time 3 --submit >submit.out 2>&1 ||
  fail "rcc-dist slurm --submit failed: $(cat submit.out)"
script=$(sed -n 1p submit.out)
id=$(sed -n 2p submit.out)
[ "$script" = "$SLURM_TMP/out/slurm/rcc-dist.sbatch" ] || fail "printed script path '$script'"
[[ "$id" =~ ^[0-9]+$ ]] || fail "no job id on the second line: $(cat submit.out)"
for want in '#!/bin/bash' '#SBATCH --job-name=job' '#SBATCH --nodes=1' \
  '#SBATCH --ntasks-per-node=1' '#SBATCH --cpus-per-task=2' '#SBATCH --partition=debug' \
  '#SBATCH --time=3' "#SBATCH --chdir=$SLURM_TMP" "#SBATCH --output=$SLURM_TMP/out/slurm/%x-%j.out" \
  "#SBATCH --error=$SLURM_TMP/out/slurm/%x-%j.err" '#SBATCH --comment=rcc-test' \
  'export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}' \
  "srun --mpi=pmix --cpu-bind=cores $bin $SLURM_TMP/job.yaml --backend cpu"; do
  grep -qxF -- "$want" "$script" || fail "no line '$want' in $script"
done
for unwanted in '--gpus-per-task' '--requeue' 'NCCL_DEBUG' '--nodes=3'; do
  grep -qF -- "$unwanted" "$script" && fail "'$unwanted' in the CPU job's script $script"
done

state=$(slurm_wait_job "$id") || slurm_fail "job $id did not end within 120 s (state $state)"
log=out/slurm/job-$id.out
[ "$state" = COMPLETED ] || {
  echo "job $id ended $state; its output:"
  tail -n 30 "$log" out/slurm/job-"$id".err 2>/dev/null | sed 's/^/    /'
  slurm_fail "the submitted job did not complete"
}
grep -q "rcc-dist: Slurm job $id on .*, restart 0" "$log" || fail "no start line in $log"

report=out/report.json
[ -s "$report" ] || fail "the job wrote no $report"
jq -e --argjson id "$id" --arg node "$(hostname -s)" \
  '.outcome == "completed" and .slurm.job_id == $id and .slurm.procid == 0 and
   .slurm.ntasks == 1 and .slurm.localid == 0 and .slurm.nodename == $node' "$report" >/dev/null ||
  fail "report.json's slurm record is not job $id, task 0 of 1: $(jq -c '{outcome, slurm}' "$report")"
echo "ok: rcc-dist slurm --submit: job $id completed, script lines and report.json's slurm record checked"
