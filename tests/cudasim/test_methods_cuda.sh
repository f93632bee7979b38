#!/usr/bin/env bash
# Every stage method's device path end to end under cudasim (label cudasim): jobs on one
# rank with `backend: cuda` against the same jobs on `backend: cpu`. test_cascade_cuda and
# test_ranks_cuda run wanda, sparsegpt, residual, closed_form and distill; these jobs run
# what they leave out, on both fixtures (clip-tiny-b has other widths, GELU and F16
# weights). Each job's last pruning stage is followed by nothing that rewrites its masks,
# so that compare_runs compares them:
# - magnitude 2:4 with rescale, then closed_form restricted to the null space;
# - svd, then closed_form;
# - global magnitude in two cosine steps, then residual, with a bar that the first attempt
#   of the pruning stage misses, so that a retry with milder settings runs on the device
#   too (checked: a job under that bar without a retry fails the test);
# - whitened (SVD-LLM), under the same bar;
# - sparsegpt 2:4 with a block narrower than the layers, residual, and distill training
#   LayerNorms, U and V and the kept sparse values with the MSE embedding loss.
# Each pair must agree as compare_runs demands: the same decisions and ranks, masks at
# least 99.9 % equal, top-1 within 0.2 points. The cpu and cuda runs of a pair run side by
# side, one thread each.
# usage: test_methods_cuda.sh RCC_DIST SOURCE_DIR COMPARE_RUNS
set -u
bin=$1 src=$2 compare=$3
cd "$src" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failures=0
strict='validation: {performance_threshold: 0.995, on_fail: retry, max_retries: 1}'

cascade() { # cascade NAME: the stages and validation of one job
  case $1 in
  nm_nullspace)
    cat <<'YAML'
  stages:
    - {name: dare, config: {method: magnitude, pattern: '2:4', rescale: true}}
    - {name: alphaedit, config: {method: closed_form, null_space: true, null_space_energy: 0.95}}
  validation: {performance_threshold: 0.01}
YAML
    ;;
  svd)
    cat <<'YAML'
  stages:
    - {name: nullu, config: {method: svd, energy_threshold: 0.9}}
    - {name: alphaedit, config: {method: closed_form}}
  validation: {performance_threshold: 0.01}
YAML
    ;;
  global_retry)
    cat <<YAML
  stages:
    - name: dare
      config: {method: magnitude, scope: global, target_sparsity: 0.6, num_iterations: 2,
               schedule: cosine}
    - {name: nullu, config: {method: residual, energy_threshold: 0.8}}
  $strict
YAML
    ;;
  whitened_retry)
    cat <<YAML
  stages:
    - {name: nullu, config: {method: whitened, energy_threshold: 0.8}}
  $strict
YAML
    ;;
  sparsegpt_distill)
    cat <<'YAML'
  stages:
    - {name: dare, config: {method: sparsegpt, pattern: '2:4', block_size: 16}}
    - {name: nullu, config: {method: residual, energy_threshold: 0.9}}
    - name: alphaedit
      config: {method: distill, learning_rate: 1.0e-3, num_epochs: 1, batch_size: 16,
               train_samples: 48, embedding_loss: mse,
               trainable: [alpha, layernorm, lowrank, sparse_values]}
  validation: {performance_threshold: 0.01}
YAML
    ;;
  esac
}

job() { # job MODEL CASCADE OUTPUT BACKEND
  cat <<YAML
model: tests/fixtures/$1
output: $3
backend: $4
threads: 1
data: {calibration: 'fmnist:train', calibration_samples: 64, validation: 'fmnist:test', validation_samples: 200}
layers: {include: ['*encoder.layers.*']}
cascade:
$(cascade "$2")
YAML
}

pair() { # pair MODEL CASCADE: the job on cpu and on cuda, side by side, then compared
  local model=$1 c=$2 ok=1 backend name
  for backend in cpu cuda; do
    name=$model-$c-$backend
    job "$model" "$c" "$tmp/$name" "$backend" >"$tmp/$name.yaml"
    timeout 600 "$bin" "$tmp/$name.yaml" >"$tmp/$name.out" 2>&1 &
  done
  for backend in cpu cuda; do
    wait -n || ok=0
  done
  if [ "$ok" = 0 ]; then
    for backend in cpu cuda; do
      echo "---- $model-$c-$backend:"
      tail -n 20 "$tmp/$model-$c-$backend.out"
    done
    echo "FAIL: $model $c: a run failed"
  elif [[ $c = *_retry ]] &&
    ! jq -e '[.stages[].attempts[].decision] | index("retry")' "$tmp/$model-$c-cuda/report.json" \
      >/dev/null; then
    echo "FAIL: $model $c: no attempt missed the bar, so no retry ran"
  elif "$compare" "$tmp/$model-$c-cpu" "$tmp/$model-$c-cuda"; then
    passed=$((passed + 1))
    echo "ok: $model $c: $(jq -c '[.stages[] | [.attempts[].decision]] + [.final.metric]' \
      "$tmp/$model-$c-cuda/report.json")"
    return
  else
    echo "FAIL: $model $c: the cuda run differs from the cpu run"
  fi
  failures=$((failures + 1))
}

pair clip-tiny-a nm_nullspace
pair clip-tiny-a svd
pair clip-tiny-b global_retry
pair clip-tiny-b whitened_retry
pair clip-tiny-b sparsegpt_distill
echo "test_methods_cuda: $passed passed, $failures failed"
[ "$failures" = 0 ]
