/* Principal angles (Bjorck and Golub 1973), Grassmann distance and row-space bases, to say
 * how much of the same input subspace two stages keep. */
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

#include "compress/lowrank.h"
#include "compress/subspace.h"

/* Q (n, k) row-major double: an orthonormal basis of span(X), X (n, k) float. */
static rcc_status_t orthonormal_basis(const float *X, int n, int k, const char *which, double *Q) {
  double *tau = malloc((size_t)k * sizeof *tau);
  if (!tau) return rcc_fail(RCC_ERR_NOMEM, "compress/subspace.c: QR of basis %s", which);
  for (size_t i = 0; i < (size_t)n * k; i++)
    Q[i] = X[i];
  lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, n, k, Q, k, tau);
  rcc_status_t st = RCC_OK;
  if (info != 0) {
    st = rcc_fail(RCC_ERR_NUMERIC, "compress/subspace.c: QR of basis %s (%d x %d) failed (info %d)",
                  which, n, k, (int)info);
  } else {
    /* The inputs are float: a column whose R diagonal is at float rounding level relative
     * to the largest is a linear combination of the others, and its "direction" is noise. */
    double rmax = 0.0;
    for (int j = 0; j < k; j++)
      if (fabs(Q[(size_t)j * k + j]) > rmax) rmax = fabs(Q[(size_t)j * k + j]);
    for (int j = 0; j < k && st == RCC_OK; j++)
      if (!(fabs(Q[(size_t)j * k + j]) > (double)n * FLT_EPSILON * rmax))
        st = rcc_fail(RCC_ERR_NUMERIC,
                      "compress/subspace.c: basis %s (%d x %d): column %d depends on the others",
                      which, n, k, j);
  }
  if (st == RCC_OK) {
    info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, n, k, k, Q, k, tau);
    if (info != 0)
      st = rcc_fail(RCC_ERR_NUMERIC, "compress/subspace.c: dorgqr of basis %s failed (info %d)",
                    which, (int)info);
  }
  free(tau);
  return st;
}

rcc_status_t rcc_principal_angles(const float *A, int n, int ka, const float *B, int kb,
                                  double *angles) {
  if (!A || !B || !angles)
    return rcc_fail(RCC_ERR_ARG, "compress/subspace.c: principal angles: A, B or angles is NULL");
  if (n < 1 || ka < 1 || kb < 1 || ka > n || kb > n)
    return rcc_fail(RCC_ERR_ARG,
                    "compress/subspace.c: principal angles of %d and %d vectors in R^%d", ka, kb,
                    n);
  int k = ka < kb ? ka : kb;
  double *Qa = malloc((size_t)n * ka * sizeof *Qa);
  double *Qb = malloc((size_t)n * kb * sizeof *Qb);
  double *M = malloc((size_t)ka * kb * sizeof *M); /* (ka, kb) = Qa^T Qb */
  double *s = malloc((size_t)k * sizeof *s);
  rcc_status_t st = RCC_OK;
  if (!Qa || !Qb || !M || !s) {
    st = rcc_fail(RCC_ERR_NOMEM, "compress/subspace.c: principal angles in R^%d", n);
    goto done;
  }
  if ((st = orthonormal_basis(A, n, ka, "A", Qa)) != RCC_OK) goto done;
  if ((st = orthonormal_basis(B, n, kb, "B", Qb)) != RCC_OK) goto done;
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ka, kb, n, 1.0, Qa, ka, Qb, kb, 0.0, M, kb);
  /* Singular values only; the row-major M is M^T to column-major LAPACK, same values. */
  lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', kb, ka, M, kb, s, NULL, 1, NULL, 1);
  if (info != 0) {
    st = rcc_fail(RCC_ERR_NUMERIC, "compress/subspace.c: dgesdd of Qa^T Qb failed (info %d)",
                  (int)info);
    goto done;
  }
  /* Descending cosines give ascending angles. */
  for (int j = 0; j < k; j++)
    angles[j] = acos(s[j] > 1.0 ? 1.0 : (s[j] < 0.0 ? 0.0 : s[j]));
done:
  free(Qa);
  free(Qb);
  free(M);
  free(s);
  return st;
}

double rcc_grassmann_distance(const double *angles, int k) {
  double sum = 0.0;
  for (int j = 0; j < k; j++)
    sum += angles[j] * angles[j];
  return sqrt(sum);
}

rcc_status_t rcc_row_space_basis(const float *W, int m, int n, int k, float *basis) {
  if (!W || !basis)
    return rcc_fail(RCC_ERR_ARG, "compress/subspace.c: row space: W or basis is NULL");
  int kmin = m < n ? m : n;
  if (m < 1 || n < 1 || k < 1 || k > kmin)
    return rcc_fail(RCC_ERR_ARG, "compress/subspace.c: row space of rank %d of a %d x %d matrix", k,
                    m, n);
  double *A = rcc_lowrank_to_double(W, m, n);
  double *sigma = malloc((size_t)kmin * sizeof *sigma);
  double *U = malloc((size_t)m * kmin * sizeof *U);
  double *V = malloc((size_t)kmin * n * sizeof *V); /* (kmin, n): right vectors as rows */
  rcc_status_t st = RCC_OK;
  if (!A || !sigma || !U || !V)
    st = rcc_fail(RCC_ERR_NOMEM, "compress/subspace.c: SVD of %d x %d", m, n);
  else
    st = rcc_svd_exact_d(A, m, n, sigma, U, V);
  if (st == RCC_OK)
    for (size_t c = 0; c < (size_t)n; c++)
      for (int j = 0; j < k; j++)
        basis[c * k + j] = (float)V[(size_t)j * n + c];
  free(A);
  free(sigma);
  free(U);
  free(V);
  return st;
}
