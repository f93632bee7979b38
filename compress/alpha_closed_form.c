/* alphaedit method closed_form: per-output-channel scales fitted by least squares against
 * the original layer's outputs, from H alone (derivation in alpha.h). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "compress/alpha.h"
#include "compress/blas_threads.h"
#include "compress/lowrank.h"

/* Relative size below which a row's quadratic form is rounding noise of zero. */
static const double DEGENERATE_RTOL = 1e-12;

float rcc_alpha_from_forms(double num, double den, double lambda, double scale) {
  double d = den + lambda;
  /* v^T H v = 0 with lambda = 0 leaves the row undetermined (0 / 0): keep it as it is. */
  if (!(d > 0.0 && d > DEGENERATE_RTOL * scale)) return 1.0f;
  return (float)((num + lambda) / d);
}

rcc_status_t rcc_alpha_closed_form(const float *W, const float *W_hat, int m, int n,
                                   const double *H, double lambda, float *alpha) {
  if (!W || !W_hat || !H || !alpha)
    return rcc_fail(RCC_ERR_ARG, "compress/alpha_closed_form.c: W, W_hat, H or alpha is NULL");
  if (m < 1 || n < 1 || !(lambda >= 0.0) || !isfinite(lambda))
    return rcc_fail(RCC_ERR_ARG, "compress/alpha_closed_form.c: %d x %d with lambda %g", m, n,
                    lambda);
  double *V = rcc_lowrank_to_double(W_hat, m, n); /* (m, n) */
  double *G = malloc((size_t)m * n * sizeof *G);  /* (m, n) = W_hat H: row i is H v_i */
  if (!V || !G) {
    free(V);
    free(G);
    return rcc_fail(RCC_ERR_NOMEM, "compress/alpha_closed_form.c: work arrays for %d x %d", m, n);
  }
  const int blas = rcc_blas_threads_widen();
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, V, n, H, n, 0.0, G, n);
  rcc_blas_threads_restore(blas);
  double hmax = 0.0;
  for (int c = 0; c < n; c++)
    if (H[(size_t)c * n + c] > hmax) hmax = H[(size_t)c * n + c];
  for (size_t i = 0; i < (size_t)m; i++) {
    const float *w = W + i * n;
    const double *v = V + i * n, *g = G + i * n;
    double num = 0.0, den = 0.0, vv = 0.0;
    for (size_t c = 0; c < (size_t)n; c++) {
      num += (double)w[c] * g[c];
      den += v[c] * g[c];
      vv += v[c] * v[c];
    }
    alpha[i] = rcc_alpha_from_forms(num, den, lambda, vv * hmax);
  }
  free(V);
  free(G);
  return RCC_OK;
}
