/* The float32 -> float64 conversion in front of the calibration statistics' DSYRK: cuBLAS
 * has no mixed-precision SYRK that keeps float64 sums of float32 inputs. */
#include "backend/cuda/cuda_stats_kernels.h"

#define WIDEN_THREADS 256
#define WIDEN_MAX_BLOCKS 65536 /* beyond this the grid-stride loop takes over */

__global__ static void widen_kernel(double *out, const float *in, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    out[i] = (double)in[i];
}

extern "C" cudaError_t rcc_cuda_widen_f32_launch(cudaStream_t stream, double *out, const float *in,
                                                 size_t n) {
  size_t blocks = (n + WIDEN_THREADS - 1) / WIDEN_THREADS;
  if (blocks > WIDEN_MAX_BLOCKS) blocks = WIDEN_MAX_BLOCKS;
  widen_kernel<<<(unsigned)blocks, WIDEN_THREADS, 0, stream>>>(out, in, n);
  return cudaGetLastError();
}
