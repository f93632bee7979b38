/* nullu method whitened: SVD-LLM (Wang et al. 2024). Truncating the SVD of W alone is
 * optimal for ||W - U V||_F, but what matters is the error on the layer's inputs,
 * ||(W - U V) X||_F^2 = tr((W - U V) H (W - U V)^T) with H = X X^T = L L^T. That equals
 * ||(W - U V) L||_F^2, so the best rank-r U V is the truncated SVD of W L mapped back
 * through L^{-1} (Eckart-Young on W L). */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/blas_threads.h"
#include "compress/lowrank.h"

rcc_status_t rcc_damped_copy(const double *H, int n, double damp, double *out) {
  double mean_diag = 0.0;
  for (int i = 0; i < n; i++)
    mean_diag += H[(size_t)i * n + i];
  mean_diag /= n;
  if (!(mean_diag > 0.0) || !isfinite(mean_diag))
    return rcc_fail(RCC_ERR_NUMERIC,
                    "compress/lowrank_whitened.c: H has mean diagonal %g (no calibration data?)",
                    mean_diag);
  memcpy(out, H, (size_t)n * n * sizeof *out);
  for (int i = 0; i < n; i++)
    out[(size_t)i * n + i] += damp * mean_diag;
  return RCC_OK;
}

/* L (n, n) row-major lower triangular with L L^T = H + damp * mean(diag H) * I. */
static rcc_status_t damped_cholesky(const double *H, int n, double damp, double *L) {
  RCC_TRY(rcc_damped_copy(H, n, damp, L));
  lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, L, n);
  if (info > 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "compress/lowrank_whitened.c: H + %g * mean(diag H) * I is not positive "
                    "definite (leading minor %d of %d); raise damp",
                    damp, (int)info, n);
  if (info < 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "compress/lowrank_whitened.c: dpotrf rejected argument %d (NaN in H?)",
                    (int)-info);
  /* dpotrf leaves the strict upper triangle as it was; the triangular BLAS calls below
   * never read it, but clear it so that L is what its name says. */
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      L[(size_t)i * n + j] = 0.0;
  return RCC_OK;
}

rcc_status_t rcc_lowrank_whitened_d(const double *A, int m, int n, const double *H, double damp,
                                    const rcc_rank_rule_t *rule, rcc_lowrank_t *out) {
  if (!A || !H || !out)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_whitened.c: W, H or out is NULL");
  if (m < 1 || n < 1 || !(damp >= 0.0) || !isfinite(damp))
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_whitened.c: %d x %d matrix with damp %g", m, n,
                    damp);
  RCC_TRY(rcc_rank_rule_check(rule));
  double *L = malloc((size_t)n * n * sizeof *L);
  double *AL = malloc((size_t)m * n * sizeof *AL);
  double *U = NULL, *V = NULL;
  int r = 0;
  rcc_status_t st = RCC_OK;
  int blas = -1; /* the OpenBLAS thread count to restore, once widened */
  if (!L || !AL) {
    st = rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_whitened.c: work arrays for %d x %d", m, n);
    goto done;
  }
  blas = rcc_blas_threads_widen();
  if ((st = damped_cholesky(H, n, damp, L)) != RCC_OK) goto done;
  memcpy(AL, A, (size_t)m * n * sizeof *AL);
  cblas_dtrmm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, m, n, 1.0, L, n,
              AL, n); /* AL = A L (m, n) */
  st = rcc_svd_truncated_d(AL, m, n, rule, RCC_SVD_AUTO, &U, &V, &r, NULL, NULL);
  if (st != RCC_OK) goto done;
  /* V (r, n) <- V L^{-1}: a triangular solve X L = V is more accurate than forming L^{-1}
   * (dtrtri) and multiplying. */
  cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, r, n, 1.0, L, n, V,
              n);
  st = rcc_lowrank_from_double(out, m, n, r, U, V);
done:
  if (blas >= 0) rcc_blas_threads_restore(blas);
  free(L);
  free(AL);
  free(U);
  free(V);
  return st;
}

rcc_status_t rcc_lowrank_whitened(const float *W, int m, int n, const double *H, double damp,
                                  const rcc_rank_rule_t *rule, rcc_lowrank_t *out) {
  if (!W) return rcc_fail(RCC_ERR_ARG, "compress/lowrank_whitened.c: W is NULL");
  if (m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_whitened.c: a %d x %d matrix", m, n);
  double *A = rcc_lowrank_to_double(W, m, n);
  if (!A)
    return rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_whitened.c: double copy of %d x %d", m, n);
  rcc_status_t st = rcc_lowrank_whitened_d(A, m, n, H, damp, rule, out);
  free(A);
  return st;
}
