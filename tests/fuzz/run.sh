#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for a set time, one after the other, at low
# priority. Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET (300)] [TARGET...]
# Seeds come from tests/fuzz/corpus/TARGET (read only); what the fuzzer learns goes to
# $RCC_FUZZ_WORK/TARGET/corpus (default /tmp/rcc-fuzz), kept between runs, and a crashing
# input to $RCC_FUZZ_WORK/TARGET/crash-*: copy it to tests/fuzz/regressions/TARGET/ with
# the fix, and fuzz_replay_TARGET replays it in every build from then on.
# Exit status: 0 when no target found anything, 1 otherwise (every target still runs).
set -u
build=${1:?usage: run.sh BUILD_DIR [SECONDS] [TARGET...]}
seconds=${2:-300}
shift $(( $# < 2 ? $# : 2 ))
here=$(cd "$(dirname "$0")" && pwd)
work=${RCC_FUZZ_WORK:-/tmp/rcc-fuzz}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors job sweep clip_config tokenizer image idx checkpoint)

# Largest input per target: big enough for its seeds, small enough that each run is fast
# (HDF5 inputs are patch lists, 3 bytes each, on a small checkpoint).
declare -A max_len=([safetensors]=4096 [job]=8192 [sweep]=4096 [clip_config]=4096
                    [tokenizer]=20000 [image]=8192 [idx]=1024 [checkpoint]=96)

failed=()
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin not built (cmake -DRCC_FUZZ=ON with clang)" >&2
    failed+=("$t (not built)")
    continue
  fi
  mkdir -p "$work/$t/corpus"
  dict=()
  [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
  echo "== fuzz_$t: ${seconds}s"
  # Leaks are checked by libFuzzer after each input (lsan.supp: HDF5's own); halt_on_error
  # makes any UBSan report a crash with an input saved.
  if ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$here/lsan.supp:print_suppressions=0 \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     nice -n 10 "$bin" -max_total_time="$seconds" -max_len="${max_len[$t]:-4096}" \
       -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
       -artifact_prefix="$work/$t/" "$work/$t/corpus" "$here/corpus/$t" \
       >"$work/$t/log.txt" 2>&1; then
    grep -E '^stat::(number_of_executed_units|new_units_added)|^#[0-9]+.*DONE' "$work/$t/log.txt"
  else
    failed+=("$t")
    echo "fuzz_$t FOUND A PROBLEM: see $work/$t/log.txt"
    grep -E 'ERROR|SUMMARY|Test unit written' "$work/$t/log.txt" | head -5
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: problems in: ${failed[*]}"
  exit 1
fi
echo "run.sh: ${#targets[@]} targets, ${seconds}s each, nothing found"
