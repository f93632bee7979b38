/* rcc_backend_gram_f64 on the CUDA backend against the CPU backend: H += X^T X from float32
 * X in float64, at the calibration shapes of ViT-B/32 (a batch of 8 images = 400 tokens,
 * widths 768 and 3072) and odd small ones. Both sides start from the same random H; the
 * device H and scratch are poisoned (NaN) where they must be written and the strict lower
 * triangle holds a marker that must survive. Bound: upper triangle within 1e-13 of the
 * CPU's, relative to its largest entry (every product is exact in float64 on both sides;
 * only the order of the N-term sums differs, ~N eps). Without a GPU (or a CUDA build) it
 * prints "skipped: no GPU" and exits 77. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "tests/backend_pair.h"
#include "tests/harness.h"

static void check_gram(int N, int d) {
  const size_t nx = (size_t)N * d, nh = (size_t)d * d;
  float *X = rcc_test_random_floats(nx, -3.0f, 3.0f);
  double *H = rcc_test_random_doubles(nh);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < i; j++)
      H[(size_t)i * d + j] = -42.0; /* the marker below the diagonal */
  float *dX = rcc_test_to_gpu(X, nx * sizeof *X);
  double *dH = rcc_test_to_gpu(H, nh * sizeof *H);
  double *dscratch = rcc_test_gpu_nan_doubles(nx);
  double *scratch = rcc_test_malloc(nx * sizeof *scratch);
  for (int call = 0; call < 2; call++) { /* accumulates */
    assert_int_equal(rcc_backend_gram_f64(rcc_test_gpu, dH, dX, N, d, dscratch), RCC_OK);
    assert_int_equal(rcc_backend_gram_f64(rcc_test_cpu, H, X, N, d, scratch), RCC_OK);
  }
  double *got = rcc_test_malloc(nh * sizeof *got);
  assert_int_equal(rcc_backend_synchronize(rcc_test_gpu), RCC_OK);
  assert_int_equal(rcc_backend_download(rcc_test_gpu, got, dH, nh * sizeof *got), RCC_OK);
  double err = 0.0, scale = 1e-300;
  size_t lower_changed = 0;
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      const size_t k = (size_t)i * d + j;
      if (j < i) {
        lower_changed += got[k] != -42.0;
        continue;
      }
      err = isnan(got[k]) ? INFINITY : fmax(err, fabs(got[k] - H[k]));
      scale = fmax(scale, fabs(H[k]));
    }
  printf("  gram %5d x %4d: error %.2e (bound 1e-13), %zu lower entries changed\n", N, d,
         err / scale, lower_changed);
  assert_true(err / scale <= 1e-13);
  assert_int_equal(lower_changed, 0);
  rcc_backend_release(rcc_test_gpu, dX);
  rcc_backend_release(rcc_test_gpu, dH);
  rcc_backend_release(rcc_test_gpu, dscratch);
  free(X);
  free(H);
  free(scratch);
  free(got);
}

static void test_gram(void **state) {
  check_gram(1, 1);
  check_gram(7, 33);
  check_gram(400, 768);
  check_gram(400, 3072);
  check_gram(77, 512);
}

int main(void) {
  if (rcc_test_gpu_missing()) return 77;
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_gram)};
  return cmocka_run_group_tests(tests, rcc_test_open_cpu_and_gpu, rcc_test_close_backends);
}
