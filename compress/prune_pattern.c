/* What the pruning kernels share: sparsity schedules, argument checks, and the mask
 * selections (k lowest scores with ties by index; N:M groups) used by magnitude N:M, Wanda
 * and SparseGPT. */
#include <math.h>
#include <string.h>

#include "compress/prune.h"

double rcc_schedule_sparsity(rcc_schedule_t s, double target, int iteration, int iterations) {
  if (!(target >= 0.0 && target < 1.0)) {
    rcc_fail(RCC_ERR_ARG, "prune_pattern.c: rcc_schedule_sparsity: target %g outside [0, 1)",
             target);
    return NAN;
  }
  if (iterations < 1 || iteration < 1 || iteration > iterations) {
    rcc_fail(RCC_ERR_ARG, "prune_pattern.c: rcc_schedule_sparsity: iteration %d outside 1..%d",
             iteration, iterations);
    return NAN;
  }
  /* t = 1 makes each formula exactly `target` in binary floating point (cos(pi) = -1). */
  const double t = (double)iteration / (double)iterations;
  switch (s) {
  case RCC_SCHEDULE_LINEAR: return target * t;
  case RCC_SCHEDULE_COSINE: return target * (1.0 - cos(M_PI * t)) / 2.0;
  case RCC_SCHEDULE_CUBIC: return target * (1.0 - (1.0 - t) * (1.0 - t) * (1.0 - t));
  }
  rcc_fail(RCC_ERR_ARG, "prune_pattern.c: rcc_schedule_sparsity: unknown schedule %d", (int)s);
  return NAN;
}

int64_t rcc_prune_count(double sparsity, int64_t count) {
  const int64_t k = (int64_t)floor(sparsity * (double)count + 1e-6);
  return k < count ? k : count;
}

rcc_status_t rcc_sparsity_check(double sparsity, const char *where) {
  if (!(sparsity >= 0.0 && sparsity < 1.0))
    return rcc_fail(RCC_ERR_ARG, "%s: sparsity %g outside [0, 1)", where, sparsity);
  return RCC_OK;
}

rcc_status_t rcc_nm_check(rcc_nm_t nm, int n_cols, const char *where) {
  if (nm.n == 0 && nm.m == 0) return RCC_OK;
  if (nm.n < 1 || nm.m < 1 || nm.n > nm.m || nm.m > RCC_NM_MAX_M)
    return rcc_fail(RCC_ERR_ARG, "%s: pattern %d:%d needs 1 <= N <= M <= %d", where, nm.n, nm.m,
                    RCC_NM_MAX_M);
  if (n_cols % nm.m != 0)
    return rcc_fail(RCC_ERR_ARG, "%s: pattern %d:%d needs M to divide the %d inputs", where, nm.n,
                    nm.m, n_cols);
  return RCC_OK;
}

rcc_status_t rcc_check_finite_f32(const float *x, int64_t count, const char *where) {
  for (int64_t i = 0; i < count; i++)
    if (!isfinite(x[i]))
      return rcc_fail(RCC_ERR_NUMERIC, "%s: non-finite value %g at index %lld", where, (double)x[i],
                      (long long)i);
  return RCC_OK;
}

rcc_status_t rcc_check_finite_f64(const double *x, int64_t count, const char *where) {
  for (int64_t i = 0; i < count; i++)
    if (!isfinite(x[i]))
      return rcc_fail(RCC_ERR_NUMERIC, "%s: non-finite value %g at index %lld", where, x[i],
                      (long long)i);
  return RCC_OK;
}

int64_t rcc_mask_count(const uint8_t *mask, int64_t numel) {
  int64_t kept = 0;
  for (int64_t i = 0; i < numel; i++)
    kept += mask[i] != 0;
  return kept;
}

bool rcc_mask_is_nm(const uint8_t *mask, int m, int n, rcc_nm_t nm) {
  if (nm.m < 1 || n % nm.m != 0) return false;
  for (int64_t g = 0; g < (int64_t)m * n; g += nm.m) {
    int kept = 0;
    for (int j = 0; j < nm.m; j++)
      kept += mask[g + j] != 0;
    if (kept != nm.n) return false;
  }
  return true;
}

/* Value of 0-based rank r in sorted order of a[0..count), partially reordering a
 * (Hoare's quickselect with a median-of-three pivot; equal keys split both ways, so many
 * ties do not make it quadratic). */
static double select_rank(double *a, int64_t count, int64_t r) {
  int64_t lo = 0, hi = count - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    const double x = a[lo], y = a[mid], z = a[hi];
    const double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot)
        i++;
      while (a[j] > pivot)
        j--;
      if (i <= j) {
        const double t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    /* Now a[lo..j] <= pivot <= a[i..hi], and everything between j and i equals pivot. */
    if (r <= j)
      hi = j;
    else if (r >= i)
      lo = i;
    else
      return a[r];
  }
  return a[r];
}

void rcc_mask_lowest(uint8_t *mask, const double *score, int64_t count, int64_t k,
                     double *scratch) {
  if (k <= 0) {
    memset(mask, 1, (size_t)count);
    return;
  }
  if (k >= count) {
    memset(mask, 0, (size_t)count);
    return;
  }
  memcpy(scratch, score, (size_t)count * sizeof *scratch);
  const double t = select_rank(scratch, count, k - 1);
  int64_t below = 0;
  for (int64_t i = 0; i < count; i++)
    below += score[i] < t;
  /* Of the entries equal to the k-th smallest, the lowest indices fill the count. */
  int64_t ties = k - below;
  for (int64_t i = 0; i < count; i++) {
    if (score[i] < t) {
      mask[i] = 0;
    } else if (score[i] == t && ties > 0) {
      mask[i] = 0;
      ties--;
    } else {
      mask[i] = 1;
    }
  }
}

void rcc_mask_nm(uint8_t *mask, const double *score, int64_t count, rcc_nm_t nm) {
  const int drop = nm.m - nm.n;
  for (int64_t g = 0; g < count; g += nm.m) {
    const double *s = score + g;
    /* Rank of each entry by (score, index) within its group: groups are small (<= 64). */
    for (int j = 0; j < nm.m; j++) {
      int rank = 0;
      for (int i = 0; i < nm.m; i++)
        rank += s[i] < s[j] || (s[i] == s[j] && i < j);
      mask[g + j] = rank >= drop;
    }
  }
}

void rcc_prune_row_l1(const float *W, int m, int n, double *l1) {
  for (int r = 0; r < m; r++) {
    double s = 0.0;
    for (int j = 0; j < n; j++)
      s += fabs((double)W[(int64_t)r * n + j]);
    l1[r] = s;
  }
}

void rcc_prune_l1_rescale(float *W, int m, int n, const double *l1) {
  for (int r = 0; r < m; r++) {
    float *w = W + (int64_t)r * n;
    double after = 0.0;
    for (int j = 0; j < n; j++)
      after += fabs((double)w[j]);
    if (after == 0.0) continue;
    const double scale = l1[r] / after;
    for (int j = 0; j < n; j++)
      w[j] = (float)((double)w[j] * scale);
  }
}
