#!/usr/bin/env bash
# Command-line behaviour of build/rcc-dist: help, version, usage errors with exit code 2,
# missing files with exit code 1 and the file named, and the sub-commands on fixtures.
# usage: test_cli.sh RCC_DIST SOURCE_DIR
set -u
bin=$1
src=$2
# Job files name paths relative to the working directory, as the README runs them.
cd "$src" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
passed=0

# expect CODE PATTERN -- command...: runs the command, checks its exit code and that its
# combined output matches PATTERN (grep -E).
expect() {
  local code=$1 pattern=$2
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "FAIL: $* -> exit $rc (want $code), output:"
    sed 's/^/    /' <<<"$out" | head -20
    echo "    (wanted /$pattern/)"
    failures=$((failures + 1))
  else
    passed=$((passed + 1))
  fi
}

tiny=$src/tests/fixtures/clip-tiny-a
expect 0 'usage: rcc-dist' -- "$bin" --help
expect 0 '^rcc-dist [0-9]+\.[0-9]+' -- "$bin" --version
expect 0 'compiled in: cpu' -- "$bin" --version
expect 2 "unknown command 'frobnicate'" -- "$bin" frobnicate
expect 2 'usage: rcc-dist' -- "$bin"
expect 2 'eval needs --model and --data' -- "$bin" eval --model "$tiny"
expect 2 'unrecognized option' -- "$bin" eval --model "$tiny" --data fmnist:test --bogus
expect 2 '--limit expects a positive integer' -- "$bin" eval --model "$tiny" --data fmnist:test --limit -3
expect 1 "$tmp/nope/config.json" -- "$bin" eval --model "$tmp/nope" --data fmnist:test
expect 1 'fmnist:test|folder:|csv:' -- "$bin" eval --model "$tiny" --data imagenet:val
expect 1 "backend 'bogus'|bogus" -- "$bin" eval --model "$tiny" --data fmnist:test --backend bogus
# Without a GPU: asking for cuda is a clear error, auto falls back to cpu and says so.
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect 1 "backend 'cuda:0' requested but no CUDA device is visible|has no CUDA support" -- \
    "$bin" eval --model "$tiny" --data fmnist:test --limit 4 --backend cuda
  expect 0 'backend auto: no CUDA device visible.*using cpu' -- \
    "$bin" eval --model "$tiny" --data fmnist:test --limit 4 --backend auto
fi
expect 1 'job.yaml.*cannot open' -- "$bin" "$tmp/job.yaml"
expect 0 'ok \(3 stages' -- "$bin" validate "$src/examples/clip-fmnist.yaml"
printf 'model: %s\noutput: %s/run\ncascade:\n  stages:\n    - name: dare\n      config: {method: wanda, target_sparsty: 0.5}\n' "$tiny" "$tmp" >"$tmp/bad.yaml"
expect 1 "bad.yaml:6:31: error: unknown key 'target_sparsty' \(did you mean 'target_sparsity'\?\)" -- "$bin" validate "$tmp/bad.yaml"
expect 1 "bad.yaml:6:31: error: unknown key" -- "$bin" "$tmp/bad.yaml"
[ -e "$tmp/run" ] && { echo "FAIL: a rejected job created its run directory"; failures=$((failures + 1)); }

# inspect
expect 0 'text_model.encoder.layers.1.mlp.fc2' -- "$bin" inspect "$tiny"
expect 0 'parameters  total' -- "$bin" inspect "$tiny"
expect 1 'config.json' -- "$bin" inspect "$tmp"

# embed: texts and images
printf 'a photo of a cat.\nA DOG, running!\n' >"$tmp/texts.txt"
expect 0 'wrote 2 text embeddings of size 32' -- "$bin" embed --model "$tiny" --texts "$tmp/texts.txt" --out "$tmp/t.safetensors"
[ -s "$tmp/t.safetensors" ] || { echo "FAIL: embed wrote no file"; failures=$((failures + 1)); }
expect 0 'wrote 2 image embeddings' -- "$bin" embed --model "$tiny" --images \
  "$src/tests/fixtures/clip-images/$(ls "$src/tests/fixtures/clip-images" | head -1)" \
  "$src/tests/fixtures/images/chelsea_444.jpg" --out "$tmp/i.safetensors"
expect 2 'exactly one of --images and --texts' -- "$bin" embed --model "$tiny" --out "$tmp/x.safetensors"
expect 1 'missing.png' -- "$bin" embed --model "$tiny" --images "$tmp/missing.png" --out "$tmp/x.safetensors"
[ -e "$tmp/x.safetensors" ] && { echo "FAIL: failed embed left an output file"; failures=$((failures + 1)); }

# eval: zero-shot JSON on the embedded model, and retrieval on a caption CSV
expect 0 '"top1":' -- "$bin" eval --model "$src/models/clip-fmnist" --data fmnist:test --limit 200 --json
printf 'image,caption\n' >"$tmp/pairs.csv"
for f in "$src"/tests/fixtures/images/*.png; do printf '%s,a photo of %s\n' "$f" "$(basename "$f" .png)" >>"$tmp/pairs.csv"; done
expect 0 'image->text  R@1' -- "$bin" eval --model "$tiny" --data "csv:$tmp/pairs.csv"

# SIGTERM during a job (Slurm's time limit, scancel): the job ends at once with the signal's
# status, and says where the committed checkpoints are and how to resume.
sed -e "s#^output: .*#output: $tmp/term#" -e "s#^model: .*#model: $src/models/clip-fmnist#" \
  -e 's/validation_samples: [0-9]*/validation_samples: 10000/' "$src/examples/clip-fmnist.yaml" >"$tmp/term.yaml"
"$bin" "$tmp/term.yaml" >"$tmp/term.log" 2>&1 &
pid=$!
for _ in $(seq 300); do [ -f "$tmp/term/checkpoints/stage-1.h5" ] && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
if [ "$rc" = 143 ] && grep -q "interrupted: the committed stages are kept in $tmp/term/checkpoints" "$tmp/term.log"; then
  passed=$((passed + 1))
else
  echo "FAIL: SIGTERM: exit $rc (want 143), log: $(tail -n 2 "$tmp/term.log")"
  failures=$((failures + 1))
fi

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
