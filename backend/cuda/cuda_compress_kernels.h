/* Private to the CUDA backend: C-callable launchers for the kernels of
 * cuda_compress_kernels.cu (pruning masks, scalings, triangle fills of the Cholesky ops).
 * Pointers are device memory, arguments already checked by backend.c, sizes non-zero; each
 * launcher queues its kernel on `stream` and returns the launch status (cudaGetLastError). */
#pragma once
#include <cuda_runtime.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* mask (m,n): the keep highest-ranked scores (m,n) of each row (backend.h's order), any n. */
cudaError_t rcc_cuda_row_topk_mask_launch(cudaStream_t stream, const float *scores, int m, int n,
                                          int keep, uint8_t *mask);
/* mask (count) = |scores| > threshold. */
cudaError_t rcc_cuda_threshold_mask_launch(cudaStream_t stream, const float *scores, int64_t count,
                                           float threshold, uint8_t *mask);
/* mask (m,n): the N highest-ranked of each group of M consecutive scores of a row. */
cudaError_t rcc_cuda_nm_mask_launch(cudaStream_t stream, const float *scores, int m, int n, int N,
                                    int M, uint8_t *mask);
/* W (count) = mask ? W : +0. */
cudaError_t rcc_cuda_apply_mask_launch(cudaStream_t stream, float *W, const uint8_t *mask,
                                       int64_t count);
/* Row i of W (m,n) *= alpha[i]. */
cudaError_t rcc_cuda_scale_rows_launch(cudaStream_t stream, float *W, const float *alpha, int m,
                                       int n);
/* A (n,n) row-major: the strict triangle opposite the kept one (lower_kept: the lower
 * triangle holds the data) becomes 0 (mirror false) or the transpose of the kept one. */
cudaError_t rcc_cuda_fill_triangle_f64_launch(cudaStream_t stream, double *A, int n,
                                              bool lower_kept, bool mirror);

#ifdef __cplusplus
}
#endif
