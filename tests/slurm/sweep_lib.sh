# Helpers of the sweep tests on Slurm (test_slurm_sweep*.sh); source after slurm_lib.sh.

# sweep_files SRC SAMPLER: writes base.yaml (a three-stage job of the tiny fixture model,
# one thread) and sweep.yaml (4 trials, 2 at a time, SAMPLER) in the current directory.
sweep_files() {
  . "$1/tests/lib/small_job.sh"
  { small_job "$1/tests/fixtures/clip-tiny-a" run 32 100 "performance_threshold: 0.01"
    echo "threads: 1"; } >base.yaml
  cat >sweep.yaml <<YAML
base: base.yaml
output: out
space:
  cascade.stages[0].config.target_sparsity: {low: 0.3, high: 0.8}
  cascade.stages[1].config.energy_threshold: {choices: [0.8, 0.95]}
objective: {maximize: retention}
trials: 4
parallelism: 2
sampler: $2
YAML
}

# sweep_submit_wait RCC_DIST DIR [FLAGS...]: `rcc-dist sweep sweep.yaml --submit --output
# DIR FLAGS`, then waits (150 s at most) until the array has left the queue.
sweep_submit_wait() {
  local bin=$1 dir=$2 id
  shift 2
  "$bin" sweep sweep.yaml --submit --output "$dir" "$@" >"$dir.submit" 2>&1 ||
    slurm_fail "rcc-dist sweep --submit failed: $(cat "$dir.submit")"
  grep -q '^#SBATCH --array=0-3%2$' "$dir/sweep.sbatch" ||
    fail "no --array=0-3%2 in $dir/sweep.sbatch: $(grep array "$dir/sweep.sbatch")"
  id=$(sed -n 2p "$dir.submit")
  [[ "$id" =~ ^[0-9]+$ ]] || fail "sweep --submit printed no job id: $(cat "$dir.submit")"
  for _ in $(seq 300); do
    [ -z "$(squeue -h -j "$id" 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  slurm_fail "job array $id still queued or running after 150 s: $(squeue -h -j "$id")"
}

# sweep_check DIR: every trial of DIR complete, and `rcc-dist report DIR` marks a front.
sweep_check() {
  local bin=$1 dir=$2 k
  for k in 0 1 2 3; do
    grep -q '"state":[[:space:]]*"complete"' "$dir/trials/$k/result.json" 2>/dev/null || {
      echo "trial $k: $(cat "$dir/trials/$k/result.json" 2>&1)"
      tail -n 5 "$dir/trials/$k/trial.log" "$dir"/trials/slurm-*_"$k".out 2>/dev/null
      slurm_fail "trial $k of $dir is not complete"
    }
  done
  "$bin" report "$dir" >"$dir.report" 2>&1 || fail "rcc-dist report $dir failed: $(cat "$dir.report")"
  grep -Eq '^ +[0-3] .* complete +pareto$' "$dir.report" || fail "no pareto mark: $(cat "$dir.report")"
  "$bin" validate "$dir/best.yaml" >/dev/null 2>&1 || fail "$dir/best.yaml does not validate"
}
