/* Truncated SVD for the nullu stage (method svd) and what every low-rank method shares: the
 * rank rule, the exact thin SVD (LAPACK dgesdd in double), the choice between the exact and
 * the randomized path, and the conversions between float layers and double work arrays. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/lowrank.h"

/* The randomized path of rcc_lowrank_svd: 2 power iterations and max(10, k / 2) extra
 * sketch columns. Halko et al.'s usual p = 10 leaves the trailing kept singular values of a
 * slowly decaying spectrum (sigma_j ~ exp(-j / 20), 512 x 768, k = 32) off by 6e-3 and the
 * reconstruction error off by 4e-3; p = k / 2 brings both below 2e-4 for 1.3x the time,
 * still well under the exact SVD since k <= min(m, n) / 4 on this path. */
enum { AUTO_MIN_OVERSAMPLE = 10, AUTO_POWER_ITERS = 2, AUTO_MIN_DIM = 256 };
static const uint64_t AUTO_SEED = 0x6e756c6c75ULL; /* "nullu": fixed, so runs repeat */

void rcc_lowrank_free(rcc_lowrank_t *lr) {
  if (!lr) return;
  free(lr->U);
  free(lr->V);
  memset(lr, 0, sizeof *lr);
}

void rcc_lowrank_truncate(rcc_lowrank_t *lr, int rank) {
  /* U (m, r) -> (m, rank) row by row, moving left only, so in place is safe; V's first
   * `rank` rows already are V (rank, n). */
  for (int i = 0; i < lr->m; i++)
    memmove(lr->U + (size_t)i * rank, lr->U + (size_t)i * lr->rank, (size_t)rank * sizeof *lr->U);
  lr->rank = rank;
}

rcc_status_t rcc_rank_rule_check(const rcc_rank_rule_t *rule) {
  if (!rule) return rcc_fail(RCC_ERR_ARG, "compress/lowrank_svd.c: rank rule is NULL");
  if (!(rule->energy_threshold > 0.0 && rule->energy_threshold <= 1.0))
    return rcc_fail(RCC_ERR_ARG,
                    "compress/lowrank_svd.c: rank rule: energy_threshold %g is not in (0, 1]",
                    rule->energy_threshold);
  if (!(rule->rank_reduction_ratio > 0.0 && rule->rank_reduction_ratio <= 1.0))
    return rcc_fail(RCC_ERR_ARG,
                    "compress/lowrank_svd.c: rank rule: rank_reduction_ratio %g is not in (0, 1]",
                    rule->rank_reduction_ratio);
  if (rule->min_rank < 1)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_svd.c: rank rule: min_rank %d is below 1",
                    rule->min_rank);
  return RCC_OK;
}

int rcc_rank_max(const rcc_rank_rule_t *rule, int k) {
  int cap = (int)floor(rule->rank_reduction_ratio * (double)k);
  if (cap < rule->min_rank) cap = rule->min_rank;
  return cap < k ? cap : k;
}

int rcc_rank_select(const double *sigma, int k, double total_energy, const rcc_rank_rule_t *rule) {
  int rmax = rcc_rank_max(rule, k);
  double target = rule->energy_threshold * total_energy;
  double kept = 0.0;
  int r = rmax;
  for (int j = 0; j < rmax; j++) {
    kept += sigma[j] * sigma[j];
    if (kept >= target) {
      r = j + 1;
      break;
    }
  }
  if (r < rule->min_rank) r = rule->min_rank < k ? rule->min_rank : k;
  return r;
}

double *rcc_lowrank_to_double(const float *W, int m, int n) {
  size_t count = (size_t)m * (size_t)n;
  double *A = malloc(count * sizeof *A);
  if (!A) return NULL;
  for (size_t i = 0; i < count; i++)
    A[i] = W[i];
  return A;
}

rcc_status_t rcc_lowrank_from_double(rcc_lowrank_t *out, int m, int n, int r, const double *U,
                                     const double *V) {
  memset(out, 0, sizeof *out);
  size_t mu = (size_t)m * (size_t)r, nv = (size_t)r * (size_t)n;
  float *Uf = malloc(mu * sizeof *Uf), *Vf = malloc(nv * sizeof *Vf);
  if (!Uf || !Vf) {
    free(Uf);
    free(Vf);
    return rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_svd.c: factors of rank %d for %d x %d", r, m,
                    n);
  }
  for (size_t i = 0; i < mu; i++)
    Uf[i] = (float)U[i];
  for (size_t i = 0; i < nv; i++)
    Vf[i] = (float)V[i];
  *out = (rcc_lowrank_t){.m = m, .n = n, .rank = r, .U = Uf, .V = Vf};
  return RCC_OK;
}

rcc_status_t rcc_svd_exact_d(const double *A, int m, int n, double *sigma, double *U, double *V) {
  int k = m < n ? m : n;
  size_t count = (size_t)m * (size_t)n;
  double *a = malloc(count * sizeof *a);
  if (!a) return rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_svd.c: SVD copy of %d x %d", m, n);
  memcpy(a, A, count * sizeof *a);
  /* LAPACK is column-major, so the row-major (m, n) buffer is A^T (n, m) to it. From
   * A^T = X S Y^T follows A = Y S X^T: LAPACK's "vt" (Y^T, k x m, column-major) is U (m, k)
   * row-major and its "u" (X, n x k, column-major) is V (k, n) row-major. No transposes. */
  lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', n, m, a, n, sigma, V, n, U, k);
  free(a);
  if (info > 0)
    return rcc_fail(RCC_ERR_NUMERIC, "compress/lowrank_svd.c: dgesdd did not converge on %d x %d",
                    m, n);
  if (info < 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "compress/lowrank_svd.c: dgesdd rejected argument %d on %d x %d (NaN in W?)",
                    (int)-info, m, n);
  return RCC_OK;
}

/* Copies the first r columns of U (m, k), scaled by sigma, and the first r rows of V (k, n)
 * into fresh arrays. */
static rcc_status_t take_top(const double *U, const double *sigma, const double *V, int m, int n,
                             int k, int r, double **Ur, double **Vr) {
  *Ur = malloc((size_t)m * (size_t)r * sizeof **Ur);
  *Vr = malloc((size_t)r * (size_t)n * sizeof **Vr);
  if (!*Ur || !*Vr) {
    free(*Ur);
    free(*Vr);
    *Ur = *Vr = NULL;
    return rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_svd.c: rank-%d factors of %d x %d", r, m, n);
  }
  for (size_t i = 0; i < (size_t)m; i++)
    for (int j = 0; j < r; j++)
      (*Ur)[i * r + j] = U[i * k + j] * sigma[j];
  memcpy(*Vr, V, (size_t)r * (size_t)n * sizeof **Vr);
  return RCC_OK;
}

rcc_status_t rcc_svd_truncated_d(const double *A, int m, int n, const rcc_rank_rule_t *rule,
                                 rcc_svd_path_t path, double **U, double **V, int *rank,
                                 double *discarded, double *total) {
  *U = *V = NULL;
  RCC_TRY(rcc_rank_rule_check(rule));
  if (m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_svd.c: truncation of a %d x %d matrix", m, n);
  int kmin = m < n ? m : n;
  int rmax = rcc_rank_max(rule, kmin);
  if (path == RCC_SVD_AUTO)
    path = (rmax <= kmin / 4 && kmin >= AUTO_MIN_DIM) ? RCC_SVD_RANDOMIZED : RCC_SVD_EXACT;

  double energy = 0.0;
  for (size_t i = 0; i < (size_t)m * (size_t)n; i++)
    energy += A[i] * A[i];

  /* The randomized path computes only the rmax singular triplets the rule can keep. */
  int k = path == RCC_SVD_RANDOMIZED ? rmax : kmin;
  int oversample = k / 2 > AUTO_MIN_OVERSAMPLE ? k / 2 : AUTO_MIN_OVERSAMPLE;
  double *sigma = malloc((size_t)k * sizeof *sigma);
  double *Uk = malloc((size_t)m * (size_t)k * sizeof *Uk);
  double *Vk = malloc((size_t)k * (size_t)n * sizeof *Vk);
  rcc_status_t st = RCC_OK;
  if (!sigma || !Uk || !Vk)
    st = rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_svd.c: SVD of %d x %d", m, n);
  else if (path == RCC_SVD_RANDOMIZED)
    st = rcc_svd_randomized_d(A, m, n, k, oversample, AUTO_POWER_ITERS, AUTO_SEED, sigma, Uk, Vk);
  else
    st = rcc_svd_exact_d(A, m, n, sigma, Uk, Vk);
  if (st == RCC_OK) {
    int r = rcc_rank_select(sigma, kmin, energy, rule);
    double kept = 0.0, dropped = 0.0;
    for (int j = 0; j < r; j++)
      kept += sigma[j] * sigma[j];
    /* Summing the dropped values directly is more accurate when they are small; the
     * randomized path has not computed them, so it subtracts from the exact total. */
    if (path == RCC_SVD_EXACT)
      for (int j = r; j < k; j++)
        dropped += sigma[j] * sigma[j];
    else
      dropped = energy - kept > 0.0 ? energy - kept : 0.0;
    st = take_top(Uk, sigma, Vk, m, n, k, r, U, V);
    if (st == RCC_OK) {
      *rank = r;
      if (discarded) *discarded = dropped;
      if (total) *total = energy;
    }
  }
  free(sigma);
  free(Uk);
  free(Vk);
  return st;
}

rcc_status_t rcc_lowrank_svd_path(const float *W, int m, int n, const rcc_rank_rule_t *rule,
                                  rcc_svd_path_t path, rcc_lowrank_t *out,
                                  double *discarded_energy) {
  if (!W || !out) return rcc_fail(RCC_ERR_ARG, "compress/lowrank_svd.c: W or out is NULL");
  if (m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_svd.c: lowrank_svd of a %d x %d matrix", m, n);
  double *A = rcc_lowrank_to_double(W, m, n);
  if (!A) return rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_svd.c: double copy of %d x %d", m, n);
  double *U = NULL, *V = NULL;
  int r = 0;
  rcc_status_t st = rcc_svd_truncated_d(A, m, n, rule, path, &U, &V, &r, discarded_energy, NULL);
  free(A);
  if (st == RCC_OK) st = rcc_lowrank_from_double(out, m, n, r, U, V);
  free(U);
  free(V);
  return st;
}

rcc_status_t rcc_lowrank_svd(const float *W, int m, int n, const rcc_rank_rule_t *rule,
                             rcc_lowrank_t *out, double *discarded_energy) {
  return rcc_lowrank_svd_path(W, m, n, rule, RCC_SVD_AUTO, out, discarded_energy);
}
