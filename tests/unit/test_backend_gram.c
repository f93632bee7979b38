/* rcc_backend_gram_f64 on the CPU backend against a plain triple loop in float64: H += X^T X
 * with float32 X, upper triangle only. Checked: the upper triangle within 1e-13 of the
 * reference (relative to its largest entry; both sum exact products in double, only the
 * order differs), the strict lower triangle left exactly as it was, accumulation over two
 * calls, N = 0 doing nothing, and the argument checks of backend.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tests/harness.h"

static rcc_backend_t be;
static uint64_t rng = 0x243f6a8885a308d3ULL;

static int setup(void **state) { return rcc_backend_init(&be, "cpu") == RCC_OK ? 0 : -1; }
static int teardown(void **state) {
  rcc_backend_free(be);
  return 0;
}

static void reference(double *H, const float *X, int N, int d) {
  for (int i = 0; i < d; i++)
    for (int j = i; j < d; j++) {
      double sum = 0.0;
      for (int t = 0; t < N; t++)
        sum += (double)X[(size_t)t * d + i] * (double)X[(size_t)t * d + j];
      H[(size_t)i * d + j] += sum;
    }
}

static void check_gram(int N, int d) {
  float *X = malloc((size_t)N * d * sizeof *X);
  double *H = malloc((size_t)d * d * sizeof *H), *want = malloc((size_t)d * d * sizeof *want);
  double *scratch = malloc((size_t)N * d * sizeof *scratch);
  assert_true(X && H && want && scratch);
  rcc_fill_uniform(X, (size_t)N * d, -2.0f, 2.0f, &rng);
  /* A start value everywhere, a marker below the diagonal that must survive. */
  for (size_t k = 0; k < (size_t)d * d; k++)
    H[k] = want[k] = (k % (size_t)(d + 1) == 0) ? 0.5 : (k / d > k % d ? -7.25 : 0.125);
  for (int call = 0; call < 2; call++) {
    assert_int_equal(rcc_backend_gram_f64(be, H, X, N, d, scratch), RCC_OK);
    reference(want, X, N, d);
  }
  double err = 0.0, scale = 1e-300;
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      const size_t k = (size_t)i * d + j;
      if (j < i) {
        assert_true(H[k] == -7.25);
        continue;
      }
      err = fmax(err, fabs(H[k] - want[k]));
      scale = fmax(scale, fabs(want[k]));
    }
  if (!(err / scale <= 1e-13)) fail_msg("gram %dx%d: error %.3g", N, d, err / scale);
  free(X);
  free(H);
  free(want);
  free(scratch);
}

static void test_gram(void **state) {
  check_gram(1, 1);
  check_gram(50, 7);
  check_gram(3, 64);
  check_gram(200, 33);
}

static void test_empty_and_errors(void **state) {
  double H[4] = {1, 2, 3, 4}, scratch[4];
  float X[4] = {1, 2, 3, 4};
  assert_int_equal(rcc_backend_gram_f64(be, H, X, 0, 2, scratch), RCC_OK);
  assert_true(H[0] == 1 && H[1] == 2 && H[3] == 4);
  assert_int_equal(rcc_backend_gram_f64(be, H, X, -1, 2, scratch), RCC_ERR_ARG);
  assert_int_equal(rcc_backend_gram_f64(be, H, X, 2, 2, NULL), RCC_ERR_ARG);
  assert_int_equal(rcc_backend_gram_f64(be, NULL, X, 2, 2, scratch), RCC_ERR_ARG);
  assert_int_equal(rcc_backend_gram_f64(NULL, H, X, 2, 2, scratch), RCC_ERR_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gram),
      cmocka_unit_test(test_empty_and_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
