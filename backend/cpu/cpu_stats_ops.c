/* The calibration statistics on the CPU backend: X converted to float64 in the caller's
 * scratch, then one rank-N update of the upper triangle (dsyrk). This is exactly what
 * compress/calibration.c computed before the op existed, so CPU results did not move. */
#include <cblas.h>

#include "backend/cpu/cpu_compress_ops.h"

rcc_status_t rcc_cpu_gram_f64(rcc_backend_t be, double *H, const float *X, int N, int d,
                              double *scratch) {
  (void)be;
  const size_t n = (size_t)N * d;
  for (size_t i = 0; i < n; i++)
    scratch[i] = X[i];
  /* H (upper) += X^T X, X (N, d) */
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, N, 1.0, scratch, d, 1.0, H, d);
  return RCC_OK;
}
