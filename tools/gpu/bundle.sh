#!/usr/bin/env bash
# Prepares a GPU session: builds what runs on the lent GPU machine here, where the build
# dependencies are, and packs it with every shared library it needs that such a machine
# lacks. That machine (see the device tool's KINDS.md) has the CUDA toolkit, PyTorch and no
# network, but none of Open MPI, HDF5, libyaml, OpenBLAS, cJSON or Fashion-MNIST.
#
#   tools/gpu/bundle.sh [--build DIR] [--arch 90] [--train-images 2000]
#
# Writes .gpu/bundle.tar.xz (ignored by git), about 25 MB, to be named in the device call's
# `carry`; tools/gpu/on_device.sh unpacks and runs it there. In the tarball:
#   build-gpu/...  rcc-dist, the gpu test programs and the benchmark programs, at the same
#                  paths under the build directory as here (the test programs find their
#                  fixtures and scratch space through paths compiled in: on_device.sh links
#                  this checkout's path to the device's copy of it);
#   lib/           the shared libraries ldd lists, except glibc's own, libstdc++/libgcc and
#                  the CUDA libraries (cudart, cuBLAS, cuSOLVER, cuSPARSE, nvJitLink, NCCL),
#                  which the device has in the same major versions;
#   fmnist/        the Fashion-MNIST test set and the first --train-images training images
#                  (the full training set alone would fill most of a call's 64 MiB);
#   source_dir     this checkout's path.
# The build is Release with CUDA code for sm_90 only (H100 and H200), -Werror as in CI.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build-gpu
arch=90
train_images=2000
while [ $# -gt 0 ]; do
  case $1 in
  --build) build=$2; shift 2 ;;
  --arch) arch=$2; shift 2 ;;
  --train-images) train_images=$2; shift 2 ;;
  *) echo "bundle.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DRCC_WERROR=ON >/dev/null
grep -q 'define RCC_HAVE_CUDA 1' "$build/generated/rcc_version.h" ||
  { echo "bundle.sh: this configuration has no CUDA (is the toolkit installed?)" >&2; exit 1; }

# What travels: rcc-dist, every gpu-labelled test and every benchmark program (built alone:
# the other tests do not travel).
targets=(rcc-dist)
for src in "$root"/tests/gpu/test_*.c; do targets+=("$(basename "${src%.c}")"); done
for src in "$root"/bench/*/bench_*.c; do targets+=("$(basename "${src%.c}")"); done
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
mapfile -t programs < <(
  cd "$build"
  echo rcc-dist
  for t in "${targets[@]:1}"; do find tests bench -maxdepth 2 -type f -name "$t" -print -quit; done
)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dest=$stage/build-gpu
for p in "${programs[@]}"; do
  [ -x "$build/$p" ] || { echo "bundle.sh: $build/$p was not built" >&2; exit 1; }
  mkdir -p "$dest/$(dirname "$p")"
  cp "$build/$p" "$dest/$p"
done

# The libraries the device lacks: everything ldd resolves except glibc, the compiler's
# runtime and CUDA's libraries.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|librt\.|libdl\.|libresolv|libstdc\+\+|libgcc_s|libcuda\.|libcudart|libcublas|libcublasLt|libcusolver|libcusparse|libnvJitLink|libnccl)'
mkdir -p "$stage/lib"
for p in "${programs[@]}"; do
  ldd "$build/$p" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] && continue
  cp -L "$path" "$stage/lib/$name"
done

# Fashion-MNIST: the test set whole, the training set cut to its first images (IDX files:
# a big-endian count at bytes 4..7, then fixed-size records).
fm=${RCC_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
mkdir -p "$stage/fmnist"
cp "$fm"/t10k-*-idx?-ubyte.gz "$stage/fmnist/"
count=$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((train_images >> 24 & 255)) \
  $((train_images >> 16 & 255)) $((train_images >> 8 & 255)) $((train_images & 255)))
cut_idx() ( # file header_bytes record_bytes; head closing its pipe early is the point here
  set +o pipefail
  { zcat "$fm/$1" | head -c 4; printf "$count"
    zcat "$fm/$1" | tail -c +9 | head -c $(($2 - 8 + train_images * $3)); } | gzip -9 >"$stage/fmnist/$1"
)
cut_idx train-images-idx3-ubyte.gz 16 784
cut_idx train-labels-idx1-ubyte.gz 8 1

echo "$root" >"$stage/source_dir"
{ git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown; } | tr -d '\n' >"$stage/commit"
git -C "$root" diff --quiet HEAD 2>/dev/null || echo " + uncommitted changes" >>"$stage/commit"
mkdir -p "$root/.gpu"
tar -C "$stage" -cf - . | xz -T0 -6 >"$root/.gpu/bundle.tar.xz"
echo "bundle.sh: $(du -h "$root/.gpu/bundle.tar.xz" | cut -f1) in .gpu/bundle.tar.xz:" \
  "${#programs[@]} programs, $(ls "$stage/lib" | wc -l) libraries, commit $(cat "$stage/commit")"
echo "bundle.sh: working tree + bundle must stay under the device call's 64 MiB"
