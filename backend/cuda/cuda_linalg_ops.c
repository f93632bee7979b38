/* Float64 linear algebra for the stages on the CUDA backend: GEMM and the triangular solve
 * through cuBLAS, the conversions, row dots and pruning scores through the kernels of
 * cuda_linalg_kernels.cu (float32 -> float64 reuses the calibration statistics' widening
 * kernel). Everything is queued on the backend's stream; nothing waits.
 *
 * Row-major through column-major cuBLAS: a row-major (r,c) buffer is the column-major (c,r)
 * matrix, its transpose. So C = op(A) op(B) row-major is C^T = op(B)^T op(A)^T column-major
 * (operands swapped, transposes kept); and a row-major solve with T on one side is the
 * column-major solve with T^T on the other side, whose stored triangle is the other one.
 *
 * Status: compiled and linked, not yet run on a GPU; tests/gpu/test_backend_cuda_linalg.c
 * compares every op with the CPU reference (cpu_linalg_ops.c) wherever a GPU is present. */
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_linalg_kernels.h"
#include "backend/cuda/cuda_stats_kernels.h"

rcc_status_t rcc_cuda_gemm_f64(rcc_backend_t be, bool ta, bool tb, int M, int N, int K,
                               double alpha, const double *A, int lda, const double *B, int ldb,
                               double beta, double *C, int ldc) {
  ENTER(be);
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  RCC_CHECK_CUBLAS(
      cublasDgemm(impl_of(be)->cublas, opb, opa, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
  return RCC_OK;
}

rcc_status_t rcc_cuda_trsm_f64(rcc_backend_t be, bool right, rcc_triangle_t tri, bool trans, int M,
                               int N, const double *T, int ldt, double *B, int ldb) {
  ENTER(be);
  const double one = 1.0;
  /* B (M,N) row-major is B^T (N,M) column-major: X op(T) = B becomes op(T)^T X^T = B^T,
   * T stored row-major being T^T column-major with its lower triangle the upper one. */
  RCC_CHECK_CUBLAS(cublasDtrsm(
      impl_of(be)->cublas, right ? CUBLAS_SIDE_LEFT : CUBLAS_SIDE_RIGHT,
      tri == RCC_TRIANGLE_LOWER ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER,
      trans ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, N, M, &one, T, ldt, B, ldb));
  return RCC_OK;
}

rcc_status_t rcc_cuda_f32_to_f64(rcc_backend_t be, double *out, const float *in, int64_t count) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_widen_f32_launch(impl_of(be)->stream, out, in, (size_t)count));
  return RCC_OK;
}

rcc_status_t rcc_cuda_f64_to_f32(rcc_backend_t be, float *out, const double *in, int64_t count) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_f64_to_f32_launch(impl_of(be)->stream, out, in, count));
  return RCC_OK;
}

rcc_status_t rcc_cuda_row_dots_f64(rcc_backend_t be, double *out, const double *A, const double *B,
                                   int m, int n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_row_dots_f64_launch(impl_of(be)->stream, out, A, B, m, n));
  return RCC_OK;
}

rcc_status_t rcc_cuda_prune_scores(rcc_backend_t be, float *scores, const float *W,
                                   const double *col_scale, const uint8_t *mask, int m, int n) {
  ENTER(be);
  RCC_CHECK_CUDA(
      rcc_cuda_prune_scores_launch(impl_of(be)->stream, scores, W, col_scale, mask, m, n));
  return RCC_OK;
}

rcc_status_t rcc_cuda_obs_sweep_f64(rcc_backend_t be, double *Wt, int ldw, uint8_t *maskt,
                                    double *errt, const double *Hinv, int ldh, int m, int cols,
                                    int nm_n, int nm_m) {
  _Static_assert(RCC_CUDA_NM_MAX_M == RCC_BACKEND_NM_MAX_M, "the kernel's group array");
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_obs_sweep_f64_launch(impl_of(be)->stream, Wt, ldw, maskt, errt, Hinv, ldh,
                                               m, cols, nm_n, nm_m));
  return RCC_OK;
}
