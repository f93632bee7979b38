/* Private to the CUDA backend: its state, its check macros for cuBLAS and cuSOLVER, and the
 * compression ops of cuda_compress_ops.c that cuda_backend.c puts in its function table.
 * Compiled only with CUDA. */
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include "backend/backend_impl.h"
#include "common/check_cuda.h"

typedef struct {
  int device;
  cudaStream_t stream;
  cublasHandle_t cublas;
  /* Created on the first factorization (rcc_cuda_solver), bound to `stream`; NULL until
   * then, so that forward-only users never pay for cuSOLVER's initialization. */
  cusolverDnHandle_t cusolver;
  /* The caching arena: a memory pool of our own whose release threshold keeps freed blocks
   * for reuse, so the per-layer buffers of the stages and the per-batch buffers of training
   * cost no cudaMalloc/cudaFree (each of which synchronizes the device) after the first
   * layer. NULL where the device has no memory pools: plain cudaMalloc then. */
  cudaMemPool_t pool;
} cuda_impl_t;

static inline cuda_impl_t *impl_of(rcc_backend_t be) { return (cuda_impl_t *)be->impl; }

/* Every cuBLAS call goes through this and every CUDA call through RCC_CHECK_CUDA
 * (common/check_cuda.h): on failure the message names the file, the line, the call and the
 * library's own description, and the op returns. */
#define RCC_CHECK_CUBLAS(call)                                                                     \
  do {                                                                                             \
    cublasStatus_t rcc_cublas_st_ = (call);                                                        \
    if (rcc_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                   \
      return rcc_fail(RCC_ERR_CUDA, "%s:%d: %s failed: %s (%s)", __FILE__, __LINE__, #call,        \
                      cublasGetStatusString(rcc_cublas_st_), cublasGetStatusName(rcc_cublas_st_)); \
  } while (0)

/* cuSOLVER has no status-string function: rcc_cusolver_status_name spells the enum. */
const char *rcc_cusolver_status_name(cusolverStatus_t st);
#define RCC_CHECK_CUSOLVER(call)                                                                   \
  do {                                                                                             \
    cusolverStatus_t rcc_cusolver_st_ = (call);                                                    \
    if (rcc_cusolver_st_ != CUSOLVER_STATUS_SUCCESS)                                               \
      return rcc_fail(RCC_ERR_CUDA, "%s:%d: %s failed: %s", __FILE__, __LINE__, #call,             \
                      rcc_cusolver_status_name(rcc_cusolver_st_));                                 \
  } while (0)

/* Makes our device current: another part of the program (the NCCL comm, say) may have
 * made a different one current since the last call, and kernels must be launched on the
 * device that owns our stream. */
#define ENTER(be) RCC_CHECK_CUDA(cudaSetDevice(impl_of(be)->device))

/* The compression ops (cuda_compress_ops.c), in the shape of the rcc_backend_ops_t slots. */
rcc_status_t rcc_cuda_svd_f64(rcc_backend_t be, int m, int n, double *A, double *U, double *S,
                              double *Vt);
rcc_status_t rcc_cuda_cholesky_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri);
rcc_status_t rcc_cuda_cholesky_inverse_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri);
rcc_status_t rcc_cuda_row_topk_mask(rcc_backend_t be, const float *scores, int m, int n, int keep,
                                    uint8_t *mask);
rcc_status_t rcc_cuda_threshold_mask(rcc_backend_t be, const float *scores, int64_t count,
                                     float threshold, uint8_t *mask);
rcc_status_t rcc_cuda_nm_mask(rcc_backend_t be, const float *scores, int m, int n, int N, int M,
                              uint8_t *mask);
rcc_status_t rcc_cuda_apply_mask(rcc_backend_t be, float *W, const uint8_t *mask, int64_t count);
rcc_status_t rcc_cuda_scale_rows(rcc_backend_t be, float *W, const float *alpha, int m, int n);
/* The calibration statistics (cuda_stats_ops.c). */
rcc_status_t rcc_cuda_gram_f64(rcc_backend_t be, double *H, const float *X, int N, int d,
                               double *scratch);
/* Dense linear algebra in float64 for the stages (cuda_linalg_ops.c). */
rcc_status_t rcc_cuda_gemm_f64(rcc_backend_t be, bool ta, bool tb, int M, int N, int K,
                               double alpha, const double *A, int lda, const double *B, int ldb,
                               double beta, double *C, int ldc);
rcc_status_t rcc_cuda_trsm_f64(rcc_backend_t be, bool right, rcc_triangle_t tri, bool trans, int M,
                               int N, const double *T, int ldt, double *B, int ldb);
rcc_status_t rcc_cuda_f32_to_f64(rcc_backend_t be, double *out, const float *in, int64_t count);
rcc_status_t rcc_cuda_f64_to_f32(rcc_backend_t be, float *out, const double *in, int64_t count);
rcc_status_t rcc_cuda_row_dots_f64(rcc_backend_t be, double *out, const double *A, const double *B,
                                   int m, int n);
rcc_status_t rcc_cuda_prune_scores(rcc_backend_t be, float *scores, const float *W,
                                   const double *col_scale, const uint8_t *mask, int m, int n);
rcc_status_t rcc_cuda_obs_sweep_f64(rcc_backend_t be, double *Wt, int ldw, uint8_t *maskt,
                                    double *errt, const double *Hinv, int ldh, int m, int cols,
                                    int nm_n, int nm_m);
