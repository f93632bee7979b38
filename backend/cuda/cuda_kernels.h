/* Private to the CUDA backend: C-callable launchers for the kernels of cuda_kernels.cu.
 * Pointers are device memory, arguments already checked by backend.c; each launcher
 * queues its kernel on `stream` and returns the launch status (cudaGetLastError). */
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out (N,C) = (inp - mean) / sqrt(var + eps) * w + b per row; out may equal inp. */
cudaError_t rcc_cuda_layernorm(cudaStream_t stream, float *out, const float *inp, const float *w,
                               const float *b, int N, int C, float eps);
/* In-place masked softmax of x (R,L) after scaling; masks as in backend.h. */
cudaError_t rcc_cuda_softmax(cudaStream_t stream, float *x, int R, int L, float scale, int causal_T,
                             const uint8_t *key_valid, int rows_per_key);
cudaError_t rcc_cuda_activation(cudaStream_t stream, rcc_activation_t act, float *x, int64_t n);
cudaError_t rcc_cuda_add_bias(cudaStream_t stream, float *x, const float *bias, int N, int C);
cudaError_t rcc_cuda_add(cudaStream_t stream, float *out, const float *a, const float *b,
                         int64_t n);
cudaError_t rcc_cuda_scale(cudaStream_t stream, float *x, float s, int64_t n);
cudaError_t rcc_cuda_l2_normalize_rows(cudaStream_t stream, float *x, int N, int C);

#ifdef __cplusplus
}
#endif
