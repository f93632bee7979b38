/* The calibration statistics on the CUDA backend: X widened to float64 in the caller's
 * scratch, then cublasDsyrk, both queued on the backend's stream (no wait).
 *
 * Row-major through column-major cuBLAS: the row-major X (N,d) is the column-major Xc (d,N),
 * so X^T X = Xc Xc^T (CUBLAS_OP_N), and the upper triangle of the row-major H is the lower
 * triangle of the same buffer read column-major (CUBLAS_FILL_MODE_LOWER).
 *
 * Status: compiled and linked, not yet run on a GPU; tests/gpu/test_backend_cuda_gram.c
 * compares it with the CPU op wherever a GPU is present. */
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_stats_kernels.h"

rcc_status_t rcc_cuda_gram_f64(rcc_backend_t be, double *H, const float *X, int N, int d,
                               double *scratch) {
  ENTER(be);
  cuda_impl_t *c = impl_of(be);
  RCC_CHECK_CUDA(rcc_cuda_widen_f32_launch(c->stream, scratch, X, (size_t)N * d));
  const double one = 1.0;
  RCC_CHECK_CUBLAS(cublasDsyrk(c->cublas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, d, N, &one, scratch,
                               d, &one, H, d));
  return RCC_OK;
}
