/* Private to the CUDA backend: the launcher of cuda_stats_kernels.cu. */
#pragma once
#include <cuda_runtime.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out (n) = (double)in (n), queued on `stream`; returns the launch status. */
cudaError_t rcc_cuda_widen_f32_launch(cudaStream_t stream, double *out, const float *in, size_t n);

#ifdef __cplusplus
}
#endif
