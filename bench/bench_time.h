/* Timing helpers shared by the benchmark programs: a monotonic clock in seconds and the
 * median of timed samples (what every bench reports, robust to one slow outlier). */
#pragma once
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double rcc_bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int rcc_bench_cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of v (n >= 1), v left as it was; NaN when out of memory. */
static inline double rcc_bench_median(const double *v, int n) {
  double *s = malloc((size_t)n * sizeof *s);
  if (!s) return NAN;
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, rcc_bench_cmp_double);
  const double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  free(s);
  return m;
}
