/* Magnitude pruning: per layer (unstructured or N:M, optional row-L1 rescale of the
 * survivors), one global threshold over several layers, and pruning below a threshold.
 * Selections are exact: a radix select on the bit patterns of |W| finds the k-th smallest
 * value in two passes over the weights without copying them (a CLIP model holds ~150M). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/prune.h"

/* For non-negative IEEE floats the order of the bit patterns is the order of the values,
 * so |w|'s pattern (sign bit cleared) is a sort key; -0 and +0 share key 0. */
static inline uint32_t abs_key(float w) {
  uint32_t u;
  memcpy(&u, &w, sizeof u);
  return u & 0x7fffffffu;
}

enum { KEY_INF = 0x7f800000u };

/* The key of 0-based rank `rank` among the |W| of `count` arrays (entries with mask 0
 * skipped when mask is given): a histogram of the high 16 bits picks the bucket holding
 * the rank, a second one of the low 16 bits within that bucket picks the key. */
static rcc_status_t select_abs_key(const float *const *W, const uint8_t *const *mask,
                                   const int64_t *numel, int count, int64_t rank, uint32_t *key,
                                   const char *where) {
  int64_t *hist = calloc(65536, sizeof *hist);
  if (!hist) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for the histogram", where);
  for (int l = 0; l < count; l++)
    for (int64_t i = 0; i < numel[l]; i++) {
      if (mask && !mask[l][i]) continue;
      const uint32_t k = abs_key(W[l][i]);
      if (k > KEY_INF) {
        free(hist);
        return rcc_fail(RCC_ERR_NUMERIC, "%s: NaN weight at index %lld of array %d", where,
                        (long long)i, l);
      }
      hist[k >> 16]++;
    }
  uint32_t high = 0;
  while (rank >= hist[high])
    rank -= hist[high++];
  memset(hist, 0, 65536 * sizeof *hist);
  for (int l = 0; l < count; l++)
    for (int64_t i = 0; i < numel[l]; i++) {
      if (mask && !mask[l][i]) continue;
      const uint32_t k = abs_key(W[l][i]);
      if (k >> 16 == high) hist[k & 0xffffu]++;
    }
  uint32_t low = 0;
  while (rank >= hist[low])
    rank -= hist[low++];
  free(hist);
  *key = high << 16 | low;
  return RCC_OK;
}

/* Unstructured: prunes kept entries until floor(sparsity * numel) are pruned in all. */
static rcc_status_t prune_unstructured(const float *W, uint8_t *mask, int64_t numel,
                                       double sparsity) {
  const char *where = "prune_magnitude.c: rcc_prune_magnitude";
  const int64_t already = numel - rcc_mask_count(mask, numel);
  const int64_t need = rcc_prune_count(sparsity, numel) - already;
  if (need <= 0) return RCC_OK;
  const uint8_t *kept = mask;
  uint32_t t = 0;
  RCC_TRY(select_abs_key(&W, &kept, &numel, 1, need - 1, &t, where));
  int64_t below = 0;
  for (int64_t i = 0; i < numel; i++)
    below += mask[i] && abs_key(W[i]) < t;
  int64_t ties = need - below;
  for (int64_t i = 0; i < numel; i++) {
    if (!mask[i]) continue;
    const uint32_t k = abs_key(W[i]);
    if (k < t) {
      mask[i] = 0;
    } else if (k == t && ties > 0) {
      mask[i] = 0;
      ties--;
    }
  }
  return RCC_OK;
}

/* N:M per row group; entries pruned before rank below every weight (score -1). */
static void prune_nm(const float *W, uint8_t *mask, int m, int n, rcc_nm_t nm) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < m; r++) {
    double score[RCC_NM_MAX_M];
    uint8_t keep[RCC_NM_MAX_M];
    for (int g = 0; g < n; g += nm.m) {
      const int64_t at = (int64_t)r * n + g;
      for (int j = 0; j < nm.m; j++)
        score[j] = mask[at + j] ? fabs((double)W[at + j]) : -1.0;
      rcc_mask_nm(keep, score, nm.m, nm);
      for (int j = 0; j < nm.m; j++)
        mask[at + j] = mask[at + j] && keep[j];
    }
  }
}

rcc_status_t rcc_prune_magnitude(float *W, uint8_t *mask, int m, int n, double sparsity,
                                 rcc_nm_t nm, bool rescale_rows) {
  const char *where = "prune_magnitude.c: rcc_prune_magnitude";
  if (!W || !mask || m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "%s: need W, mask and m, n >= 1 (got %d x %d)", where, m, n);
  RCC_TRY(rcc_sparsity_check(sparsity, where));
  RCC_TRY(rcc_nm_check(nm, n, where));
  const int64_t numel = (int64_t)m * n;
  RCC_TRY(rcc_check_finite_f32(W, numel, where));
  double *l1_before = NULL;
  if (rescale_rows) {
    l1_before = malloc((size_t)m * sizeof *l1_before);
    if (!l1_before) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory (%d rows)", where, m);
    rcc_prune_row_l1(W, m, n, l1_before);
  }
  rcc_status_t st = RCC_OK;
  if (nm.n > 0)
    prune_nm(W, mask, m, n, nm);
  else
    st = prune_unstructured(W, mask, numel, sparsity);
  if (st != RCC_OK) {
    free(l1_before);
    return st;
  }
  for (int64_t i = 0; i < numel; i++)
    if (!mask[i]) W[i] = 0.0f;
  if (rescale_rows) {
    rcc_prune_l1_rescale(W, m, n, l1_before);
    free(l1_before);
  }
  return RCC_OK;
}

rcc_status_t rcc_magnitude_global_threshold(const float *const *W, const int64_t *numel, int count,
                                            double sparsity, float *threshold) {
  const char *where = "prune_magnitude.c: rcc_magnitude_global_threshold";
  if (!W || !numel || !threshold || count < 1)
    return rcc_fail(RCC_ERR_ARG, "%s: need W, numel, threshold and count >= 1 (got %d)", where,
                    count);
  RCC_TRY(rcc_sparsity_check(sparsity, where));
  int64_t total = 0;
  for (int l = 0; l < count; l++) {
    if (numel[l] < 0 || (numel[l] > 0 && !W[l]))
      return rcc_fail(RCC_ERR_ARG, "%s: layer %d has numel %lld and data %p", where, l,
                      (long long)numel[l], (const void *)W[l]);
    total += numel[l];
  }
  if (total == 0) return rcc_fail(RCC_ERR_ARG, "%s: no weights in %d layers", where, count);
  /* Sparsity within 1e-6 / total of 1 counts every entry: the last rank is the largest. */
  int64_t k = rcc_prune_count(sparsity, total);
  if (k > total - 1) k = total - 1;
  uint32_t key = 0;
  RCC_TRY(select_abs_key(W, NULL, numel, count, k, &key, where));
  memcpy(threshold, &key, sizeof key);
  return RCC_OK;
}

rcc_status_t rcc_prune_threshold(float *W, uint8_t *mask, int64_t numel, float threshold) {
  const char *where = "prune_magnitude.c: rcc_prune_threshold";
  if (!W || !mask || numel < 0)
    return rcc_fail(RCC_ERR_ARG, "%s: need W, mask and numel >= 0 (got %lld)", where,
                    (long long)numel);
  if (isnan(threshold)) return rcc_fail(RCC_ERR_ARG, "%s: NaN threshold", where);
  for (int64_t i = 0; i < numel; i++) {
    if (fabsf(W[i]) < threshold) mask[i] = 0;
    if (!mask[i]) W[i] = 0.0f;
  }
  return RCC_OK;
}
