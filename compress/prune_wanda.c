/* Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language
 * Models"): the score of a weight is |W_ij| times the L2 norm of its input feature over
 * the calibration set, compared within each output row (or each N:M group of a row);
 * no weight update. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "compress/prune.h"

rcc_status_t rcc_wanda_check(const float *W, const uint8_t *mask, int m, int n,
                             const double *col_sq, double sparsity, rcc_nm_t nm,
                             const char *where) {
  if (!W || !mask || !col_sq || m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "%s: need W, mask, col_sq and m, n >= 1 (got %d x %d)", where, m,
                    n);
  RCC_TRY(rcc_sparsity_check(sparsity, where));
  RCC_TRY(rcc_nm_check(nm, n, where));
  RCC_TRY(rcc_check_finite_f32(W, (int64_t)m * n, where));
  RCC_TRY(rcc_check_finite_f64(col_sq, n, where));
  for (int j = 0; j < n; j++)
    if (col_sq[j] < 0.0)
      return rcc_fail(RCC_ERR_ARG, "%s: col_sq[%d] = %g is negative", where, j, col_sq[j]);
  return RCC_OK;
}

rcc_status_t rcc_prune_wanda(float *W, uint8_t *mask, int m, int n, const double *col_sq,
                             double sparsity, rcc_nm_t nm) {
  const char *where = "prune_wanda.c: rcc_prune_wanda";
  RCC_TRY(rcc_wanda_check(W, mask, m, n, col_sq, sparsity, nm, where));

  /* norm (n) | per thread: score (n), scratch (n) */
  const int threads = omp_get_max_threads();
  double *buf = malloc((size_t)n * (1 + 2 * (size_t)threads) * sizeof *buf);
  if (!buf) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory (n = %d)", where, n);
  double *norm = buf;
  for (int j = 0; j < n; j++)
    norm[j] = sqrt(col_sq[j]);
  const int64_t k = rcc_prune_count(sparsity, n);
#pragma omp parallel num_threads(threads)
  {
    double *score = buf + (size_t)n * (1 + 2 * (size_t)omp_get_thread_num());
    double *scratch = score + n;
#pragma omp for schedule(static)
    for (int r = 0; r < m; r++) {
      float *w = W + (int64_t)r * n;
      uint8_t *mk = mask + (int64_t)r * n;
      for (int j = 0; j < n; j++)
        score[j] = fabs((double)w[j]) * norm[j];
      if (nm.n > 0)
        rcc_mask_nm(mk, score, n, nm);
      else
        rcc_mask_lowest(mk, score, n, k, scratch);
      for (int j = 0; j < n; j++)
        if (!mk[j]) w[j] = 0.0f;
    }
  }
  free(buf);
  return RCC_OK;
}
