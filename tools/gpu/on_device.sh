#!/usr/bin/env bash
# Runs on the lent GPU machine, from the repository root, after tools/gpu/bundle.sh here:
#
#   run(command="bash tools/gpu/on_device.sh tests", carry=[".gpu"])   # gpu tests, ~2 min
#   run(command="bash tools/gpu/on_device.sh bench", carry=[".gpu"])   # bench/gpu, ~8 min
#
# Unpacks .gpu/bundle.tar.xz, finds the device's own CUDA libraries (toolkit or PyTorch's
# wheels), checks that every program resolves all its libraries, then runs every gpu test
# program (or bench/gpu/run.sh) and writes the logs and a summary.md to $OUT (.gpu/out
# outside the device tool). Exit status: 0 when everything passed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
what=${1:-tests}
out=${OUT:-$root/.gpu/out}
mkdir -p "$out"
summary=$out/summary.md
b=/tmp/rcc-gpu
rm -rf "$b" && mkdir -p "$b"
xz -dc "$root/.gpu/bundle.tar.xz" | tar -C "$b" -xf - || { echo "cannot unpack the bundle"; exit 1; }

# The programs look for fixtures and scratch space under the paths they were built at.
src=$(cat "$b/source_dir")
if [ "$src" != "$root" ] && [ ! -e "$src" ]; then
  mkdir -p "$(dirname "$src")" && ln -s "$root" "$src"
fi
if [ -d "$root/build-gpu" ] && [ ! -L "$root/build-gpu" ]; then
  echo "on_device.sh: $root/build-gpu is a real build directory: run this on the device machine"
  exit 2
fi
rm -f "$root/build-gpu" && ln -s "$b/build-gpu" "$root/build-gpu"
export RCC_FMNIST_DIR=$b/fmnist OMP_WAIT_POLICY=PASSIVE

# CUDA's libraries from the device itself: the toolkit's folders, then PyTorch's wheels.
search=(/usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib /usr/local/cuda*/lib
        /usr/lib/x86_64-linux-gnu)
search+=($(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null))
dirs=$b/lib
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcusolver.so.12 \
  libcusparse.so.12 libnvJitLink.so.13 libnccl.so.2; do
  found=$(find "${search[@]}" -name "$lib" -print -quit 2>/dev/null)
  [ -n "$found" ] && [[ ":$dirs:" != *":$(dirname "$found"):"* ]] && dirs=$dirs:$(dirname "$found")
done
export LD_LIBRARY_PATH=$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

{
  echo "# GPU session $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cat "$b/commit")"
  echo
  echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
  cuda_dirs=${dirs#"$b/lib"}
  echo "- CUDA libraries from: ${cuda_dirs#:}"
} | tee "$summary"

missing=$(for p in "$b"/build-gpu/rcc-dist "$b"/build-gpu/tests/* "$b"/build-gpu/bench/*/*; do
  [ -x "$p" ] && ldd "$p" | grep 'not found' | sed "s|^|$(basename "$p"): |"
done)
if [ -n "$missing" ]; then
  echo "- unresolved libraries:" | tee -a "$summary"
  echo "$missing" | sort -u | tee -a "$summary"
  exit 1
fi

status=0
case $what in
tests)
  echo -e "\n| test | result | seconds |\n|---|---|---|" | tee -a "$summary"
  for t in "$b"/build-gpu/tests/test_*; do
    name=$(basename "$t")
    start=$(date +%s%N)
    timeout 240 "$t" >"$out/$name.log" 2>&1
    rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    case $rc in 0) r=passed ;; 77) r="skipped (no GPU?)"; status=1 ;; 124) r="timed out"; status=1 ;;
    *) r="FAILED ($rc)"; status=1 ;; esac
    printf '| %s | %s | %d.%d |\n' "$name" "$r" $((ms / 1000)) $((ms % 1000 / 100)) | tee -a "$summary"
  done
  ;;
bench)
  timeout 560 bash "$root/bench/gpu/run.sh" --build "$b/build-gpu" --out "$out" 2>&1 |
    tee "$out/bench.log"
  status=${PIPESTATUS[0]}
  ;;
*) echo "on_device.sh: 'tests' or 'bench', not '$what'"; exit 2 ;;
esac
exit $status
