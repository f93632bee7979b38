#!/usr/bin/env bash
# alphaedit distill end to end (label mpi): a pruned model (wanda 0.8, which loses a quarter
# of the accuracy) trained against the original. On 1, 2 and 4 ranks with the same global
# batch the training must agree (first and last loss within 1e-4 relative, the same best
# epoch, final top-1 within 0.2 points: the ranks sum gradients in another order), training
# must lower the loss and never end below its closed-form start, the report and checkpoint
# history carry the summary, and a stage left by a killed rank resumes to the same result.
# usage: test_distill.sh RCC_DIST SOURCE_DIR COMPARE_RUNS MPIEXEC
set -u
bin=$1 src=$2 mpiexec=$4
cd "$src" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
command -v jq >/dev/null || { echo "FAIL: jq not installed (make deps installs it)"; exit 1; }
passed=0 failures=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }

job() { # job OUTPUT
  cat <<YAML
model: models/clip-fmnist
output: $1
backend: cpu
threads: 1
data: {calibration: fmnist:train, calibration_samples: 128, validation: fmnist:test, validation_samples: 500}
layers: {include: ['*encoder.layers.*']}
cascade:
  stages:
    - {name: dare, config: {method: wanda, target_sparsity: 0.8}}
    - name: alphaedit
      config: {method: distill, learning_rate: 2.0e-3, num_epochs: 2, batch_size: 32,
               train_samples: 256, trainable: [alpha, sparse_values]}
  validation: {performance_threshold: 0.3}
YAML
}

summary() { jq -c '.stages[1].attempts[-1].distill' "$1/report.json"; }
field() { jq -r ".stages[1].attempts[-1].distill.$2" "$1/report.json"; }

for np in 1 2 4; do
  job "$tmp/np$np" >"$tmp/np$np.yaml"
  if timeout 300 "$mpiexec" -n "$np" "$bin" "$tmp/np$np.yaml" >"$tmp/out$np" 2>&1; then ok; else
    bad "distill on $np ranks failed:"; tail -20 "$tmp/out$np"; continue
  fi
  [ "$(summary "$tmp/np$np")" != null ] && ok || bad "no distill summary in the report on $np ranks"
done
first=$(field "$tmp/np1" first_loss) last=$(field "$tmp/np1" last_loss)
start=$(field "$tmp/np1" start_metric) best=$(field "$tmp/np1" best_metric)
jq -en --argjson a "$last" --argjson b "$first" '$a < 0.7 * $b' >/dev/null && ok ||
  bad "training did not lower the loss enough: first $first, last $last"
jq -en --argjson a "$best" --argjson b "$start" '$a >= $b' >/dev/null && ok ||
  bad "best top-1 $best below the closed-form start $start"
final=$(jq .final.metric "$tmp/np1/report.json")
[ "$final" = "$best" ] && ok || bad "final top-1 $final is not the best epoch's $best"
grep -q "distill epoch 2/2" "$tmp/out1" && ok || bad "no per-epoch progress line"
for np in 2 4; do
  for f in first_loss last_loss; do
    jq -en --argjson a "$(field "$tmp/np$np" $f)" --argjson b "$(field "$tmp/np1" $f)" \
      '(($a - $b) | fabs) <= 1e-4 * ($b | fabs)' >/dev/null && ok ||
      bad "$f on $np ranks $(field "$tmp/np$np" $f), on 1 rank $(field "$tmp/np1" $f)"
  done
  [ "$(field "$tmp/np$np" best_epoch)" = "$(field "$tmp/np1" best_epoch)" ] && ok ||
    bad "best epoch differs on $np ranks"
  jq -en --argjson a "$(jq .final.metric "$tmp/np$np/report.json")" --argjson b "$final" \
    '(($a - $b) | fabs) <= 0.2' >/dev/null && ok || bad "final top-1 on $np ranks differs by > 0.2"
done

# A rank killed during the distill stage: the re-run resumes after stage 1 and trains again
# to the same summary as the uninterrupted 2-rank run.
job "$tmp/kill" >"$tmp/kill.yaml"
if timeout 300 "$mpiexec" -n 2 env RCC_FAULT=rank:1,stage:2 "$bin" "$tmp/kill.yaml" >"$tmp/out" 2>&1; then
  bad "the job with a killed rank exited 0"
else ok; fi
if timeout 300 "$mpiexec" -n 2 "$bin" "$tmp/kill.yaml" >"$tmp/out" 2>&1; then ok; else
  bad "the resumed run failed:"; tail -20 "$tmp/out"
fi
grep -q "resuming after stage 1" "$tmp/out" && ok || bad "the re-run did not resume after stage 1"
# train_seconds and samples_per_second differ between runs: compare the rest
a=$(summary "$tmp/kill" | jq -c 'del(.train_seconds, .samples_per_second)')
b=$(summary "$tmp/np2" | jq -c 'del(.train_seconds, .samples_per_second)')
[ "$a" = "$b" ] && ok || bad "resumed distill summary $a differs from the uninterrupted $b"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
