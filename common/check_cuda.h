/* RCC_CHECK_CUDA: the one check of a CUDA runtime call, for the CUDA backend and the NCCL
 * communicator. On failure it records the file, the line, the call and the runtime's own
 * description with rcc_fail and returns RCC_ERR_CUDA from the calling function. Include
 * only from code compiled with CUDA. */
#pragma once
#include <cuda_runtime.h>

#include "common/status.h"

#define RCC_CHECK_CUDA(call)                                                                       \
  do {                                                                                             \
    cudaError_t rcc_cuda_err_ = (call);                                                            \
    if (rcc_cuda_err_ != cudaSuccess) {                                                            \
      (void)cudaGetLastError(); /* else the next launch check would report it again */             \
      return rcc_fail(RCC_ERR_CUDA, "%s:%d: %s failed: %s (%s)", __FILE__, __LINE__, #call,        \
                      cudaGetErrorString(rcc_cuda_err_), cudaGetErrorName(rcc_cuda_err_));         \
    }                                                                                              \
  } while (0)
