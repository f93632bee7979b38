#!/usr/bin/env bash
# The distributed runner end to end (label mpi): the same job on 1, 2 and 4 ranks agrees;
# a rank killed in the middle of a stage ends the job, and the re-run resumes from the
# checkpoint and finishes exactly as an uninterrupted run; a corrupt checkpoint is skipped;
# a checkpoint of another job is refused; a missing model fails fast on every rank count.
# usage: test_ranks_and_resume.sh RCC_DIST SOURCE_DIR COMPARE_RUNS MPIEXEC
set -u
bin=$1 src=$2 compare=$3 mpiexec=$4
cd "$src" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
passed=0 failures=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }

. "$src/tests/lib/small_job.sh"
# job OUTPUT: a small three-stage job on the embedded model
job() { small_job models/clip-fmnist "$1" 64 500; }

run() { # run NP JOB [env...]: runs the job on NP ranks, output in $tmp/log-NP
  local np=$1 file=$2
  shift 2
  env "$@" timeout 300 "$mpiexec" -n "$np" "$bin" "$file" >"$tmp/out" 2>&1
}

# 1. The same job on 1, 2 and 4 ranks.
for np in 1 2 4; do
  job "$tmp/np$np" >"$tmp/np$np.yaml"
  if run "$np" "$tmp/np$np.yaml"; then ok; else bad "job on $np ranks failed:"; cat "$tmp/out"; fi
done
for np in 2 4; do
  if "$compare" "$tmp/np1" "$tmp/np$np"; then ok; else bad "1 rank vs $np ranks differ"; fi
done
grep -Eq '"owner_rank":[[:space:]]*1' "$tmp/np2/report.json" && ok || bad "no layer owned by rank 1 at 2 ranks"
# Every rank's placement (host, local rank, backend) is in the log.
for r in 0 1 2 3; do
  grep -Eq "rank $r on [^ ]+ \(local $r\): cpu" "$tmp/np4/log.txt" && ok ||
    bad "log.txt of the 4-rank run does not say where rank $r runs"
done
grep -q "collectives: mpi for control and host buffers, mpi for backend buffers" "$tmp/np4/log.txt" &&
  ok || bad "log.txt of the 4-rank run does not say how buffers are reduced"

# 2. Kill rank 1 in the middle of stage 2, then resume.
job "$tmp/kill" >"$tmp/kill.yaml"
start=$(date +%s)
if run 2 "$tmp/kill.yaml" RCC_FAULT=rank:1,stage:2; then bad "the job with a killed rank exited 0"; else ok; fi
[ $(($(date +%s) - start)) -lt 120 ] && ok || bad "the job with a killed rank took too long to end"
if grep -q "RCC_FAULT" "$tmp/out"; then ok; else bad "no word of the killed rank:"; tail -5 "$tmp/out"; fi
[ -f "$tmp/kill/checkpoints/stage-1.h5" ] && ok || bad "no checkpoint of stage 1 after the kill"
[ -f "$tmp/kill/checkpoints/stage-2.h5" ] && bad "a checkpoint of the interrupted stage 2 exists" || ok
if run 2 "$tmp/kill.yaml"; then ok; else bad "the resumed run failed:"; cat "$tmp/out"; fi
grep -q "resuming after stage 1" "$tmp/out" && ok || bad "the re-run did not say it resumed"
"$compare" "$tmp/np2" "$tmp/kill" --exact && ok || bad "the resumed run differs from an uninterrupted one"

# 3. A corrupt newest checkpoint is reported and skipped.
f="$tmp/kill/checkpoints/stage-3.h5"
size=$(stat -c %s "$f")
printf '\xde\xad\xbe\xef\xde\xad\xbe\xef' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none
if run 2 "$tmp/kill.yaml"; then ok; else bad "the run after corrupting stage-3.h5 failed:"; cat "$tmp/out"; fi
grep -q "stage-3.h5 is unreadable or corrupt" "$tmp/out" && ok || bad "corruption not reported"
grep -q "resuming after stage 2" "$tmp/out" && ok || bad "did not fall back to stage 2"
"$compare" "$tmp/np2" "$tmp/kill" --exact && ok || bad "the run after the fallback differs"

# 4. Another job's checkpoints are refused, --fresh discards them.
{ job "$tmp/kill"; echo "# edited"; } >"$tmp/other.yaml"
if run 1 "$tmp/other.yaml"; then bad "a run over another job's checkpoints exited 0"; else ok; fi
if grep -q "another job or model.*--fresh" "$tmp/out"; then ok; else bad "no clear refusal:"; tail -3 "$tmp/out"; fi
if env timeout 300 "$mpiexec" -n 1 "$bin" "$tmp/other.yaml" --fresh >"$tmp/out" 2>&1; then ok; else bad "--fresh failed"; fi

# 5. A missing model fails fast and clearly on every rank count.
job "$tmp/missing" | sed 's|models/clip-fmnist|models/does-not-exist|' >"$tmp/missing.yaml"
for np in 1 2 4; do
  start=$(date +%s)
  if run "$np" "$tmp/missing.yaml"; then bad "missing model on $np ranks exited 0"; else ok; fi
  [ $(($(date +%s) - start)) -lt 30 ] && ok || bad "missing model on $np ranks took too long"
  grep -q "models/does-not-exist" "$tmp/out" && ok || bad "no message naming the model on $np ranks"
done

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
