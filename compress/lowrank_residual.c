/* nullu method residual: when dare has already kept a sparse S, the low-rank term is fitted
 * to what pruning removed, R = W - S, so that the layer becomes S + U V (OATS, Zhang and
 * Papyan 2024, alternates the two; here the sparse part is given). */
#include <stdlib.h>

#include "compress/lowrank.h"

rcc_status_t rcc_lowrank_residual(const float *W, const float *S, int m, int n, const double *H,
                                  double damp, const rcc_rank_rule_t *rule, rcc_lowrank_t *out) {
  if (!W || !S || !out)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_residual.c: W, S or out is NULL");
  if (m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_residual.c: a %d x %d matrix", m, n);
  size_t count = (size_t)m * (size_t)n;
  double *R = malloc(count * sizeof *R); /* (m, n) */
  if (!R) return rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_residual.c: residual of %d x %d", m, n);
  for (size_t i = 0; i < count; i++)
    R[i] = (double)W[i] - (double)S[i];

  rcc_status_t st;
  if (H) {
    st = rcc_lowrank_whitened_d(R, m, n, H, damp, rule, out);
  } else {
    double *U = NULL, *V = NULL;
    int r = 0;
    st = rcc_svd_truncated_d(R, m, n, rule, RCC_SVD_AUTO, &U, &V, &r, NULL, NULL);
    if (st == RCC_OK) st = rcc_lowrank_from_double(out, m, n, r, U, V);
    free(U);
    free(V);
  }
  free(R);
  return st;
}
