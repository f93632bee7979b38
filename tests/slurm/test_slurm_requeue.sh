#!/usr/bin/env bash
# A requeued Slurm job resumes from its checkpoints. The script of `rcc-dist slurm` for a
# job with `slurm: {requeue: true}` is submitted with one test-only line that makes its
# first run die in the middle of stage 2 (RCC_FAULT, only while SLURM_RESTART_COUNT is 0,
# as a crashed node would); `scontrol requeue` then starts the same script again, whose
# rcc-dist must resume after stage 1 and end with the same report as an uninterrupted
# run of the same job outside Slurm.
# usage: test_slurm_requeue.sh RCC_DIST SOURCE_DIR
set -u
bin=$1
src=$2
. "$(dirname "$0")/slurm_lib.sh"
slurm_start_mpi

# job OUTPUT: a three-stage job on the embedded model, checkpointing every stage.
. "$src/tests/lib/small_job.sh"
job() {
  small_job "$src/models/clip-fmnist" "$1" 64 300
  cat <<YAML
  checkpoint_frequency: 1
slurm: {cpus_per_task: 2, time: "3", requeue: true}
YAML
}
job "$SLURM_TMP/ref" >ref.yaml
job "$SLURM_TMP/run" >run.yaml

# The uninterrupted run, outside Slurm, with the same threads as the Slurm task.
OMP_NUM_THREADS=2 "$bin" ref.yaml >ref.log 2>&1 || fail "the uninterrupted run failed: $(tail -n 5 ref.log)"

"$bin" slurm run.yaml >slurm.out 2>&1 || fail "rcc-dist slurm failed: $(cat slurm.out)"
script=$(cat slurm.out)
grep -qxF '#SBATCH --requeue' "$script" || fail "no '#SBATCH --requeue' in $script"
grep -qxF '#SBATCH --open-mode=append' "$script" || fail "no '#SBATCH --open-mode=append' in $script"
# The test's fault: first run only. Slurm leaves SLURM_RESTART_COUNT unset on a job's
# first run and counts requeues from 1.
sed -i 's/^srun /[ "${SLURM_RESTART_COUNT:-0}" = 0 ] \&\& export RCC_FAULT=rank:0,stage:2\n&/' "$script"
grep -q '^\[ "${SLURM_RESTART_COUNT:-0}" = 0 \] && export RCC_FAULT' "$script" ||
  fail "could not add the fault line to $script"

id=$(sbatch --parsable "$script") || slurm_fail "sbatch $script failed"
out=run/slurm/run-$id.out err=run/slurm/run-$id.err
state=$(slurm_wait_job "$id") || slurm_fail "the first run of job $id did not end within 120 s ($state)"
[ "$state" = FAILED ] || fail "the first run of job $id ended $state, not FAILED: $(tail -n 5 "$err")"
grep -q 'RCC_FAULT: exiting abruptly in stage 2' "$err" || fail "no word of the fault in $err"
[ -f run/checkpoints/stage-1.h5 ] || fail "no checkpoint of stage 1 after the first run"
[ -f run/checkpoints/stage-2.h5 ] && fail "a checkpoint of the interrupted stage 2 exists"
[ -f run/report.json ] && fail "the interrupted run wrote a report.json"

scontrol requeue "$id" || slurm_fail "scontrol requeue $id failed"
# Slurm holds a requeued job back (PENDING, Reason=BeginTime: Slurm 22.05 here sets its
# EligibleTime 121 s after the requeue) before it may start again; a test need not wait
# that long, but it must not start in the second the first run ended in: slurmd revoked
# that run's credential at its end, with a time in whole seconds, and refuses a credential
# issued in that second too ("Job credential revoked", the job ends FAILED). So the test
# waits two seconds, then makes the job eligible at once (StartTime=now+2 would leave it to
# the scheduler's next periodic pass, some 30 s later).
begin=$(scontrol show job -o "$id" | grep -o 'EligibleTime=[^ ]*')
sleep 2
scontrol update JobId="$id" StartTime=now || slurm_fail "cannot move the requeued job's start to now"
state=$(slurm_wait_job "$id") || slurm_fail "the requeued job $id did not end within 120 s ($state)"
[ "$state" = COMPLETED ] || {
  tail -n 20 "$out" "$err" | sed 's/^/    /'
  slurm_fail "the requeued job $id ended $state"
}
grep -q "rcc-dist: Slurm job $id on .*, restart 0" "$out" || fail "no first run in $out"
grep -q "rcc-dist: Slurm job $id on .*, restart 1" "$out" || fail "no second run in $out"
grep -q 'resuming after stage 1 of 3' run/log.txt || fail "the requeued run did not say it resumed"

jq -e --argjson id "$id" '.outcome == "completed" and .resumed_after_stage == 1 and
  .slurm.job_id == $id and .slurm.restart_count == 1' run/report.json >/dev/null ||
  fail "report.json of the requeued run: $(jq -c '{outcome, resumed_after_stage, slurm}' run/report.json)"
# What must not depend on the interruption: every stage's attempts and sizes, the final
# numbers and each layer (timings and paths aside).
results='{stages: [.stages[] | {name, method, attempts, params_stored}],
          final: (.final | del(.seconds)), layers, baseline}'
want=$(jq -S "$results" ref/report.json) && got=$(jq -S "$results" run/report.json) ||
  fail "cannot read the two reports"
[ "$want" = "$got" ] || {
  diff <(echo "$want") <(echo "$got") | head -n 20
  fail "the requeued run's report differs from the uninterrupted run's"
}
echo "ok: job $id killed in stage 2, requeued (Slurm set $begin), resumed after stage 1:" \
  "$(jq -c '{final: {metric: .final.metric, params_stored: .final.params_stored}, slurm}' run/report.json)"
