/* The dense SVD kernels of the low-rank methods, written once for both real types. Not a
 * header to include anywhere else: svd_f64.c (double, names ending _d) and svd_f32.c
 * (float, names ending _s) include it after defining
 *   RCC_REAL     the element type
 *   RCC_SVD(x)   the public name for base name x (x##_d or x##_s)
 *   RCC_GESDD, RCC_GEQRF, RCC_ORGQR, RCC_GEMM   the LAPACKE / CBLAS routines of that type.
 * Why two types: the plain SVD method factors float weights into float factors, where
 * float32 rounding (1e-7 of the largest singular value) is far below what truncation
 * discards, and float halves the time of every LAPACK and BLAS call; whitening by H, the
 * residual fit and the subspace analysis keep double. */
#include <cblas.h>
#include <lapacke.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compress/blas_threads.h"
#include "compress/lowrank.h"

/* The randomized path's settings (see rcc_lowrank_svd in lowrank.h): 2 power iterations and
 * max(10, k / 2) extra sketch columns. Halko et al.'s usual p = 10 leaves the trailing kept
 * singular values of a slowly decaying spectrum (sigma_j ~ exp(-j / 20), 512 x 768, k = 32)
 * off by 6e-3 and the reconstruction error off by 4e-3; p = k / 2 brings both below 2e-4 for
 * 1.3x the time, still well under the exact SVD since k <= min(m, n) / 4 on this path. */
enum { AUTO_MIN_OVERSAMPLE = 10, AUTO_POWER_ITERS = 2, AUTO_MIN_DIM = 256 };
static const uint64_t AUTO_SEED = 0x6e756c6c75ULL; /* "nullu": fixed, so runs repeat */

static rcc_status_t gesdd_status(lapack_int info, const char *what, int m, int n) {
  if (info > 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "compress/svd_template.h: %s: gesdd did not converge on %d x %d", what, m, n);
  if (info < 0)
    return rcc_fail(
        RCC_ERR_NUMERIC,
        "compress/svd_template.h: %s: gesdd rejected argument %d on %d x %d (NaN in W?)", what,
        (int)-info, m, n);
  return RCC_OK;
}

rcc_status_t RCC_SVD(rcc_svd_exact)(const RCC_REAL *A, int m, int n, RCC_REAL *sigma, RCC_REAL *U,
                                    RCC_REAL *V) {
  const int k = m < n ? m : n;
  const size_t count = (size_t)m * (size_t)n;
  /* gesdd destroys its input, and its divide and conquer is fastest on a tall (or square)
   * matrix: on this CPU a 768 x 3072 column-major matrix takes 1.3x the time of its
   * transpose. To LAPACK (column-major) the row-major (m, n) buffer is A^T (n, m), which is
   * tall when m <= n; a tall A (m > n) is copied transposed instead. */
  const int transposed = m > n;
  RCC_REAL *a = malloc(count * sizeof *a);
  RCC_REAL *X = transposed ? malloc((size_t)m * k * sizeof *X) : NULL;
  RCC_REAL *Yt = transposed ? malloc((size_t)k * n * sizeof *Yt) : NULL;
  if (!a || (transposed && (!X || !Yt))) {
    free(a);
    free(X);
    free(Yt);
    return rcc_fail(RCC_ERR_NOMEM, "compress/svd_template.h: SVD work arrays for %d x %d", m, n);
  }
  const int blas = rcc_blas_threads_widen();
  lapack_int info;
  if (!transposed) {
    /* A^T = P S Q^T gives A = Q S P^T: LAPACK's "vt" (Q^T, k x m, column-major) is U (m, k)
     * row-major and its "u" (P, n x k, column-major) is V (k, n) row-major. */
    memcpy(a, A, count * sizeof *a);
    info = RCC_GESDD(LAPACK_COL_MAJOR, 'S', n, m, a, n, sigma, V, n, U, k);
  } else {
    /* a = A column-major (m, n) = X S Yt, X (m, k) and Yt (k, n) column-major. */
    for (size_t i = 0; i < (size_t)m; i++)
      for (size_t j = 0; j < (size_t)n; j++)
        a[i + j * m] = A[i * n + j];
    info = RCC_GESDD(LAPACK_COL_MAJOR, 'S', m, n, a, m, sigma, X, m, Yt, k);
    if (info == 0) {
      for (size_t j = 0; j < (size_t)k; j++)
        for (size_t i = 0; i < (size_t)m; i++)
          U[i * k + j] = X[i + j * m];
      for (size_t c = 0; c < (size_t)n; c++)
        for (size_t j = 0; j < (size_t)k; j++)
          V[j * n + c] = Yt[j + c * k];
    }
  }
  rcc_blas_threads_restore(blas);
  free(a);
  free(X);
  free(Yt);
  return gesdd_status(info, "exact SVD", m, n);
}

/* Replaces the columns of Y (rows, cols), column-major, by an orthonormal basis of their
 * span (Householder QR). Re-orthonormalising after every product keeps the power
 * iterations from collapsing onto the top singular vector in floating point. */
static rcc_status_t orthonormalize(RCC_REAL *Y, int rows, int cols, RCC_REAL *tau) {
  lapack_int info = RCC_GEQRF(LAPACK_COL_MAJOR, rows, cols, Y, rows, tau);
  if (info == 0) info = RCC_ORGQR(LAPACK_COL_MAJOR, rows, cols, cols, Y, rows, tau);
  if (info != 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "compress/svd_template.h: QR of the %d x %d sketch failed (info %d)", rows,
                    cols, (int)info);
  return RCC_OK;
}

/* The randomized SVD (Halko, Martinsson, Tropp 2011, algorithms 4.4 and 5.1) between its
 * argument checks and cleanup: omega (n, l) double, Y (m, l), Z (n, l), B (l, n), Ub (l, l), Vb (l,
 * n), Uf (m, l), s (l), tau (l), all column-major. To cblas, the row-major A (m, n) is the
 * column-major (n, m) matrix A^T with leading dimension n. */
static rcc_status_t randomized(const RCC_REAL *A, int m, int n, int k, int l, int power_iters,
                               uint64_t seed, RCC_REAL *sigma, RCC_REAL *U, RCC_REAL *V,
                               double *omega, RCC_REAL *Y, RCC_REAL *Z, RCC_REAL *B, RCC_REAL *Ub,
                               RCC_REAL *Vb, RCC_REAL *Uf, RCC_REAL *s, RCC_REAL *tau) {
  /* Omega (n, l) from double draws, so that both types sketch with the same matrix. */
  rcc_fill_gaussian(omega, (size_t)n * l, seed);
  for (size_t i = 0; i < (size_t)n * l; i++)
    Z[i] = (RCC_REAL)omega[i];
  rcc_status_t st;
  RCC_GEMM(CblasColMajor, CblasTrans, CblasNoTrans, m, l, n, 1.0, A, n, Z, n, 0.0, Y, m);
  if ((st = orthonormalize(Y, m, l, tau)) != RCC_OK) return st;
  for (int q = 0; q < power_iters; q++) {
    /* Z = A^T Y, Y = A Z: each round multiplies the spectrum's decay by itself twice. */
    RCC_GEMM(CblasColMajor, CblasNoTrans, CblasNoTrans, n, l, m, 1.0, A, n, Y, m, 0.0, Z, n);
    if ((st = orthonormalize(Z, n, l, tau)) != RCC_OK) return st;
    RCC_GEMM(CblasColMajor, CblasTrans, CblasNoTrans, m, l, n, 1.0, A, n, Z, n, 0.0, Y, m);
    if ((st = orthonormalize(Y, m, l, tau)) != RCC_OK) return st;
  }
  /* B = Y^T A (l, n); A ~ Y B = (Y Ub) diag(s) Vb. */
  RCC_GEMM(CblasColMajor, CblasTrans, CblasTrans, l, n, m, 1.0, Y, m, A, n, 0.0, B, l);
  RCC_TRY(gesdd_status(RCC_GESDD(LAPACK_COL_MAJOR, 'S', l, n, B, l, s, Ub, l, Vb, l),
                       "projection of the randomized SVD", l, n));
  RCC_GEMM(CblasColMajor, CblasNoTrans, CblasNoTrans, m, l, l, 1.0, Y, m, Ub, l, 0.0, Uf, m);
  for (int j = 0; j < k; j++)
    sigma[j] = s[j];
  for (size_t i = 0; i < (size_t)m; i++)
    for (int j = 0; j < k; j++)
      U[i * k + j] = Uf[i + (size_t)j * m];
  for (int j = 0; j < k; j++)
    for (size_t c = 0; c < (size_t)n; c++)
      V[(size_t)j * n + c] = Vb[j + c * l];
  return RCC_OK;
}

rcc_status_t RCC_SVD(rcc_svd_randomized)(const RCC_REAL *A, int m, int n, int k, int oversample,
                                         int power_iters, uint64_t seed, RCC_REAL *sigma,
                                         RCC_REAL *U, RCC_REAL *V) {
  const int kmin = m < n ? m : n;
  if (m < 1 || n < 1 || k < 1 || k > kmin || oversample < 0 || power_iters < 0)
    return rcc_fail(RCC_ERR_ARG,
                    "compress/svd_template.h: randomized SVD: rank %d, oversample %d, power "
                    "iterations %d for a %d x %d matrix",
                    k, oversample, power_iters, m, n);
  const int l = k + oversample < kmin ? k + oversample : kmin;
  RCC_REAL *Y = malloc((size_t)m * l * sizeof *Y);
  RCC_REAL *Z = malloc((size_t)n * l * sizeof *Z);
  RCC_REAL *B = malloc((size_t)l * n * sizeof *B);
  double *omega = malloc((size_t)n * l * sizeof *omega);
  RCC_REAL *Ub = malloc((size_t)l * l * sizeof *Ub);
  RCC_REAL *Vb = malloc((size_t)l * n * sizeof *Vb);
  RCC_REAL *Uf = malloc((size_t)m * l * sizeof *Uf);
  RCC_REAL *s = malloc((size_t)l * sizeof *s);
  RCC_REAL *tau = malloc((size_t)l * sizeof *tau);
  rcc_status_t st;
  if (!omega || !Y || !Z || !B || !Ub || !Vb || !Uf || !s || !tau) {
    st = rcc_fail(RCC_ERR_NOMEM, "compress/svd_template.h: sketch of %d x %d, %d columns", m, n, l);
  } else {
    const int blas = rcc_blas_threads_widen();
    st = randomized(A, m, n, k, l, power_iters, seed, sigma, U, V, omega, Y, Z, B, Ub, Vb, Uf, s,
                    tau);
    rcc_blas_threads_restore(blas);
  }
  free(omega);
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

/* Copies the first r columns of U (m, k), scaled by sigma, and the first r rows of V (k, n)
 * into fresh arrays. */
static rcc_status_t take_top(const RCC_REAL *U, const RCC_REAL *sigma, const RCC_REAL *V, int m,
                             int n, int k, int r, RCC_REAL **Ur, RCC_REAL **Vr) {
  *Ur = malloc((size_t)m * (size_t)r * sizeof **Ur);
  *Vr = malloc((size_t)r * (size_t)n * sizeof **Vr);
  if (!*Ur || !*Vr) {
    free(*Ur);
    free(*Vr);
    *Ur = *Vr = NULL;
    return rcc_fail(RCC_ERR_NOMEM, "compress/svd_template.h: rank-%d factors of %d x %d", r, m, n);
  }
  for (size_t i = 0; i < (size_t)m; i++)
    for (int j = 0; j < r; j++)
      (*Ur)[i * r + j] = U[i * k + j] * sigma[j];
  memcpy(*Vr, V, (size_t)r * (size_t)n * sizeof **Vr);
  return RCC_OK;
}

/* The rule's rank from k singular values (of kmin), and the kept and dropped energies. On
 * the randomized path the dropped energy is the total minus what was kept, the values past
 * k never having been computed. */
static rcc_status_t select_rank(const RCC_REAL *sigma, int k, int kmin, double energy,
                                const rcc_rank_rule_t *rule, bool exact, int *rank,
                                double *dropped) {
  double *sd = malloc((size_t)k * sizeof *sd);
  if (!sd) return rcc_fail(RCC_ERR_NOMEM, "compress/svd_template.h: %d singular values", k);
  for (int j = 0; j < k; j++)
    sd[j] = sigma[j];
  const int r = rcc_rank_select(sd, kmin, energy, rule);
  double kept = 0.0, tail = 0.0;
  for (int j = 0; j < r; j++)
    kept += sd[j] * sd[j];
  /* Summing the dropped values directly is more accurate when they are small. */
  for (int j = r; j < k; j++)
    tail += sd[j] * sd[j];
  free(sd);
  *rank = r;
  *dropped = exact ? tail : (energy - kept > 0.0 ? energy - kept : 0.0);
  return RCC_OK;
}

rcc_status_t RCC_SVD(rcc_svd_truncated)(const RCC_REAL *A, int m, int n,
                                        const rcc_rank_rule_t *rule, rcc_svd_path_t path,
                                        RCC_REAL **U, RCC_REAL **V, int *rank, double *discarded,
                                        double *total) {
  *U = *V = NULL;
  RCC_TRY(rcc_rank_rule_check(rule));
  if (m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "compress/svd_template.h: truncation of a %d x %d matrix", m, n);
  const int kmin = m < n ? m : n;
  const int rmax = rcc_rank_max(rule, kmin);
  if (path == RCC_SVD_AUTO)
    path = (rmax <= kmin / 4 && kmin >= AUTO_MIN_DIM) ? RCC_SVD_RANDOMIZED : RCC_SVD_EXACT;

  double energy = 0.0; /* ||A||_F^2, exactly, in double for both types */
  for (size_t i = 0; i < (size_t)m * (size_t)n; i++)
    energy += (double)A[i] * (double)A[i];

  /* The randomized path computes only the rmax singular triplets the rule can keep. */
  const int k = path == RCC_SVD_RANDOMIZED ? rmax : kmin;
  const int oversample = k / 2 > AUTO_MIN_OVERSAMPLE ? k / 2 : AUTO_MIN_OVERSAMPLE;
  RCC_REAL *sigma = malloc((size_t)k * sizeof *sigma);
  RCC_REAL *Uk = malloc((size_t)m * (size_t)k * sizeof *Uk);
  RCC_REAL *Vk = malloc((size_t)k * (size_t)n * sizeof *Vk);
  rcc_status_t st;
  if (!sigma || !Uk || !Vk)
    st = rcc_fail(RCC_ERR_NOMEM, "compress/svd_template.h: SVD of %d x %d", m, n);
  else if (path == RCC_SVD_RANDOMIZED)
    st = RCC_SVD(rcc_svd_randomized)(A, m, n, k, oversample, AUTO_POWER_ITERS, AUTO_SEED, sigma, Uk,
                                     Vk);
  else
    st = RCC_SVD(rcc_svd_exact)(A, m, n, sigma, Uk, Vk);
  int r = 0;
  double dropped = 0.0;
  if (st == RCC_OK)
    st = select_rank(sigma, k, kmin, energy, rule, path == RCC_SVD_EXACT, &r, &dropped);
  if (st == RCC_OK) st = take_top(Uk, sigma, Vk, m, n, k, r, U, V);
  if (st == RCC_OK) {
    *rank = r;
    if (discarded) *discarded = dropped;
    if (total) *total = energy;
  }
  free(sigma);
  free(Uk);
  free(Vk);
  return st;
}
