/* Randomized SVD (Halko, Martinsson, Tropp 2011): when the rank rule can keep only a small
 * top part of a large layer's spectrum, a sketch of k + p columns costs O(m n (k + p)) per
 * pass instead of the O(m n min(m, n)) of a full SVD. The thin work matrices are kept
 * column-major, which is what LAPACK's QR wants. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/lowrank.h"

/* splitmix64: a small, well-mixed generator; the sketch only needs independent draws. */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Standard normal draws by Box-Muller, two at a time. */
static void fill_gaussian(double *x, size_t count, uint64_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i < count; i += 2) {
    double u1 = ((double)(next_u64(&s) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1]: log is finite */
    double u2 = (double)(next_u64(&s) >> 11) * 0x1.0p-53;
    double radius = sqrt(-2.0 * log(u1));
    x[i] = radius * cos(2.0 * M_PI * u2);
    if (i + 1 < count) x[i + 1] = radius * sin(2.0 * M_PI * u2);
  }
}

/* Replaces the columns of Y (rows, cols), column-major, by an orthonormal basis of their
 * span (Householder QR). Re-orthonormalising after every product keeps the power
 * iterations from collapsing onto the top singular vector in floating point. */
static rcc_status_t orthonormalize(double *Y, int rows, int cols, double *tau) {
  lapack_int info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, rows, cols, Y, rows, tau);
  if (info == 0) info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, rows, cols, cols, Y, rows, tau);
  if (info != 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "compress/lowrank_randomized.c: QR of the %d x %d sketch failed (info %d)",
                    rows, cols, (int)info);
  return RCC_OK;
}

rcc_status_t rcc_svd_randomized_d(const double *A, int m, int n, int k, int oversample,
                                  int power_iters, uint64_t seed, double *sigma, double *U,
                                  double *V) {
  int kmin = m < n ? m : n;
  if (m < 1 || n < 1 || k < 1 || k > kmin || oversample < 0 || power_iters < 0)
    return rcc_fail(RCC_ERR_ARG,
                    "compress/lowrank_randomized.c: rank %d, oversample %d, power iterations %d "
                    "for a %d x %d matrix",
                    k, oversample, power_iters, m, n);
  int l = k + oversample < kmin ? k + oversample : kmin;

  /* Column-major work arrays: Y (m, l) and Z (n, l) hold the sketches, B (l, n) the
   * projected matrix, Ub (l, l) and Vb (l, n) its SVD, Uf (m, l) = Y Ub. To cblas, the
   * row-major A (m, n) is the column-major (n, m) matrix A^T with leading dimension n. */
  double *Y = malloc((size_t)m * l * sizeof *Y);
  double *Z = malloc((size_t)n * l * sizeof *Z);
  double *B = malloc((size_t)l * n * sizeof *B);
  double *Ub = malloc((size_t)l * l * sizeof *Ub);
  double *Vb = malloc((size_t)l * n * sizeof *Vb);
  double *Uf = malloc((size_t)m * l * sizeof *Uf);
  double *s = malloc((size_t)l * sizeof *s);
  double *tau = malloc((size_t)l * sizeof *tau);
  rcc_status_t st = RCC_OK;
  if (!Y || !Z || !B || !Ub || !Vb || !Uf || !s || !tau) {
    st = rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_randomized.c: sketch of %d x %d, %d columns", m,
                  n, l);
    goto done;
  }

  fill_gaussian(Z, (size_t)n * l, seed); /* Omega (n, l) */
  cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, m, l, n, 1.0, A, n, Z, n, 0.0, Y, m);
  if ((st = orthonormalize(Y, m, l, tau)) != RCC_OK) goto done;
  for (int q = 0; q < power_iters; q++) {
    /* Z = A^T Y, Y = A Z: each round multiplies the spectrum's decay by itself twice. */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, l, m, 1.0, A, n, Y, m, 0.0, Z, n);
    if ((st = orthonormalize(Z, n, l, tau)) != RCC_OK) goto done;
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, m, l, n, 1.0, A, n, Z, n, 0.0, Y, m);
    if ((st = orthonormalize(Y, m, l, tau)) != RCC_OK) goto done;
  }
  /* B = Y^T A (l, n); A ~ Y B = (Y Ub) diag(s) Vb. */
  cblas_dgemm(CblasColMajor, CblasTrans, CblasTrans, l, n, m, 1.0, Y, m, A, n, 0.0, B, l);
  lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', l, n, B, l, s, Ub, l, Vb, l);
  if (info != 0) {
    st = rcc_fail(RCC_ERR_NUMERIC,
                  "compress/lowrank_randomized.c: dgesdd of the %d x %d projection failed "
                  "(info %d)",
                  l, n, (int)info);
    goto done;
  }
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, l, l, 1.0, Y, m, Ub, l, 0.0, Uf, m);

  for (int j = 0; j < k; j++)
    sigma[j] = s[j];
  for (size_t i = 0; i < (size_t)m; i++)
    for (int j = 0; j < k; j++)
      U[i * k + j] = Uf[i + (size_t)j * m];
  for (int j = 0; j < k; j++)
    for (size_t c = 0; c < (size_t)n; c++)
      V[(size_t)j * n + c] = Vb[j + c * l];

done:
  free(Y);
  free(Z);
  free(B);
  free(Ub);
  free(Vb);
  free(Uf);
  free(s);
  free(tau);
  return st;
}

rcc_status_t rcc_lowrank_svd_randomized(const float *W, int m, int n, int k, int oversample,
                                        int power_iters, uint64_t seed, double *sigma_out,
                                        rcc_lowrank_t *out) {
  if (!W || !sigma_out || !out)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_randomized.c: W, sigma_out or out is NULL");
  if (m < 1 || n < 1 || k < 1 || k > (m < n ? m : n))
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_randomized.c: rank %d for a %d x %d matrix", k,
                    m, n);
  double *A = rcc_lowrank_to_double(W, m, n);
  double *U = malloc((size_t)m * k * sizeof *U);
  double *V = malloc((size_t)k * n * sizeof *V);
  rcc_status_t st = RCC_OK;
  if (!A || !U || !V)
    st = rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_randomized.c: rank %d of %d x %d", k, m, n);
  else
    st = rcc_svd_randomized_d(A, m, n, k, oversample, power_iters, seed, sigma_out, U, V);
  if (st == RCC_OK) {
    for (size_t i = 0; i < (size_t)m; i++)
      for (int j = 0; j < k; j++)
        U[i * k + j] *= sigma_out[j];
    st = rcc_lowrank_from_double(out, m, n, k, U, V);
  }
  free(A);
  free(U);
  free(V);
  return st;
}
