/* Implementation of the test helpers declared in harness.h. */
#include "tests/harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void rcc_assert_allclose_impl(const float *a, const float *b, size_t n, double atol,
                              double rtol, const char *what, const char *file, int line) {
  size_t bad = 0, worst_i = 0;
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    int nan = isnan(a[i]) || isnan(b[i]);
    if (nan || d > atol + rtol * fabs((double)b[i])) {
      if (bad < 5)
        print_error("%s:%d: %s[%zu] = %.8g, expected %.8g (diff %.3g)\n", file, line, what, i,
                    a[i], b[i], d);
      bad++;
    }
    if (nan || d > worst) {
      worst = nan ? INFINITY : d;
      worst_i = i;
    }
  }
  if (bad) {
    print_error("%s:%d: %zu of %zu values of %s differ; worst at [%zu]: %.3g (atol %.1g, rtol "
                "%.1g)\n",
                file, line, bad, n, what, worst_i, worst, atol, rtol);
    fail();
  }
}

double rcc_normalized_error(const float *a, const float *b, size_t n) {
  double max_diff = 0.0, max_ref = 1e-30;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (isnan(d)) return INFINITY;
    if (d > max_diff) max_diff = d;
    if (fabs((double)b[i]) > max_ref) max_ref = fabs((double)b[i]);
  }
  return max_diff / max_ref;
}

const char *rcc_source_path(const char *relative) {
  static char buf[8][4096];
  static int slot = 0;
  slot = (slot + 1) % 8;
  snprintf(buf[slot], sizeof buf[slot], "%s/%s", RCC_SOURCE_DIR, relative);
  return buf[slot];
}

const char *rcc_scratch_dir(void) {
  static char dir[4096];
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "%s/test-scratch/%ld", RCC_BINARY_DIR, (long)getpid());
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) {
      fprintf(stderr, "cannot create scratch dir %s\n", dir);
      abort();
    }
  }
  return dir;
}

void rcc_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state) {
  for (size_t i = 0; i < n; i++) {
    /* xorshift64*: reproducible across platforms, good enough for test data. */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    uint64_t r = *state * 2685821657736338717ULL;
    x[i] = lo + (hi - lo) * (float)((r >> 40) * (1.0 / 16777216.0));
  }
}
