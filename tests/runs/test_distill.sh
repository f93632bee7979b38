#!/usr/bin/env bash
# alphaedit distill end to end (label mpi): a pruned model (wanda 0.8, which loses a quarter
# of the accuracy) trained against the original. On 1, 2 and 4 ranks with the same global
# batch the training must agree (first and last loss within 1e-4 relative, the same best
# epoch, final top-1 within 0.2 points: the ranks sum gradients in another order), training
# must lower the loss and never end below its closed-form start, the report and checkpoint
# history carry the summary, a stage left by a killed rank resumes to the same result, and
# `rcc-dist eval` of packed.safetensors and of compressed/ gives the run's final top-1, and
# the device code path run on the CPU (RCC_STAGES_ON_BACKEND=1) ends exactly as the host's.
# Mode `bias` (test_distill_bias.sh) compresses the vision tower only and trains alpha, the
# kept values of S, every bias (the dense text layers' too) and every LayerNorm, then runs a
# closed-form alphaedit stage on top: the outputs must hold the trained biases and
# LayerNorms, and a run killed in stage 3 must resume from stage 2's checkpoint (which holds
# them) to exactly the uninterrupted result.
# usage: test_distill.sh RCC_DIST SOURCE_DIR COMPARE_RUNS MPIEXEC [bias]
set -u
bin=$1 src=$2 compare=$3 mpiexec=$4 mode=${5:-plain}
cd "$src" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
command -v jq >/dev/null || { echo "FAIL: jq not installed (make deps installs it)"; exit 1; }
passed=0 failures=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }

if [ "$mode" = bias ]; then
  include="'*vision_model.encoder.layers.*'" trainable='alpha, bias, layernorm, sparse_values'
  stage3='    - {name: alphaedit, config: {method: closed_form}}'
else
  include="'*encoder.layers.*'" trainable='alpha, sparse_values' stage3=''
fi

job() { # job OUTPUT
  cat <<YAML
model: models/clip-fmnist
output: $1
backend: cpu
threads: 1
data: {calibration: fmnist:train, calibration_samples: 128, validation: fmnist:test, validation_samples: 500}
layers: {include: [$include]}
cascade:
  stages:
    - {name: dare, config: {method: wanda, target_sparsity: 0.8}}
    - name: alphaedit
      config: {method: distill, learning_rate: 2.0e-3, num_epochs: 2, batch_size: 32,
               train_samples: 256, trainable: [$trainable]}
$stage3
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
committed=$(jq '.stages[1].attempts[-1].metric' "$tmp/np1/report.json")
[ "$committed" = "$best" ] && ok || bad "the distill stage's top-1 $committed is not the best epoch's $best"
final=$(jq .final.metric "$tmp/np1/report.json")
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

# The device code path (backend twins of every buffer, uploads and downloads, gradients
# summed whole and staged through the host as on a GPU without NCCL), taken on the CPU
# with RCC_STAGES_ON_BACKEND=1: on 2 ranks it must end exactly as the host path.
job "$tmp/dev2" >"$tmp/dev2.yaml"
if timeout 300 "$mpiexec" -n 2 env RCC_STAGES_ON_BACKEND=1 "$bin" "$tmp/dev2.yaml" >"$tmp/outdev" 2>&1; then
  grep -q "staged through the host for backend buffers" "$tmp/outdev" && ok ||
    bad "the device-path run did not stage its backend buffers through the host"
  "$compare" "$tmp/np2" "$tmp/dev2" --exact && ok || bad "the device path on the CPU differs from the host path"
else
  bad "the device-path run on 2 ranks failed:"; tail -20 "$tmp/outdev"
fi

# Both outputs evaluate to the run's final top-1 (the validation's samples, batch and threads).
for out in packed.safetensors compressed; do
  got=$("$bin" eval --model "$tmp/np1/$out" --data fmnist:test --limit 500 --batch 32 --backend cpu \
    --threads 1 --json 2>/dev/null | jq .top1)
  jq -en --argjson a "${got:-null}" --argjson b "$final" '$a == $b' >/dev/null && ok ||
    bad "eval of $out gives top-1 ${got:-nothing}, the report says $final"
done

# tensor FILE NAME: a checksum of the bytes of one tensor of a safetensors file ("missing"
# when it has none of that name)
tensor() {
  local len lo hi
  len=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  read -r lo hi < <(head -c $((8 + len)) "$1" | tail -c "$len" |
    jq -r --arg n "$2" '.[$n].data_offsets // ["missing", ""] | "\(.[0]) \(.[1])"')
  [ "$lo" = missing ] && { echo missing; return; }
  tail -c +$((8 + len + lo + 1)) "$1" | head -c $((hi - lo)) | cksum
}
orig=models/clip-fmnist/model.safetensors
bias_params=$(field "$tmp/np1" trained_bias_params) ln_params=$(field "$tmp/np1" trained_layernorm_params)
if [ "$mode" = bias ]; then
  [ "$bias_params" -gt 0 ] && [ "$ln_params" -gt 0 ] && ok ||
    bad "the report counts $bias_params bias and $ln_params LayerNorm parameters trained"
  # a LayerNorm, the bias of a compressed layer, the bias of a text layer left dense
  changed=(vision_model.post_layernorm.weight text_model.encoder.layers.0.layer_norm1.bias
    vision_model.encoder.layers.1.mlp.fc1.bias text_model.encoder.layers.1.mlp.fc2.bias)
else
  [ "$bias_params" = 0 ] && [ "$ln_params" = 0 ] && ok ||
    bad "biases or LayerNorms trained without being asked: $bias_params, $ln_params"
  changed=()
fi
for name in "${changed[@]}" vision_model.pre_layrnorm.weight text_model.final_layer_norm.bias; do
  a=$(tensor "$orig" "$name") c=$(tensor "$tmp/np1/compressed/model.safetensors" "$name")
  p=$(tensor "$tmp/np1/packed.safetensors" "$name")
  [ "$a" != missing ] && [ "$c" = "$p" ] && ok || bad "$name: compressed/ and packed differ or lack it"
  if [[ " ${changed[*]} " == *" $name "* ]]; then
    [ "$c" != "$a" ] && ok || bad "$name: the outputs hold the original values, not the trained ones"
  elif [ "$mode" = plain ]; then
    [ "$c" = "$a" ] && ok || bad "$name: changed although neither biases nor LayerNorms train"
  fi
done
# attention key biases stay frozen even when biases train: softmax ignores them, so their
# gradient is rounding noise that Adam would turn into full-size steps
for name in vision_model.encoder.layers.1.self_attn.k_proj.bias \
  text_model.encoder.layers.0.self_attn.k_proj.bias; do
  [ "$(tensor "$orig" "$name")" = "$(tensor "$tmp/np1/compressed/model.safetensors" "$name")" ] &&
    ok || bad "$name: a key bias changed in distillation"
done

# kill_and_resume STAGE: the job on 2 ranks with rank 1 killed in STAGE must fail; run
# again, it must resume after the stage before and succeed. Its output is $tmp/killSTAGE.
kill_and_resume() {
  local stage=$1 run=$tmp/kill$1
  job "$run" >"$run.yaml"
  if timeout 300 "$mpiexec" -n 2 env RCC_FAULT=rank:1,stage:"$stage" "$bin" "$run.yaml" >"$tmp/out" 2>&1; then
    bad "the job killed in stage $stage exited 0"
  else ok; fi
  if timeout 300 "$mpiexec" -n 2 "$bin" "$run.yaml" >"$tmp/out" 2>&1; then ok; else
    bad "the run resumed in stage $stage failed:"; tail -20 "$tmp/out"
  fi
  grep -q "resuming after stage $((stage - 1))" "$tmp/out" && ok ||
    bad "the re-run did not resume after stage $((stage - 1))"
}

# A rank killed during the distill stage: the re-run trains again to the same summary as
# the uninterrupted 2-rank run.
kill_and_resume 2
# train_seconds and samples_per_second differ between runs: compare the rest
a=$(summary "$tmp/kill2" | jq -c 'del(.train_seconds, .samples_per_second)')
b=$(summary "$tmp/np2" | jq -c 'del(.train_seconds, .samples_per_second)')
[ "$a" = "$b" ] && ok || bad "resumed distill summary $a differs from the uninterrupted $b"

# A rank killed in stage 3: the re-run restores stage 2's layers, biases and LayerNorms from
# its checkpoint and ends exactly as the uninterrupted run.
if [ "$mode" = bias ]; then
  kill_and_resume 3
  "$compare" "$tmp/np2" "$tmp/kill3" --exact && ok || bad "the run resumed in stage 3 differs from an uninterrupted one"
fi

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
