/* alphaedit with null_space: true. The projector onto the null space of the preserved
 * activations K0 (AlphaEdit, Fang et al. 2025) and the alpha fit that keeps the current
 * outputs on the preserved directions (formulation and guarantees in alpha.h). */
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/alpha.h"
#include "compress/blas_threads.h"
#include "compress/lowrank.h"

rcc_status_t rcc_null_space_projector(const double *K, int n, double keep_energy, double *P,
                                      int *null_dim) {
  if (!K || !P || !null_dim)
    return rcc_fail(RCC_ERR_ARG, "compress/alpha_null_space.c: K, P or null_dim is NULL");
  if (n < 1 || !(keep_energy > 0.0 && keep_energy <= 1.0))
    return rcc_fail(RCC_ERR_ARG,
                    "compress/alpha_null_space.c: projector of size %d with keep_energy %g "
                    "(must be in (0, 1])",
                    n, keep_energy);
  double *Z = malloc((size_t)n * n * sizeof *Z); /* eigenvectors, one per row */
  double *ev = malloc((size_t)n * sizeof *ev);   /* eigenvalues, ascending */
  if (!Z || !ev) {
    free(Z);
    free(ev);
    return rcc_fail(RCC_ERR_NOMEM, "compress/alpha_null_space.c: eigen-decomposition of %d", n);
  }
  memcpy(Z, K, (size_t)n * n * sizeof *Z);
  /* K is symmetric, so its row-major buffer is K to column-major LAPACK too; the returned
   * column-major eigenvector columns are then the rows of the row-major Z. */
  const int blas = rcc_blas_threads_widen();
  lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', n, Z, n, ev);
  rcc_blas_threads_restore(blas);
  if (info != 0) {
    free(Z);
    free(ev);
    return rcc_fail(RCC_ERR_NUMERIC,
                    "compress/alpha_null_space.c: dsyevd failed on the %d x %d K (info %d)", n, n,
                    (int)info);
  }
  /* A PSD K computed in floating point has eigenvalues of order eps * max around zero
   * (some negative) on its null space: those are zero and never preserved. */
  double tol = (double)n * DBL_EPSILON * (ev[n - 1] > 0.0 ? ev[n - 1] : 0.0);
  double total = 0.0;
  for (int j = 0; j < n; j++)
    if (ev[j] > tol) total += ev[j];
  int kept = 0;
  double sum = 0.0;
  for (int j = n - 1; j >= 0 && ev[j] > tol && sum < keep_energy * total; j--) {
    sum += ev[j];
    kept++;
  }
  /* P = I - sum over kept rows z of z z^T; syrk fills one triangle, mirrored so that P is
   * exactly symmetric. */
  memset(P, 0, (size_t)n * n * sizeof *P);
  for (int i = 0; i < n; i++)
    P[(size_t)i * n + i] = 1.0;
  if (kept > 0)
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, kept, -1.0, Z + (size_t)(n - kept) * n, n,
                1.0, P, n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++)
      P[(size_t)i * n + j] = P[(size_t)j * n + i];
  *null_dim = n - kept;
  free(Z);
  free(ev);
  return RCC_OK;
}

rcc_status_t rcc_alpha_closed_form_null_space(const float *W, const float *W_hat, int m, int n,
                                              const double *H, const double *P, double lambda,
                                              float *alpha) {
  if (!W || !W_hat || !H || !P || !alpha)
    return rcc_fail(RCC_ERR_ARG, "compress/alpha_null_space.c: W, W_hat, H, P or alpha is NULL");
  if (m < 1 || n < 1 || !(lambda >= 0.0) || !isfinite(lambda))
    return rcc_fail(RCC_ERR_ARG, "compress/alpha_null_space.c: %d x %d with lambda %g", m, n,
                    lambda);
  size_t count = (size_t)m * n;
  double *Wd = rcc_lowrank_to_double(W, m, n);     /* W, then W P (free part of w) */
  double *Vd = rcc_lowrank_to_double(W_hat, m, n); /* W_hat, then W_hat Q (preserved part) */
  double *C = malloc(count * sizeof *C);           /* W_hat P (free part of v) */
  double *G = malloc(count * sizeof *G);           /* scratch for products */
  rcc_status_t st = RCC_OK;
  const int blas = rcc_blas_threads_widen(); /* restored after `done` */
  if (!Wd || !Vd || !C || !G) {
    st = rcc_fail(RCC_ERR_NOMEM, "compress/alpha_null_space.c: work arrays for %d x %d", m, n);
    goto done;
  }
  /* P is symmetric, so row i of X P is P x_i: the free part of each row. */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, Vd, n, P, n, 0.0, C, n);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, Wd, n, P, n, 0.0, G, n);
  memcpy(Wd, G, count * sizeof *Wd);
  for (size_t i = 0; i < count; i++)
    Vd[i] -= C[i];

  double hmax = 0.0;
  for (int c = 0; c < n; c++)
    if (H[(size_t)c * n + c] > hmax) hmax = H[(size_t)c * n + c];
  double *num = calloc((size_t)m, sizeof *num), *den = calloc((size_t)m, sizeof *den);
  if (!num || !den) {
    free(num);
    free(den);
    st = rcc_fail(RCC_ERR_NOMEM, "compress/alpha_null_space.c: row sums for %d rows", m);
    goto done;
  }
  /* Free part: num += (P w)^T H (P v), den += (P v)^T H (P v). */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, C, n, H, n, 0.0, G, n);
  for (size_t i = 0; i < (size_t)m; i++)
    for (size_t c = 0; c < (size_t)n; c++) {
      num[i] += Wd[i * n + c] * G[i * n + c];
      den[i] += C[i * n + c] * G[i * n + c];
    }
  /* Preserved part, target W_hat itself: num and den both += (Q v)^T H (Q v). */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, Vd, n, H, n, 0.0, G, n);
  for (size_t i = 0; i < (size_t)m; i++) {
    double f = 0.0, vv = 0.0;
    for (size_t c = 0; c < (size_t)n; c++) {
      f += Vd[i * n + c] * G[i * n + c];
      double v = W_hat[i * n + c];
      vv += v * v;
    }
    alpha[i] = rcc_alpha_from_forms(num[i] + f, den[i] + f, lambda, vv * hmax);
  }
  free(num);
  free(den);
done:
  rcc_blas_threads_restore(blas);
  free(Wd);
  free(Vd);
  free(C);
  free(G);
  return st;
}
