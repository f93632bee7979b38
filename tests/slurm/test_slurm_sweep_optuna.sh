#!/usr/bin/env bash
# The optuna sampler on a private single-node Slurm: `rcc-dist sweep --submit --sampler
# optuna`, 4 trials 2 at a time, each asking and telling one study in the sweep's journal
# file; every trial is complete with its own optuna trial number (0..3), and the report
# marks the Pareto front. Optuna comes from PyPI into the test's own virtual environment,
# kept next to the binary (BUILD/optuna-venv) so that later runs reuse it; its bin/ goes
# first on PATH, which sbatch passes on to the array tasks. Skipped (77) when it cannot be
# installed (no python3-venv, no network to PyPI).
# usage: test_slurm_sweep_optuna.sh RCC_DIST SOURCE_DIR
set -u
bin=$1
src=$2
. "$(dirname "$0")/slurm_lib.sh"
. "$(dirname "$0")/sweep_lib.sh"
venv=$(dirname "$(realpath "$bin")")/optuna-venv
if [ ! -x "$venv/bin/optuna" ]; then
  echo "installing optuna from PyPI into $venv"
  { python3 -m venv "$venv" && "$venv/bin/python" -m pip install -q optuna; } >"$venv.log" 2>&1 ||
    slurm_skip "optuna could not be installed into $venv (see $venv.log)"
fi
export PATH=$venv/bin:$PATH
slurm_start
cd "$SLURM_TMP" || exit 1
sweep_files "$src" grid

start=$(date +%s)
sweep_submit_wait "$bin" "$SLURM_TMP/opt" --sampler optuna
sweep_check "$bin" "$SLURM_TMP/opt"
numbers=$(cat opt/trials/*/result.json | sed -n 's/.*"optuna_trial":[[:space:]]*\([0-9]*\).*/\1/p' | sort -n | tr '\n' ' ')
[ "$numbers" = "0 1 2 3 " ] || fail "want optuna trials 0 1 2 3, got '$numbers'"
# Each ask is a fresh process: the trials must still draw different values.
distinct=$(grep -h target_sparsity opt/trials/*/params.json | sort -u | wc -l)
[ "$distinct" -ge 3 ] || fail "optuna drew only $distinct distinct target_sparsity values in 4 trials"
[ -s opt/optuna.journal ] || fail "no optuna journal in opt/"
# JournalFileBackend logs each tell as a line with "state": 1 (TrialState.COMPLETE).
told=$(grep -c '"state": *1' opt/optuna.journal)
[ "$told" = 4 ] || fail "want 4 trials told complete in opt/optuna.journal, found $told"
echo "ok: optuna sweep as a job array in $(($(date +%s) - start)) s (optuna trials $numbers; journal lines with state 1: $told)"
