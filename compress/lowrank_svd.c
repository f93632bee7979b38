/* Truncated SVD for the nullu stage (method svd, in float: svd_f32.c) and what every
 * low-rank method shares: the rank rule and the conversions between float layers and double
 * work arrays. The SVD kernels themselves are in svd_template.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/lowrank.h"

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

rcc_status_t rcc_lowrank_svd_path(const float *W, int m, int n, const rcc_rank_rule_t *rule,
                                  rcc_svd_path_t path, rcc_lowrank_t *out,
                                  double *discarded_energy) {
  if (!W || !out) return rcc_fail(RCC_ERR_ARG, "compress/lowrank_svd.c: W or out is NULL");
  if (m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_svd.c: lowrank_svd of a %d x %d matrix", m, n);
  float *U = NULL, *V = NULL;
  int r = 0;
  RCC_TRY(rcc_svd_truncated_s(W, m, n, rule, path, &U, &V, &r, discarded_energy, NULL));
  *out = (rcc_lowrank_t){.m = m, .n = n, .rank = r, .U = U, .V = V};
  return RCC_OK;
}

rcc_status_t rcc_lowrank_svd(const float *W, int m, int n, const rcc_rank_rule_t *rule,
                             rcc_lowrank_t *out, double *discarded_energy) {
  return rcc_lowrank_svd_path(W, m, n, rule, RCC_SVD_AUTO, out, discarded_energy);
}
