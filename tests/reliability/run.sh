#!/usr/bin/env bash
# The reliability record (docs/RELIABILITY.md): tries every class of bad input that the
# tests cover, injects faults into real runs of a three-stage job on 2 ranks (a rank killed
# in each stage, checkpoints truncated and corrupted, a full disk, a NaN in a stage,
# SIGTERM), and prints the Markdown document - what was tried, how many cases, the outcome
# and the first line the user sees - on stdout. Progress goes to stderr. Exit status 1
# when any outcome is not the expected one (the document says which).
# usage: tests/reliability/run.sh [BUILD_DIR] > docs/RELIABILITY.md
#   BUILD_DIR: a built tree (`make build`; default build). FUZZ_BUILD: where the libFuzzer
#   targets are built (`make fuzz-build`), to replay tests/fuzz's seeds and regressions
#   (default build-fuzz; noted as not replayed when absent).
# A few minutes on 2 cores. Not part of `make test`: it repeats what the tests check and
# adds slow whole-job faults.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd) || exit 2
fuzz_build=${FUZZ_BUILD:-$src/build-fuzz}
bin=$build/rcc-dist compare=$build/tests/compare_runs
mpiexec=$(command -v mpiexec || command -v mpirun)
for f in "$bin" "$compare" "$mpiexec"; do
  [ -x "$f" ] || { echo "run.sh: $f is missing: build first (make build)" >&2; exit 2; }
done
cd "$src" || exit 2
tmp=$(mktemp -d)
mounted=""
cleanup() {
  [ -n "$mounted" ] && umount "$mounted" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_WAIT_POLICY=PASSIVE

unexpected=0
say() { echo "reliability: $*" >&2; }
# A cell of a Markdown table: one line, pipes escaped, scratch paths shortened.
cell() { printf '%s' "$1" | head -n 1 | sed -e "s|$tmp|\$TMP|g" -e "s|$src/||g" -e 's/|/\\|/g' | cut -c 1-320; }
# The first line the user sees about a failure: the first error/warning/fault line of the
# output, else its last line.
first_line() {
  local l
  l=$(grep -m 1 -iE 'error|warning|RCC_FAULT|abort|signal|killed|corrupt|refus|interrupted' "$1")
  [ -n "$l" ] || l="(no message; the last line) $(grep -v '^\s*$' "$1" | tail -n 1)"
  printf '%s' "$l"
}
# outcome OK TEXT: the outcome cell, marked when it is not what was expected.
outcome() {
  if [ "$1" = 1 ]; then printf '%s' "$2"; else
    unexpected=$((unexpected + 1))
    printf '**UNEXPECTED**: %s' "$2"
  fi
}

# ---- 1. bad inputs: the unit tests that try them, and the command line on samples --------

# count FILE PATTERN: calls of a test's error helper.
count() { grep -cE "$2" "$src/tests/unit/$1"; }
# unit NAME: runs one unit test program; prints "passes" or "FAILS".
unit() {
  if (cd "$build" && ctest -R "^$1\$" -V >"$tmp/ctest-$1.log" 2>&1) &&
    grep -q "100% tests passed" "$tmp/ctest-$1.log"; then echo passes; else echo FAILS; fi
}
# cli OUT CMD...: runs rcc-dist, output in OUT; prints the exit status.
cli() {
  local out=$1
  shift
  timeout 120 "$bin" "$@" >"$out" 2>&1
  echo $?
}
# refused STATUS: an error exit (not 0, not a signal, not a timeout).
refused() { [ "$1" -ge 1 ] && [ "$1" -le 3 ]; }

model=$tmp/model
cp -r tests/fixtures/clip-tiny-a "$model"
reset_model() { cp tests/fixtures/clip-tiny-a/* "$model"/; }

inputs=()
row() { inputs+=("| $1 | $2 | $3 | $4 | \`$(cell "$5")\` |"); }

say "job files"
n_bad_jobs=0 n_refused_jobs=0 first_job=""
job_rows=()
for f in tests/fixtures/jobs/bad_*.yaml; do
  n_bad_jobs=$((n_bad_jobs + 1))
  rc=$(cli "$tmp/out" validate "$f")
  refused "$rc" && n_refused_jobs=$((n_refused_jobs + 1))
  job_rows+=("| \`$(basename "$f")\` | $rc | \`$(cell "$(first_line "$tmp/out")")\` |")
  [ -n "$first_job" ] || first_job=$(first_line "$tmp/out")
done
t=$(unit test_job)
row "Job files (YAML): syntax, unknown keys, types, ranges, enums, duplicates, tabs, empty" \
  "$n_bad_jobs fixtures, and test_job's $(count test_job.c 'cmocka_unit_test\(') tests" \
  "\`rcc-dist validate\` on every tests/fixtures/jobs/bad_*.yaml; test_job" \
  "$(outcome "$([ "$n_refused_jobs" = "$n_bad_jobs" ] && [ "$t" = passes ] && echo 1)" \
    "$n_refused_jobs of $n_bad_jobs refused (exit 1), test_job $t")" \
  "$first_job"

say "safetensors"
t=$(unit test_safetensors)
n=$(($(count test_safetensors.c '^\s*expect_bad_entry\(') + $(count test_safetensors.c '^\s*expect_open_error\(')))
head -c 100 tests/fixtures/clip-tiny-a/model.safetensors >"$model/model.safetensors"
rc=$(cli "$tmp/out" inspect "$model")
row "safetensors header: bad length, JSON, dtypes, shapes, offsets, overlaps, duplicates, metadata" \
  "$n named cases + every 1-byte substitution (17 values) and every truncation of a small file" \
  "test_safetensors; \`rcc-dist inspect\` on a model whose model.safetensors is cut to 100 bytes" \
  "$(outcome "$(refused "$rc" && [ "$t" = passes ] && echo 1)" "refused (exit $rc), test_safetensors $t")" \
  "$(first_line "$tmp/out")"
reset_model
printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' >"$model/model.safetensors"
rc=$(cli "$tmp/out" inspect "$model")
row "safetensors header claiming 2^63 bytes" "1" "\`rcc-dist inspect\`" \
  "$(outcome "$(refused "$rc" && echo 1)" "refused before allocating (exit $rc)")" "$(first_line "$tmp/out")"
reset_model

say "config.json"
t=$(unit test_clip_config) t2=$(unit test_resource_limits)
n=$(($(count test_clip_config.c '^\s*expect_error\(') + $(count test_resource_limits.c '^\s*expect_refused\(') + 1))
sed -i 's/"hidden_size": 64/"hidden_size": 1e30/' "$model/config.json"
rc=$(cli "$tmp/out" inspect "$model")
row "config.json: bad JSON, types, activations, inconsistent or huge sizes, numbers past int, a 65 MiB file" \
  "$n" "test_clip_config, test_resource_limits; \`rcc-dist inspect\` with hidden_size 1e30" \
  "$(outcome "$(refused "$rc" && [ "$t" = passes ] && [ "$t2" = passes ] && echo 1)" \
    "refused (exit $rc), test_clip_config $t, test_resource_limits $t2")" "$(first_line "$tmp/out")"
reset_model

say "tokenizer"
t=$(unit test_tokenizer)
n=$(count test_tokenizer.c '^\s*expect_load_error\(')
echo "a photo" >"$tmp/texts.txt"
head -c 500 tests/fixtures/clip-tiny-a/vocab.json >"$model/vocab.json"
rc=$(cli "$tmp/out" embed --model "$model" --texts "$tmp/texts.txt" --out "$tmp/emb.safetensors")
row "Tokenizer files: vocab.json, merges.txt, special tokens" "$n" \
  "test_tokenizer; \`rcc-dist embed --texts\` with vocab.json cut to 500 bytes" \
  "$(outcome "$(refused "$rc" && [ "$t" = passes ] && echo 1)" "refused (exit $rc), test_tokenizer $t")" \
  "$(first_line "$tmp/out")"
reset_model

say "images"
t=$(unit test_image)
n=$(count test_image.c '^\s*assert_failed\(')
head -c 300 tests/fixtures/images/astronaut_rgb.png >"$tmp/cut.png"
rc=$(cli "$tmp/out" embed --model "$model" --images "$tmp/cut.png" --out "$tmp/emb.safetensors")
row "Images: truncated PNG/JPEG, 16-bit, CMYK, bad colour type, sides past 32768, not an image" "$n" \
  "test_image; \`rcc-dist embed --images\` on a PNG cut to 300 bytes" \
  "$(outcome "$(refused "$rc" && [ "$t" = passes ] && echo 1)" "refused (exit $rc), test_image $t")" \
  "$(first_line "$tmp/out")"

say "IDX"
t=$(unit test_dataset)
n=$(count test_dataset.c '^\s*assert_failed\(')
mkdir -p "$tmp/fmnist"
printf '\x00\x00\x08\x03\x00\x00\x27\x10\x00\x00\x00\x1c\x00\x00\x00\x1c' >"$tmp/fmnist/t10k-images-idx3-ubyte"
printf '\x00\x00\x08\x01\x00\x00\x27\x10' >"$tmp/fmnist/t10k-labels-idx1-ubyte"
rc=$(RCC_FMNIST_DIR=$tmp/fmnist cli "$tmp/out" eval --model models/clip-fmnist --data fmnist:test)
row "IDX and dataset files: truncated, gzip damaged, huge dimensions, wrong type, extra bytes; folder and CSV specs" \
  "$n" "test_dataset; \`rcc-dist eval\` on an IDX header promising 10000 images with no data" \
  "$(outcome "$(refused "$rc" && [ "$t" = passes ] && echo 1)" "refused (exit $rc), test_dataset $t")" \
  "$(first_line "$tmp/out")"

say "checkpoints (unit)"
t=$(unit test_checkpoint)
n=$(count test_checkpoint.c '^\s*expect_read_error\(')
row "Checkpoint files (HDF5): flipped byte, truncated, not HDF5, missing attributes, wrong version, dataset larger than the file" \
  "$n" "test_checkpoint (whole runs: section 2)" \
  "$(outcome "$([ "$t" = passes ] && echo 1)" "refused with RCC_ERR_FORMAT naming the file and dataset, test_checkpoint $t")" \
  "(see section 2)"

say "allocation failures"
t=$(unit test_alloc_failures)
allocs=$(grep -hoE '[0-9]+ failures injected' "$tmp/ctest-test_alloc_failures.log" | awk '{s += $1} END {print s + 0}')
row "Allocation failures (malloc, calloc, realloc, aligned_alloc, strdup wrapped at link time)" \
  "$allocs" "test_alloc_failures: the k-th allocation fails, over loading a model, a job, safetensors, tokenizing, a forward, a checkpoint, images" \
  "$(outcome "$([ "$t" = passes ] && echo 1)" "every one an error status with a message, no crash; test_alloc_failures $t")" \
  "$(grep -m 1 -oE '[a-zA-Z0-9 .-]+: [0-9]+ allocations, [0-9]+ failures.*' "$tmp/ctest-test_alloc_failures.log" | sed 's/^[0-9]*: //')"

say "fuzz seeds and regressions"
for corpus in "$src"/tests/fuzz/corpus/*/; do
  [ -d "$corpus" ] || continue
  t=$(basename "$corpus")
  dirs=("$corpus")
  [ -d "$src/tests/fuzz/regressions/$t" ] && dirs+=("$src/tests/fuzz/regressions/$t")
  files=$(find "${dirs[@]}" -type f | wc -l)
  regressions=$(find "$src/tests/fuzz/regressions/$t" -type f 2>/dev/null | wc -l)
  target=$fuzz_build/tests/fuzz/fuzz_$t
  what="Fuzzer seeds and crash regressions of \`fuzz_$t\`"
  if [ -x "$target" ]; then
    # -runs=0: run each input once, no fuzzing; the suppressions are HDF5's (tests/fuzz).
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
      LSAN_OPTIONS=suppressions=$src/tests/fuzz/lsan.supp:print_suppressions=0 \
      timeout 300 "$target" -runs=0 "${dirs[@]}" >"$tmp/out" 2>&1; then ok=1; else ok=0; fi
    row "$what" "$files ($regressions regressions)" "each input run once (libFuzzer -runs=0, ASan + UBSan)" \
      "$(outcome "$ok" "$([ $ok = 1 ] && echo 'no crash, no sanitizer report' || echo 'crash or sanitizer report')")" \
      "$(grep -m 1 -E 'ERROR|runtime error' "$tmp/out" || tail -n 1 "$tmp/out")"
  else
    row "$what" "$files ($regressions regressions)" "not replayed: no fuzz build in $fuzz_build" "-" "-"
  fi
done

# ---- 2. faults in whole runs ------------------------------------------------------------

. "$src/tests/lib/small_job.sh"
job() { # job OUTPUT [VALIDATION]: the three-stage job of tests/runs/test_ranks_and_resume.sh
  small_job models/clip-fmnist "$1" 64 500 "${2:-}"
}
# run OUT JOB [ENV...]: the job on 2 ranks; prints the exit status, output in OUT.
run() {
  local out=$1 file=$2
  shift 2
  env "$@" timeout 300 "$mpiexec" -n 2 "$bin" "$file" >"$out" 2>&1
  echo $?
}
faults=()
frow() { faults+=("| $1 | $2 | \`$(cell "$3")\` |"); }
# resumed_from LOG: "resuming after stage K", or "starts over" when the run did not resume.
resumed_from() { grep -m 1 -o "resuming after stage [0-9]*" "$1" || echo "starts over"; }
# same DIR: the run's final report and model equal the uninterrupted run's, bit for bit.
same() { "$compare" "$tmp/ref" "$1" --exact >"$tmp/cmp" 2>&1; }

say "reference run"
job "$tmp/ref" >"$tmp/ref.yaml"
rc=$(run "$tmp/run.log" "$tmp/ref.yaml")
if [ "$rc" != 0 ]; then
  say "the reference run failed (exit $rc):"
  cat "$tmp/run.log" >&2
  exit 1
fi

# Rank R killed in stage K, then the same command again.
kill_and_resume() {
  local r=$1 k=$2 d=$tmp/kill-$1-$2 start secs rc rc2 resumed ok
  job "$d" >"$d.yaml"
  start=$(date +%s)
  rc=$(run "$tmp/run.log" "$d.yaml" RCC_FAULT=rank:$r,stage:$k)
  secs=$(($(date +%s) - start))
  local seen
  seen=$(first_line "$tmp/run.log")
  rc2=$(run "$tmp/resume.log" "$d.yaml")
  resumed=$(resumed_from "$tmp/resume.log")
  local want="resuming after stage $((k - 1))"
  [ "$k" = 1 ] && want="starts over"
  ok=0
  [ "$rc" != 0 ] && [ "$rc2" = 0 ] && [ "$resumed" = "$want" ] && same "$d" && ok=1
  frow "Rank $r killed (\`RCC_FAULT=rank:$r,stage:$k\`) in stage $k of 3" \
    "$(outcome $ok "job ends in ${secs} s (exit $rc); re-run: $resumed, exit $rc2, final report and model $(same "$d" && echo identical || echo DIFFERENT) to an uninterrupted run")" \
    "$seen"
}
for k in 1 2 3; do
  say "rank 1 killed in stage $k"
  kill_and_resume 1 "$k"
done
say "rank 0 killed in stage 2"
kill_and_resume 0 2

# A checkpoint damaged after a complete run, then the same command again.
damage() {
  local what=$1 d=$tmp/$2 rc f size
  job "$d" >"$d.yaml"
  rc=$(run "$tmp/run.log" "$d.yaml")
  f=$d/checkpoints/stage-3.h5
  if [ "$rc" != 0 ] || [ ! -f "$f" ]; then
    frow "$what" "$(outcome 0 "the undamaged run failed (exit $rc)")" "$(first_line "$tmp/run.log")"
    return
  fi
  size=$(stat -c %s "$f")
  case $2 in
  truncated) truncate -s $((size / 2)) "$f" ;;
  overwritten) printf '\xde\xad\xbe\xef\xde\xad\xbe\xef' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none ;;
  esac
  rc=$(run "$tmp/run.log" "$d.yaml")
  local resumed ok=0
  resumed=$(resumed_from "$tmp/run.log")
  [ "$rc" = 0 ] && [ "$resumed" = "resuming after stage 2" ] && same "$d" && ok=1
  frow "$what" "$(outcome $ok "re-run: reported and skipped, $resumed, exit $rc, final report $(same "$d" && echo identical || echo DIFFERENT)")" \
    "$(first_line "$tmp/run.log")"
}
say "damaged checkpoints"
damage "Newest checkpoint (stage-3.h5) truncated to half" truncated
damage "Newest checkpoint (stage-3.h5): 8 bytes overwritten in the middle" overwritten

# Disk full: a small tmpfs (root) or else RLIMIT_FSIZE (ulimit -f, per file).
c1=$(stat -c %s "$tmp/ref/checkpoints/stage-1.h5")
c2=$(stat -c %s "$tmp/ref/checkpoints/stage-2.h5")
ckpts=$(du -sb "$tmp/ref/checkpoints" | cut -f 1)
total=$(du -sb "$tmp/ref" | cut -f 1)
largest_ckpt=$(stat -c %s "$tmp"/ref/checkpoints/stage-*.h5 | sort -n | tail -n 1)
largest=$(find "$tmp/ref" -type f -printf '%s\n' | sort -n | tail -n 1)
mkdir -p "$tmp/probe"
use_tmpfs=0
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$tmp/probe" 2>/dev/null; then
  umount "$tmp/probe"
  use_tmpfs=1
fi
disk_full() { # disk_full WHAT BYTES: the job with BYTES of room, then again with room
  local what=$1 bytes=$2 d rc rc2 kept=1 f how
  mkdir -p "$tmp/full-$what"
  if [ "$use_tmpfs" = 1 ] && mount -t tmpfs -o size="$bytes" tmpfs "$tmp/full-$what"; then
    mounted=$tmp/full-$what
    how="tmpfs of $((bytes / 1024)) KiB"
    d=$tmp/full-$what/run
    job "$d" >"$tmp/full-$what.yaml"
    rc=$(run "$tmp/run.log" "$tmp/full-$what.yaml")
  else
    how="ulimit -f $((bytes / 1024)) (KiB per file)"
    d=$tmp/full-$what/run
    job "$d" >"$tmp/full-$what.yaml"
    rc=$( (ulimit -f $((bytes / 1024)) && run "$tmp/run.log" "$tmp/full-$what.yaml"))
  fi
  local seen own
  seen=$(first_line "$tmp/run.log")
  # Open MPI's I/O layer may speak first: rcc-dist's own error line too.
  own=$(grep -m 1 'rcc-dist.*error' "$tmp/run.log")
  [ -n "$own" ] && [ "$own" != "$seen" ] && seen="$seen, then: $own"
  # Nothing written before the failure is lost: every checkpoint there reads back whole,
  # checked by resuming from it once there is room again.
  local before
  before=$(find "$d/checkpoints" -maxdepth 1 -name 'stage-*.h5' 2>/dev/null | wc -l)
  [ -n "$mounted" ] && mount -o remount,size=1g "$mounted"
  rc2=$(run "$tmp/resume.log" "$tmp/full-$what.yaml")
  local resumed ok=0
  resumed=$(resumed_from "$tmp/resume.log")
  grep -q "corrupt" "$tmp/resume.log" && kept=0
  [ "$rc" != 0 ] && [ "$rc2" = 0 ] && [ "$kept" = 1 ] && same "$d" && ok=1
  frow "Disk full while writing $what ($how)" \
    "$(outcome $ok "job fails (exit $rc) with $before complete checkpoint(s) kept; with room again: $resumed, exit $rc2, $([ $kept = 1 ] && echo 'no checkpoint lost' || echo 'A CHECKPOINT WAS LOST'), final report $(same "$d" && echo identical || echo DIFFERENT)")" \
    "$seen"
  if [ -n "$mounted" ]; then umount "$mounted" && mounted=""; fi
}
say "disk full"
if [ "$use_tmpfs" = 1 ]; then
  # Room for the stage-1 checkpoint and the log, not for stage 2's; then room for every
  # checkpoint and half the outputs.
  disk_full checkpoints $((c1 + c2 / 2 + 65536))
  disk_full outputs $((ckpts + (total - ckpts) / 2))
else
  disk_full checkpoints $((c1 / 2))
  disk_full outputs $(((largest_ckpt + largest) / 2))
fi

say "NaN in a stage"
for v in "performance_threshold: 0.5" "performance_threshold: 0.5, on_fail: abort"; do
  d=$tmp/nan-$(echo "$v" | tr -dc a-z | tail -c 5)
  job "$d" "$v" >"$d.yaml"
  rc=$(run "$tmp/run.log" "$d.yaml" RCC_FAULT=nan,stage:2)
  # Every attempt of stage 2: "decision (note)".
  attempts=$(jq -r '[.stages[1].attempts[] | "\(.decision) (\(.note))"] | join(", ")' \
    "$d/report.json" 2>/dev/null)
  if [[ $v == *abort* ]]; then want=3; else want=0; fi
  ok=0
  [ "$rc" = "$want" ] && [[ $attempts == *non-finite* ]] && ok=1
  frow "NaN out of stage 2 (\`RCC_FAULT=nan,stage:2\`), validation {$v}" \
    "$(outcome $ok "exit $rc; report.json written; stage 2 attempts: ${attempts:-none in report.json}")" \
    "$(grep -m 1 'error' "$tmp/run.log" || grep -m 1 'nullu/.*attempt' "$tmp/run.log")"
done

say "SIGTERM"
d=$tmp/term
# 5000 validation images: every stage lasts long enough for the signal to land inside one
small_job models/clip-fmnist "$d" 64 5000 >"$d.yaml"
small_job models/clip-fmnist "$tmp/term-ref" 64 5000 >"$tmp/term-ref.yaml"
rc=$(run "$tmp/term-ref.log" "$tmp/term-ref.yaml")
[ "$rc" = 0 ] || say "the uninterrupted 5000-image run failed (exit $rc)"
same_term() { "$compare" "$tmp/term-ref" "$d" --exact >"$tmp/cmp" 2>&1; }
timeout 300 "$mpiexec" -n 2 "$bin" "$d.yaml" >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  [ -f "$d/checkpoints/stage-1.h5" ] && break
  sleep 0.1
done
kill -TERM "$pid"
start=$(date +%s)
wait "$pid"
rc=$?
secs=$(($(date +%s) - start))
sleep 1
left=$(pgrep -f "$bin $d.yaml" | wc -l)
rc2=$(run "$tmp/resume.log" "$d.yaml")
resumed=$(resumed_from "$tmp/resume.log")
ok=0
[ "$rc" != 0 ] && [ "$left" = 0 ] && [ "$rc2" = 0 ] && same_term && ok=1
frow "SIGTERM to mpiexec after the stage-1 checkpoint (5000 validation images)" \
  "$(outcome $ok "job ends in $secs s (exit $rc), $left rank process(es) left; re-run: $resumed, exit $rc2, final report $(same_term && echo identical || echo DIFFERENT)")" \
  "$(first_line "$tmp/run.log")"

# ---- the document ------------------------------------------------------------------------

command="tests/reliability/run.sh${1:+ $1}"
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$src" diff --quiet HEAD 2>/dev/null || commit="$commit + local changes"
cat <<EOF
# Reliability record

What rcc-dist does with bad input and injected faults, tried rather than hoped. Produced
by \`$command > docs/RELIABILITY.md\`;
re-run it to refresh this file (a few minutes on 2 cores).

- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit
- Machine: $(nproc) cores, $(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), $("$mpiexec" --version 2>/dev/null | head -n 1)
- Unexpected outcomes: $unexpected

"First line" is the first error, warning or fault line the user sees on the terminal
(\$TMP: the script's scratch directory).

## 1. Bad input

| Input | Cases | How | Outcome | First line (a sample) |
|---|---|---|---|---|
EOF
printf '%s\n' "${inputs[@]}"
cat <<EOF

Every bad job fixture, as \`rcc-dist validate FILE\` reports it (exit status, first line):

| File | Exit | First line |
|---|---|---|
EOF
printf '%s\n' "${job_rows[@]}"
cat <<EOF

## 2. Faults in whole runs

The job of \`tests/runs/test_ranks_and_resume.sh\` (wanda 50%, residual rank, closed-form
alphaedit on the encoder layers of models/clip-fmnist) on 2 ranks; "identical" is
\`compare_runs --exact\` against an uninterrupted run of the same job.

| Fault | Outcome | First line |
|---|---|---|
EOF
printf '%s\n' "${faults[@]}"
cat <<EOF

## Not covered

- Allocation failures inside the libraries rcc-dist uses (libyaml, cJSON, HDF5, OpenBLAS,
  libjpeg, Open MPI): only rcc-dist's own calls are wrapped.
- Damaged MPI messages, GPU faults (the CUDA backend is not run here), lost Slurm nodes
  (requeue is tested by tests/slurm/test_slurm_requeue.sh).
- SIGTERM and SIGINT end the ranks at once (nothing is flushed or cleaned up); rank 0 says
  where the committed checkpoints are and that a re-run resumes after the last one. Started
  directly (tests/cli/test_cli.sh checks it) or by srun the message shows; under mpiexec it
  can be lost, as mpiexec stops forwarding the ranks' output when it is signalled.
EOF
[ "$unexpected" = 0 ]
