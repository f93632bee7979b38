/* CUDA kernels of the compression ops: the pruning masks (row top-k by radix selection,
 * threshold, N:M), the mask and row scalings, and the triangle fills that complete cuSOLVER's
 * Cholesky results. Each computes what its twin in backend/cpu/cpu_compress_ops.c computes,
 * with the same order of scores (backend.h), so the masks agree exactly;
 * tests/gpu/test_backend_cuda_compress.c compares the two. */
#include "backend/cuda/cuda_compress_kernels.h"

#define TOPK_THREADS 256 /* per row of the top-k selection */
#define RADIX_BITS 8     /* key bits decided per pass of the selection */
#define RADIX_BINS (1 << RADIX_BITS)
#define ELEM_THREADS 256
#define ELEM_MAX_BLOCKS 65536 /* beyond this the grid-stride loops take over */

/* backend.h's order of scores as an unsigned key, larger = ranks higher: every bit of a
 * negative float flipped, only the sign bit of a positive one, after making -0 into +0 (the
 * two zeros tie, as they compare equal). As score_key in cpu_compress_ops.c. */
__device__ static uint32_t score_key(float x) {
  if (x == 0.0f) x = 0.0f;
  uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

/* The score key with the tie rule in the low half: the higher index j gets the larger key
 * (as compress/prune.h, which prunes the lower index first), and distinct indices give
 * distinct keys. */
__device__ static uint64_t rank_key(float x, int j) {
  return (uint64_t)score_key(x) << 32 | (uint32_t)j;
}

/* One block per row of scores (m,n). Radix selection of the keep-th largest rank key,
 * RADIX_BITS at a time from the top: each pass counts, in a shared histogram, the keys that
 * agree with the bits decided so far, then thread 0 walks the bins from the top to the one
 * holding the keep-th key. The row is read from global memory on every pass, so n has no
 * limit. A pass whose chosen bin holds exactly the keys still wanted ends the search early:
 * every key in it stays, so the decided bits followed by zeros are a threshold already.
 * The row is then key >= threshold, exactly `keep` ones since keys are distinct. */
__global__ static void row_topk_kernel(const float *scores, int n, int keep, uint8_t *mask) {
  __shared__ unsigned int hist[RADIX_BINS];
  __shared__ unsigned long long shared_prefix;
  __shared__ int shared_remaining, shared_done;
  const float *s = scores + (size_t)blockIdx.x * n;
  uint8_t *out = mask + (size_t)blockIdx.x * n;
  uint64_t prefix = 0, decided = 0; /* the bits decided so far and which bits those are */
  int remaining = keep;             /* keys still to keep among those agreeing with prefix */
  for (int shift = 64 - RADIX_BITS; shift >= 0; shift -= RADIX_BITS) {
    for (int b = threadIdx.x; b < RADIX_BINS; b += blockDim.x)
      hist[b] = 0;
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      const uint64_t key = rank_key(s[j], j);
      if ((key & decided) == prefix) atomicAdd(&hist[(key >> shift) & (RADIX_BINS - 1)], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      /* remaining <= the keys counted, so the walk stops at a bin >= 0. */
      int above = 0, b = RADIX_BINS - 1;
      while (above + (int)hist[b] < remaining) {
        above += (int)hist[b];
        b--;
      }
      shared_prefix = prefix | (uint64_t)b << shift;
      shared_remaining = remaining - above;
      shared_done = (int)hist[b] == remaining - above;
    }
    __syncthreads();
    /* shared_* are rewritten only after two more barriers, when every thread has read them. */
    prefix = shared_prefix;
    remaining = shared_remaining;
    decided |= (uint64_t)(RADIX_BINS - 1) << shift;
    if (shared_done) break; /* the same value on every thread */
  }
  for (int j = threadIdx.x; j < n; j += blockDim.x)
    out[j] = rank_key(s[j], j) >= prefix;
}

__global__ static void threshold_mask_kernel(const float *scores, int64_t count, float threshold,
                                             uint8_t *mask) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    mask[i] = fabsf(scores[i]) > threshold; /* false for NaN */
}

/* One thread per score: its rank within its group of M (groups start at multiples of M,
 * since n % M == 0) is the number of group mates with a larger rank key. */
__global__ static void nm_mask_kernel(const float *scores, int64_t count, int N, int M,
                                      uint8_t *mask) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t g = i - i % M;
    const int j = (int)(i - g);
    const uint64_t key = rank_key(scores[i], j);
    int rank = 0;
    for (int t = 0; t < M; t++)
      rank += rank_key(scores[g + t], t) > key;
    mask[i] = rank < N;
  }
}

__global__ static void apply_mask_kernel(float *W, const uint8_t *mask, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    if (!mask[i]) W[i] = 0.0f; /* not W * 0: that keeps NaN and gives -0 */
}

__global__ static void scale_rows_kernel(float *W, const float *alpha, int64_t count, int n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    W[i] *= alpha[i / n];
}

/* One thread per entry (i,j) of A (n,n); only the strict triangle opposite the kept one is
 * written, from the kept triangle, which no thread writes. */
__global__ static void fill_triangle_kernel(double *A, int n, bool lower_kept, bool mirror) {
  const int64_t count = (int64_t)n * n;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < count;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = idx / n, j = idx % n;
    if (lower_kept ? j > i : j < i) A[idx] = mirror ? A[j * n + i] : 0.0;
  }
}

static unsigned elem_blocks(int64_t n) {
  int64_t blocks = (n + ELEM_THREADS - 1) / ELEM_THREADS;
  return (unsigned)(blocks < ELEM_MAX_BLOCKS ? blocks : ELEM_MAX_BLOCKS);
}

extern "C" cudaError_t rcc_cuda_row_topk_mask_launch(cudaStream_t stream, const float *scores,
                                                     int m, int n, int keep, uint8_t *mask) {
  /* Nothing to select: the selection needs 0 < keep < n (a key to find and one to drop). */
  if (keep == 0 || keep == n) return cudaMemsetAsync(mask, keep == n, (size_t)m * n, stream);
  row_topk_kernel<<<m, TOPK_THREADS, 0, stream>>>(scores, n, keep, mask);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_threshold_mask_launch(cudaStream_t stream, const float *scores,
                                                      int64_t count, float threshold,
                                                      uint8_t *mask) {
  threshold_mask_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(scores, count, threshold,
                                                                         mask);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_nm_mask_launch(cudaStream_t stream, const float *scores, int m,
                                               int n, int N, int M, uint8_t *mask) {
  const int64_t count = (int64_t)m * n;
  nm_mask_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(scores, count, N, M, mask);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_apply_mask_launch(cudaStream_t stream, float *W,
                                                  const uint8_t *mask, int64_t count) {
  apply_mask_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(W, mask, count);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_scale_rows_launch(cudaStream_t stream, float *W, const float *alpha,
                                                  int m, int n) {
  const int64_t count = (int64_t)m * n;
  scale_rows_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(W, alpha, count, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_fill_triangle_f64_launch(cudaStream_t stream, double *A, int n,
                                                         bool lower_kept, bool mirror) {
  fill_triangle_kernel<<<elem_blocks((int64_t)n * n), ELEM_THREADS, 0, stream>>>(A, n, lower_kept,
                                                                                 mirror);
  return cudaGetLastError();
}
