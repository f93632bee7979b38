#!/usr/bin/env bash
# Sweeps without Slurm: bad sweep files fail with file:line:col before anything is written;
# `rcc-dist sweep --local 2` runs a 4-trial random sweep (2 configurations x 2 seeds) of
# the tiny fixture model; every trial records a complete result; a finished trial is not
# run again; `rcc-dist report` prints the table with the Pareto front marked, the repeat
# statistics, a PNG (when gnuplot is installed) and a best.yaml that `rcc-dist validate`
# accepts; the batch script of the same sweep has the right array line; a trial whose job
# fails is recorded as failed without stopping the others.
# usage: test_sweep_local.sh RCC_DIST SOURCE_DIR
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
failures=0
bad() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

. "$src/tests/lib/small_job.sh"
{ small_job "$src/tests/fixtures/clip-tiny-a" run 32 100 "performance_threshold: 0.01"
  echo "threads: 1"; } >base.yaml

# 1. Bad sweep files: each error names sweep.yaml:line:col; nothing is created.
check_error() { # check_error NAME WANT_REGEX: the sweep in NAME.yaml must fail with WANT
  local name=$1 want=$2
  if "$bin" sweep "$name.yaml" --local 1 >"$name.out" 2>&1; then
    bad "$name.yaml: sweep exited 0"
  elif ! grep -Eq "$want" "$name.out"; then
    bad "$name.yaml: no /$want/ in:"
    cat "$name.out"
  fi
  [ -e "out-$name" ] && bad "$name.yaml: the sweep directory was created despite the error"
}
cat >typo.yaml <<'YAML'
base: base.yaml
output: out-typo
space:
  cascade.stages[0].config.target_sparsty: {low: 0.3, high: 0.6}
YAML
check_error typo "^typo.yaml:4:3: error: .*target_sparsty.*did you mean 'target_sparsity'"
cat >nokey.yaml <<'YAML'
base: base.yaml
output: out-nokey
space:
  cascade.stagez[0].config.target_sparsity: {low: 0.3, high: 0.6}
YAML
check_error nokey "^nokey.yaml:4:3: error: .*no key 'stagez'.*did you mean 'stages'"
cat >index.yaml <<'YAML'
base: base.yaml
output: out-index
space:
  cascade.stages[7].config.target_sparsity: {low: 0.3, high: 0.6}
YAML
check_error index "^index.yaml:4:3: error: .*index 7 is past the end of cascade.stages \(3 items\)"
cat >range.yaml <<'YAML'
base: base.yaml
output: out-range
space:
  cascade.stages[0].config.target_sparsity: {low: 0.8, high: 0.6}
  seed: {choices: []}
YAML
check_error range "^range.yaml:4:.*low \(0.8\) is above high \(0.6\)"
grep -Eq "^range.yaml:5:19: error: choices is empty" range.out || bad "no empty-choices error: $(cat range.out)"
cat >refused.yaml <<'YAML'
base: base.yaml
output: out-refused
space:
  cascade.stages[0].config.target_sparsity: {low: 0.5, high: 1.5}
YAML
check_error refused "^refused.yaml:4:3: error: .*= 1.5: the base job refuses it"

# 2. A 4-trial sweep here, 2 at a time.
cat >sweep.yaml <<'YAML'
base: base.yaml
output: out
space:
  cascade.stages[0].config.target_sparsity: {low: 0.3, high: 0.7}
  cascade.stages[1].config.energy_threshold: {choices: [0.8, 0.95]}
objective: {maximize: retention, constraints: {compression: {min: 0.01}}}
trials: 4
repeats: 2
parallelism: 2
sampler: grid
seed: 3
YAML
start=$(date +%s)
if ! "$bin" sweep sweep.yaml --local 2 --sampler random >sweep.out 2>&1; then
  bad "sweep --local 2 failed:"
  cat sweep.out
fi
echo "sweep --local 2: $(($(date +%s) - start)) s"
for k in 0 1 2 3; do
  r=out/trials/$k/result.json
  grep -q '"state":[[:space:]]*"complete"' "$r" 2>/dev/null || {
    bad "trial $k not complete: $(cat "$r" 2>&1)"
    tail -5 "out/trials/$k/trial.log" 2>/dev/null
  }
  grep -q '"sampler":[[:space:]]*"random"' "$r" 2>/dev/null || bad "trial $k: --sampler random not used"
  grep -q 'output: .*out/trials/'$k'/run' "out/trials/$k/job.yaml" || bad "trial $k: job.yaml output not its run dir"
done
# Repeats: trials 0 and 1 are one configuration with seeds 3 and 4.
grep -q '^seed: 3$' out/trials/0/job.yaml && grep -q '^seed: 4$' out/trials/1/job.yaml ||
  bad "repeats: trials 0 and 1 should run seeds 3 and 4"
p0=$(grep target_sparsity out/trials/0/params.json)
p1=$(grep target_sparsity out/trials/1/params.json)
p2=$(grep target_sparsity out/trials/2/params.json)
[ "$p0" = "$p1" ] || bad "repeats of configuration 0 differ: $p0 / $p1"
[ "$p0" != "$p2" ] || bad "configurations 0 and 1 drew the same target_sparsity: $p0"
# The random sampler is deterministic: configuration 0 with seed 3 again, elsewhere.
"$bin" trial sweep.yaml --task 0 --sampler random --output again >again.out 2>&1 || bad "trial --task 0 failed: $(cat again.out)"
[ "$(grep target_sparsity again/trials/0/params.json)" = "$p0" ] || bad "trial 0 drew other values the second time"
"$bin" trial sweep.yaml --task 0 --sampler random >rerun.out 2>&1
grep -q "complete already" rerun.out || bad "a complete trial ran again: $(cat rerun.out)"

# 3. The report.
if ! "$bin" report out >report.out 2>&1; then
  bad "report failed:"
  cat report.out
fi
grep -Eq '^ +[0-3] .* complete +pareto$' report.out || bad "no trial marked pareto:"
[ "$(grep -Ec '^ +[0-3] .* complete' report.out)" = 4 ] || bad "want 4 complete rows in the report"
grep -q "repeats over seed" report.out || bad "no repeat statistics"
grep -Eq 'n=2 +compression [0-9.]+ ± [0-9.]+ \[' report.out || bad "no mean ± std [CI] line"
if command -v gnuplot >/dev/null; then
  [ -s out/pareto.png ] || bad "gnuplot is installed but there is no out/pareto.png"
fi
"$bin" validate out/best.yaml >validate.out 2>&1 || bad "best.yaml does not validate: $(cat validate.out)"
grep -q "^output: $tmp/out/best$" out/best.yaml || bad "best.yaml's output is not out/best"
if [ "$failures" -gt 0 ]; then
  echo "---- report:"
  cat report.out
fi

# 4. The batch script of the same sweep (not submitted).
"$bin" sweep sweep.yaml --sampler random --output arr >script.out 2>&1 || bad "sweep (script only) failed: $(cat script.out)"
script=$(head -1 script.out)
grep -q '^#SBATCH --array=0-3%2$' "$script" || bad "no --array=0-3%2 in $script"
grep -Eq "^srun .*rcc-dist trial $tmp/sweep.yaml --task \"\\\$SLURM_ARRAY_TASK_ID\" --output $tmp/arr --sampler random\$" "$script" ||
  bad "unexpected srun line: $(grep srun "$script")"

# 5. A trial whose job fails is recorded as failed; the others still run and report.
cat >failing.yaml <<'YAML'
base: base.yaml
output: failing
space:
  data.validation: {choices: ["fmnist:test", "folder:/nonexistent-rcc-dir"]}
trials: 2
parallelism: 2
sampler: grid
YAML
"$bin" sweep failing.yaml --local 2 >failing.out 2>&1 || bad "a sweep with one failing trial exited non-zero: $(cat failing.out)"
grep -q '"state":[[:space:]]*"complete"' failing/trials/0/result.json || bad "trial 0 of failing.yaml not complete"
grep -q '"state":[[:space:]]*"fail"' failing/trials/1/result.json || bad "trial 1 of failing.yaml not recorded as failed"
"$bin" report failing >failing.report 2>&1 || bad "report of a sweep with a failed trial failed"
grep -Eq '^ +1 .* fail +$' failing.report || bad "no failed row in: $(cat failing.report)"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "ok: bad sweeps rejected with file:line:col; 4 trials --local 2, report with pareto, best.yaml valid"
