/* dare methods magnitude (per layer, N:M, and global scope's per-layer threshold) and
 * wanda on a backend, twins of prune_magnitude.c and prune_wanda.c. The backend builds the scores
 * and selects (the sorting work); the mask comes back and the element-wise passes that follow
 * (zeroing the pruned weights, the row-L1 rescale in float64) run on the host on the host's own
 * formulas, since the weights are host arrays on both sides of the call. The backend's
 * order of scores prunes the lower index first among equals, as compress/prune.h does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/device.h"

/* new_mask (m, n) on the host: the selection of `be` on the scores of W. col_scale (n) and
 * mask (m, n) may be NULL (see rcc_backend_prune_scores). nm.n > 0: N:M per group;
 * otherwise the `keep` highest scores of each of `rows` rows of m * n / rows (1: the whole
 * layer as one row; m: each output row). */
static rcc_status_t select_on(rcc_backend_t be, const float *W, const double *col_scale,
                              const uint8_t *mask, int m, int n, rcc_nm_t nm, int rows, int keep,
                              uint8_t *new_mask) {
  const size_t mn = (size_t)m * n;
  rcc_dev_bufs_t bufs = {.be = be};
  float *dW = rcc_dev_alloc(&bufs, mn * sizeof *dW);
  float *dS = rcc_dev_alloc(&bufs, mn * sizeof *dS);
  uint8_t *dM = rcc_dev_alloc(&bufs, mn);
  double *dC = col_scale ? rcc_dev_alloc(&bufs, (size_t)n * sizeof *dC) : NULL;
  rcc_status_t st = (dW && dS && dM && (dC || !col_scale)) ? RCC_OK : RCC_ERR_NOMEM;
  if (st == RCC_OK) st = rcc_backend_upload(be, dW, W, mn * sizeof *W);
  if (st == RCC_OK && col_scale) st = rcc_backend_upload(be, dC, col_scale, (size_t)n * sizeof *dC);
  if (st == RCC_OK && mask) st = rcc_backend_upload(be, dM, mask, mn);
  if (st == RCC_OK) st = rcc_backend_prune_scores(be, dS, dW, dC, mask ? dM : NULL, m, n);
  if (st == RCC_OK)
    st = nm.n > 0 ? rcc_backend_nm_mask(be, dS, m, n, nm.n, nm.m, dM)
                  : rcc_backend_row_topk_mask(be, dS, rows, (int)(mn / rows), keep, dM);
  if (st == RCC_OK) st = rcc_backend_download(be, new_mask, dM, mn);
  rcc_dev_release(&bufs);
  return st;
}

rcc_status_t rcc_prune_magnitude_on(rcc_backend_t be, float *W, uint8_t *mask, int m, int n,
                                    double sparsity, rcc_nm_t nm, bool rescale_rows) {
  const char *where = "prune_device.c: rcc_prune_magnitude_on";
  if (!be || !W || !mask || m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "%s: need be, W, mask and m, n >= 1 (got %d x %d)", where, m, n);
  RCC_TRY(rcc_sparsity_check(sparsity, where));
  RCC_TRY(rcc_nm_check(nm, n, where));
  const int64_t numel = (int64_t)m * n;
  if (numel > INT32_MAX)
    return rcc_fail(RCC_ERR_ARG, "%s: %d x %d is too large for one selection", where, m, n);
  RCC_TRY(rcc_check_finite_f32(W, numel, where));
  /* Unstructured: nothing to select once the mask already prunes enough. */
  const int64_t total = rcc_prune_count(sparsity, numel);
  const bool select = nm.n > 0 || numel - rcc_mask_count(mask, numel) < total;
  double *l1_before = rescale_rows ? malloc((size_t)m * sizeof *l1_before) : NULL;
  uint8_t *sel = malloc((size_t)numel);
  if (!sel || (rescale_rows && !l1_before)) {
    free(sel);
    free(l1_before);
    return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory (%d x %d)", where, m, n);
  }
  if (rescale_rows) rcc_prune_row_l1(W, m, n, l1_before);
  /* Entries pruned before score -1: they rank lowest, so an unstructured selection of
   * `total` entries to prune takes all of them first, as the host's count does. */
  rcc_status_t st =
      select ? select_on(be, W, NULL, mask, m, n, nm, 1, (int)(numel - total), sel) : RCC_OK;
  if (st == RCC_OK) {
    for (int64_t i = 0; i < numel; i++) {
      if (select) mask[i] = mask[i] && sel[i];
      if (!mask[i]) W[i] = 0.0f;
    }
    if (rescale_rows) rcc_prune_l1_rescale(W, m, n, l1_before);
  }
  free(sel);
  free(l1_before);
  return st;
}

rcc_status_t rcc_prune_wanda_on(rcc_backend_t be, float *W, uint8_t *mask, int m, int n,
                                const double *col_sq, double sparsity, rcc_nm_t nm) {
  const char *where = "prune_device.c: rcc_prune_wanda_on";
  if (!be) return rcc_fail(RCC_ERR_ARG, "%s: NULL backend", where);
  RCC_TRY(rcc_wanda_check(W, mask, m, n, col_sq, sparsity, nm, where));
  double *norm = malloc((size_t)n * sizeof *norm);
  if (!norm) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory (n = %d)", where, n);
  for (int j = 0; j < n; j++)
    norm[j] = sqrt(col_sq[j]);
  /* Per row: the host's floor(sparsity * n) lowest of each row is the topk of each row. */
  const int64_t keep = n - rcc_prune_count(sparsity, n);
  rcc_status_t st = select_on(be, W, norm, NULL, m, n, nm, m, (int)keep, mask);
  free(norm);
  if (st != RCC_OK) return st;
  for (int64_t i = 0; i < (int64_t)m * n; i++)
    if (!mask[i]) W[i] = 0.0f;
  return RCC_OK;
}

rcc_status_t rcc_prune_threshold_on(rcc_backend_t be, float *W, uint8_t *mask, int64_t numel,
                                    float threshold) {
  const char *where = "prune_device.c: rcc_prune_threshold_on";
  if (!be || !W || !mask || numel < 0)
    return rcc_fail(RCC_ERR_ARG, "%s: need be, W, mask and numel >= 0 (got %lld)", where,
                    (long long)numel);
  if (isnan(threshold)) return rcc_fail(RCC_ERR_ARG, "%s: NaN threshold", where);
  if (numel == 0) return RCC_OK;
  /* The host keeps |W| >= t; the backend keeps |W| > its threshold. Floats being discrete,
   * |W| >= t is |W| > the float below t when t > 0, and always true when t <= 0. */
  const float below = threshold > 0.0f ? nextafterf(threshold, 0.0f) : -1.0f;
  rcc_dev_bufs_t bufs = {.be = be};
  float *dW = rcc_dev_alloc(&bufs, (size_t)numel * sizeof *dW);
  uint8_t *dM = rcc_dev_alloc(&bufs, (size_t)numel);
  uint8_t *sel = malloc((size_t)numel);
  rcc_status_t st = (dW && dM) ? RCC_OK : RCC_ERR_NOMEM;
  if (st == RCC_OK && !sel)
    st = rcc_fail(RCC_ERR_NOMEM, "%s: %lld mask bytes", where, (long long)numel);
  if (st == RCC_OK) st = rcc_backend_upload(be, dW, W, (size_t)numel * sizeof *W);
  if (st == RCC_OK) st = rcc_backend_threshold_mask(be, dW, numel, below, dM);
  if (st == RCC_OK) st = rcc_backend_download(be, sel, dM, (size_t)numel);
  /* A NaN weight: the host's |W| < t is false, so it keeps it; the backend prunes it. */
  for (int64_t i = 0; st == RCC_OK && i < numel; i++) {
    if (!sel[i] && !isnan(W[i])) mask[i] = 0;
    if (!mask[i]) W[i] = 0.0f;
  }
  free(sel);
  rcc_dev_release(&bufs);
  return st;
}
