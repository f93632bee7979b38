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

#ifdef __cplusplus
}
#endif
