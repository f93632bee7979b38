/* Shared test helpers for the CMocka suites: closeness checks that print where they fail,
 * paths to committed fixtures, and a scratch directory per test program. */
#pragma once
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the three headers above first. */
#include <cmocka.h>

/* Fails the test (printing the first mismatches and the worst error) unless
 * |a_i - b_i| <= atol + rtol * |b_i| for every i. NaN anywhere fails. */
#define assert_allclose(a, b, n, atol, rtol)                                             \
  rcc_assert_allclose_impl((a), (b), (n), (atol), (rtol), #a, __FILE__, __LINE__)
void rcc_assert_allclose_impl(const float *a, const float *b, size_t n, double atol,
                              double rtol, const char *what, const char *file, int line);

/* Max |a_i - b_i| / max(max |b|, tiny): a normalized error for comparing whole tensors. */
double rcc_normalized_error(const float *a, const float *b, size_t n);

/* Absolute path of a file under the source tree: rcc_source_path("tests/fixtures/x"). */
const char *rcc_source_path(const char *relative);
/* A fresh empty directory for this test program under the build tree. */
const char *rcc_scratch_dir(void);

/* Fills x with uniform values in [lo, hi) from a fixed-seed generator. */
void rcc_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state);
