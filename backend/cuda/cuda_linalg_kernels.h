/* Private to the CUDA backend: the launchers of cuda_linalg_kernels.cu. Each queues its
 * kernel on `stream` and returns the launch status. */
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out (count) = (float)in (count). */
cudaError_t rcc_cuda_f64_to_f32_launch(cudaStream_t stream, float *out, const double *in,
                                       int64_t count);
/* out (m) = row dots of A and B (m,n). */
cudaError_t rcc_cuda_row_dots_f64_launch(cudaStream_t stream, double *out, const double *A,
                                         const double *B, int m, int n);
/* scores (m,n) as rcc_backend_prune_scores; col_scale and mask may be NULL. */
cudaError_t rcc_cuda_prune_scores_launch(cudaStream_t stream, float *scores, const float *W,
                                         const double *col_scale, const uint8_t *mask, int m,
                                         int n);
/* The SparseGPT in-block sweep of rcc_backend_obs_sweep_f64 (arguments checked there). */
#define RCC_CUDA_NM_MAX_M 64 /* = RCC_BACKEND_NM_MAX_M: the per-thread group of scores */
cudaError_t rcc_cuda_obs_sweep_f64_launch(cudaStream_t stream, double *Wt, int ldw, uint8_t *maskt,
                                          double *errt, const double *Hinv, int ldh, int m,
                                          int cols, int nm_n, int nm_m);

#ifdef __cplusplus
}
#endif
