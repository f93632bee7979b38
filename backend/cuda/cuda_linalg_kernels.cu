/* The element-wise and row-reduction kernels behind the float64 stage ops: cuBLAS has no
 * float64 -> float32 conversion, no batched row dot of two matrices and nothing that builds
 * pruning scores. Element-wise kernels use a grid-stride loop over a capped grid; the row
 * dot gives each row one block and reduces in shared memory. */
#include "backend/cuda/cuda_linalg_kernels.h"

#define ELEM_THREADS 256
#define ELEM_MAX_BLOCKS 65536 /* beyond this the grid-stride loop takes over */
#define DOT_THREADS 256       /* a power of two: the tree reduction halves it */
#define SWEEP_THREADS 128     /* rows per block: ViT-B/32 layers have 768 or 3072 */

static unsigned elem_blocks(int64_t count) {
  const int64_t blocks = (count + ELEM_THREADS - 1) / ELEM_THREADS;
  return (unsigned)(blocks < ELEM_MAX_BLOCKS ? blocks : ELEM_MAX_BLOCKS);
}

__global__ static void f64_to_f32_kernel(float *out, const double *in, int64_t count) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = (float)in[i];
}

__global__ static void row_dots_kernel(double *out, const double *A, const double *B, int n) {
  __shared__ double part[DOT_THREADS];
  const double *a = A + (size_t)blockIdx.x * n, *b = B + (size_t)blockIdx.x * n;
  double s = 0.0;
  for (int j = threadIdx.x; j < n; j += DOT_THREADS)
    s += a[j] * b[j];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int half = DOT_THREADS / 2; half > 0; half /= 2) {
    if ((int)threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}

__global__ static void prune_scores_kernel(float *scores, const float *W, const double *col_scale,
                                           const uint8_t *mask, int64_t count, int n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const double c = col_scale ? col_scale[i % n] : 1.0;
    scores[i] = (mask && !mask[i]) ? -1.0f : (float)(fabs((double)W[i]) * c);
  }
}

/* One thread per row of W: the sweep is sequential along the row and rows are
 * independent, and in the transposed layout neighbouring threads load neighbouring
 * addresses. Every thread reads the same Hinv entry at a time, a broadcast. __dmul_rn and
 * __dsub_rn keep nvcc from fusing the update into an FMA (the host loop rounds twice). */
__global__ static void obs_sweep_kernel(double *Wt, int ldw, uint8_t *maskt, double *errt,
                                        const double *Hinv, int ldh, int m, int cols, int nm_n,
                                        int nm_m) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m) return;
  for (int i = 0; i < cols; i++) {
    const double *h = Hinv + (size_t)i * ldh;
    if (nm_n > 0 && i % nm_m == 0) {
      double score[RCC_CUDA_NM_MAX_M];
      for (int j = 0; j < nm_m; j++) {
        const double x = Wt[(size_t)(i + j) * ldw + r], d = Hinv[(size_t)(i + j) * ldh + i + j];
        score[j] = __ddiv_rn(__dmul_rn(x, x), __dmul_rn(d, d));
      }
      for (int j = 0; j < nm_m; j++) {
        int rank = 0;
        for (int k = 0; k < nm_m; k++)
          rank += score[k] < score[j] || (score[k] == score[j] && k < j);
        maskt[(size_t)(i + j) * m + r] = rank >= nm_m - nm_n;
      }
    }
    if (maskt[(size_t)i * m + r]) {
      errt[(size_t)i * m + r] = 0.0;
      continue;
    }
    const double e = __ddiv_rn(Wt[(size_t)i * ldw + r], h[i]);
    errt[(size_t)i * m + r] = e;
    Wt[(size_t)i * ldw + r] = 0.0;
    for (int j = i + 1; j < cols; j++) {
      double *w = Wt + (size_t)j * ldw + r;
      *w = __dsub_rn(*w, __dmul_rn(e, h[j]));
    }
  }
}

extern "C" cudaError_t rcc_cuda_f64_to_f32_launch(cudaStream_t stream, float *out, const double *in,
                                                  int64_t count) {
  f64_to_f32_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(out, in, count);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_row_dots_f64_launch(cudaStream_t stream, double *out,
                                                    const double *A, const double *B, int m,
                                                    int n) {
  row_dots_kernel<<<m, DOT_THREADS, 0, stream>>>(out, A, B, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_prune_scores_launch(cudaStream_t stream, float *scores,
                                                    const float *W, const double *col_scale,
                                                    const uint8_t *mask, int m, int n) {
  const int64_t count = (int64_t)m * n;
  prune_scores_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(scores, W, col_scale, mask,
                                                                       count, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_obs_sweep_f64_launch(cudaStream_t stream, double *Wt, int ldw,
                                                     uint8_t *maskt, double *errt,
                                                     const double *Hinv, int ldh, int m, int cols,
                                                     int nm_n, int nm_m) {
  const unsigned blocks = (unsigned)((m + SWEEP_THREADS - 1) / SWEEP_THREADS);
  obs_sweep_kernel<<<blocks, SWEEP_THREADS, 0, stream>>>(Wt, ldw, maskt, errt, Hinv, ldh, m, cols,
                                                         nm_n, nm_m);
  return cudaGetLastError();
}
