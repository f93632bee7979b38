/* The compression ops of the CUDA backend against the CPU reference (backend.h: SVD,
 * Cholesky, pruning masks, scalings), on random inputs and the ViT-B/32 weight shapes, the
 * outputs poisoned before every GPU run (NaN for floats, 0xAB for masks) so that an entry
 * the kernel forgot to write fails. Bounds, stated per op:
 *  - SVD: singular values within 1e-12 of the CPU's (relative to the largest); U and V are
 *    not compared (their signs, and bases of repeated values, are the solver's choice):
 *    U diag(S) Vt must give A back within 1e-11 (relative to max |A|; ~sqrt(k) eps S_max
 *    for k up to 768) and U, V must be orthonormal within 1e-11.
 *  - Cholesky factor within 1e-12 of the CPU's, inverse within 1e-10 (both relative).
 *  - masks and scalings: exactly equal, ties included (both backends use backend.h's order
 *    of scores, and the scalings are one IEEE multiply per value).
 * Without a GPU (or a CUDA build) it prints "skipped: no GPU" and exits 77. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tests/backend_pair.h"
#include "tests/harness.h"

static void expect_equal_bytes(const void *got, const void *want, size_t bytes, const char *what) {
  const uint8_t *g = got, *w = want;
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < bytes; i++)
    if (g[i] != w[i] && bad++ == 0) first = i;
  printf("  %-44s %zu of %zu bytes differ\n", what, bad, bytes);
  if (bad) {
    print_error("%s: byte %zu is %d on the GPU, %d on the CPU\n", what, first, g[first], w[first]);
    fail();
  }
}

/* Max |G - I| of the Gram matrix G (k,k): X^T X of the columns of X (len,k), or with `rows`
 * X X^T of the rows of X (k,len). */
static double orthonormality_error(const double *X, int k, int len, bool rows) {
  double *G = rcc_test_malloc((size_t)k * k * sizeof *G);
  if (rows)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, len, 1.0, X, len, X, len, 0.0, G, k);
  else
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, k, len, 1.0, X, k, X, k, 0.0, G, k);
  double worst = 0.0;
  for (int a = 0; a < k; a++)
    for (int b = 0; b < k; b++)
      worst = fmax(worst, fabs(G[(size_t)a * k + b] - (a == b)));
  free(G);
  return worst;
}

static void check_svd(int m, int n) {
  const int k = m < n ? m : n;
  const size_t mn = (size_t)m * n, d = sizeof(double);
  double *A = rcc_test_random_doubles(mn), *work = rcc_test_malloc(mn * d);
  double *U = rcc_test_malloc((size_t)m * k * d), *S = rcc_test_malloc((size_t)k * d);
  double *Vt = rcc_test_malloc((size_t)k * n * d);
  memcpy(work, A, mn * d);
  assert_int_equal(rcc_backend_svd_f64(rcc_test_cpu, m, n, work, U, S, Vt), RCC_OK);

  double *dA = rcc_test_to_gpu(A, mn * d), *dU = rcc_test_gpu_nan_doubles((size_t)m * k);
  double *dS = rcc_test_gpu_nan_doubles((size_t)k), *dVt = rcc_test_gpu_nan_doubles((size_t)k * n);
  assert_int_equal(rcc_backend_svd_f64(rcc_test_gpu, m, n, dA, dU, dS, dVt), RCC_OK);
  double *gU = rcc_test_from_gpu_bytes(dU, (size_t)m * k * d),
         *gS = rcc_test_from_gpu_bytes(dS, (size_t)k * d);
  double *gVt = rcc_test_from_gpu_bytes(dVt, (size_t)k * n * d);

  char what[80];
  snprintf(what, sizeof what, "svd %dx%d singular values", m, n);
  rcc_test_expect_below(rcc_test_normalized_error_f64(gS, S, (size_t)k), 1e-12, what);
  /* (U diag(S)) Vt from the GPU's factors, against the original A; U is used from the CPU's
   * buffer, which is no longer needed. */
  for (int i = 0; i < m; i++)
    for (int l = 0; l < k; l++)
      U[(size_t)i * k + l] = gU[(size_t)i * k + l] * gS[l];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0, U, k, gVt, n, 0.0, work, n);
  snprintf(what, sizeof what, "svd %dx%d reconstruction", m, n);
  rcc_test_expect_below(rcc_test_normalized_error_f64(work, A, mn), 1e-11, what);
  snprintf(what, sizeof what, "svd %dx%d U^T U = I", m, n);
  rcc_test_expect_below(orthonormality_error(gU, k, m, false), 1e-11, what);
  snprintf(what, sizeof what, "svd %dx%d Vt Vt^T = I", m, n);
  rcc_test_expect_below(orthonormality_error(gVt, k, n, true), 1e-11, what);

  rcc_backend_release(rcc_test_gpu, dA);
  rcc_backend_release(rcc_test_gpu, dU);
  rcc_backend_release(rcc_test_gpu, dS);
  rcc_backend_release(rcc_test_gpu, dVt);
  free(A);
  free(work);
  free(U);
  free(S);
  free(Vt);
  free(gU);
  free(gS);
  free(gVt);
}

static void test_svd(void **state) {
  check_svd(67, 45);    /* tall: transposed for cuSOLVER */
  check_svd(45, 67);    /* wide: no copy */
  check_svd(64, 64);    /* square */
  check_svd(1, 9);      /* a single singular value */
  check_svd(768, 768);  /* ViT-B/32 attention projections */
  check_svd(3072, 768); /* MLP fc2^T / fc1 */
  check_svd(768, 3072); /* MLP fc2 */
}

/* A (n,n) = B B^T / n + I: symmetric positive definite, well conditioned. */
static double *spd_matrix(int n) {
  double *B = rcc_test_random_doubles((size_t)n * n),
         *A = rcc_test_malloc((size_t)n * n * sizeof *A);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0 / n, B, n, B, n, 0.0, A, n);
  for (int i = 0; i < n; i++)
    A[(size_t)i * n + i] += 1.0;
  free(B);
  return A;
}

static void check_cholesky(int n, rcc_triangle_t tri) {
  const bool lower = tri == RCC_TRIANGLE_LOWER;
  const size_t nn = (size_t)n * n, bytes = nn * sizeof(double);
  double *A = spd_matrix(n);
  /* NaN in the triangle that must not be read, on both backends. */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (lower ? j > i : j < i) A[(size_t)i * n + j] = NAN;
  double *dA = rcc_test_to_gpu(A, bytes);
  assert_int_equal(rcc_backend_cholesky_f64(rcc_test_cpu, n, A, tri), RCC_OK);
  assert_int_equal(rcc_backend_cholesky_f64(rcc_test_gpu, n, dA, tri), RCC_OK);
  double *got = rcc_test_from_gpu_bytes(dA, bytes);
  char what[80];
  snprintf(what, sizeof what, "cholesky %d %s", n, lower ? "lower" : "upper");
  rcc_test_expect_below(rcc_test_normalized_error_f64(got, A, nn), 1e-12, what);
  free(got);

  assert_int_equal(rcc_backend_cholesky_inverse_f64(rcc_test_cpu, n, A, tri), RCC_OK);
  assert_int_equal(rcc_backend_cholesky_inverse_f64(rcc_test_gpu, n, dA, tri), RCC_OK);
  got = rcc_test_from_gpu_bytes(dA, bytes);
  snprintf(what, sizeof what, "cholesky inverse %d %s", n, lower ? "lower" : "upper");
  rcc_test_expect_below(rcc_test_normalized_error_f64(got, A, nn), 1e-10, what);
  rcc_backend_release(rcc_test_gpu, dA);
  free(got);
  free(A);
}

static void test_cholesky(void **state) {
  check_cholesky(64, RCC_TRIANGLE_LOWER);
  check_cholesky(64, RCC_TRIANGLE_UPPER);
  check_cholesky(768, RCC_TRIANGLE_LOWER);
  check_cholesky(768, RCC_TRIANGLE_UPPER);
  /* Leading minors 4, 8, -8: the GPU must name the third, as the CPU does. */
  const double not_pd[16] = {4, 2, 0, 0, 2, 3, 0, 0, 0, 0, -1, 0, 0, 0, 0, 5};
  double *dA = rcc_test_to_gpu(not_pd, sizeof not_pd);
  assert_int_equal(rcc_backend_cholesky_f64(rcc_test_gpu, 4, dA, RCC_TRIANGLE_LOWER),
                   RCC_ERR_NUMERIC);
  assert_non_null(strstr(rcc_last_error(), "leading minor of order 3"));
  rcc_backend_release(rcc_test_gpu, dA);
}

/* Scores (m,n) in [-1, 1), every other one rounded to a tenth so that ties are common, and
 * the special values of backend.h's order at the start. */
static float *tied_scores(size_t count) {
  float *s = rcc_test_random_floats(count, -1, 1);
  for (size_t i = 0; i < count; i += 2)
    s[i] = roundf(s[i] * 10.0f) / 10.0f;
  const float special[] = {0.0f, -0.0f, NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f};
  memcpy(s, special, (count < 8 ? count : 8) * sizeof *s);
  return s;
}

static void check_topk(int m, int n, int keep) {
  const size_t count = (size_t)m * n;
  float *s = tied_scores(count);
  uint8_t *want = rcc_test_malloc(count);
  assert_int_equal(rcc_backend_row_topk_mask(rcc_test_cpu, s, m, n, keep, want), RCC_OK);
  float *ds = rcc_test_to_gpu(s, count * sizeof *s);
  uint8_t *dmask = rcc_test_gpu_poisoned_mask(count);
  assert_int_equal(rcc_backend_row_topk_mask(rcc_test_gpu, ds, m, n, keep, dmask), RCC_OK);
  uint8_t *got = rcc_test_from_gpu_bytes(dmask, count);
  char what[80];
  snprintf(what, sizeof what, "row_topk_mask %dx%d keep %d", m, n, keep);
  expect_equal_bytes(got, want, count, what);
  rcc_backend_release(rcc_test_gpu, ds);
  rcc_backend_release(rcc_test_gpu, dmask);
  free(s);
  free(want);
  free(got);
}

static void test_row_topk_mask(void **state) {
  check_topk(768, 768, 384);
  check_topk(3072, 768, 77);
  check_topk(768, 3072, 2900);
  check_topk(768, 3072, 0);
  check_topk(768, 3072, 3072);
  check_topk(5, 20000, 6001); /* rows past any shared-memory tile */
  check_topk(1, 100000, 1);
  check_topk(33, 7, 3);
}

static void test_threshold_mask(void **state) {
  const size_t count = (size_t)3072 * 768;
  float *s = tied_scores(count);
  s[9] = 0.5f; /* exactly at the threshold: pruned */
  s[10] = -0.5f;
  uint8_t *want = rcc_test_malloc(count);
  assert_int_equal(rcc_backend_threshold_mask(rcc_test_cpu, s, (int64_t)count, 0.5f, want), RCC_OK);
  float *ds = rcc_test_to_gpu(s, count * sizeof *s);
  uint8_t *dmask = rcc_test_gpu_poisoned_mask(count);
  assert_int_equal(rcc_backend_threshold_mask(rcc_test_gpu, ds, (int64_t)count, 0.5f, dmask),
                   RCC_OK);
  uint8_t *got = rcc_test_from_gpu_bytes(dmask, count);
  expect_equal_bytes(got, want, count, "threshold_mask 3072x768 at 0.5");
  rcc_backend_release(rcc_test_gpu, ds);
  rcc_backend_release(rcc_test_gpu, dmask);
  free(s);
  free(want);
  free(got);
}

static void test_nm_mask(void **state) {
  const int m = 768, n = 3072, patterns[][2] = {{2, 4}, {4, 8}, {1, 4}, {16, 64}, {3, 3}};
  const size_t count = (size_t)m * n;
  float *s = tied_scores(count);
  float *ds = rcc_test_to_gpu(s, count * sizeof *s);
  uint8_t *want = rcc_test_malloc(count);
  for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
    const int N = patterns[p][0], M = patterns[p][1];
    assert_int_equal(rcc_backend_nm_mask(rcc_test_cpu, s, m, n, N, M, want), RCC_OK);
    uint8_t *dmask = rcc_test_gpu_poisoned_mask(count);
    assert_int_equal(rcc_backend_nm_mask(rcc_test_gpu, ds, m, n, N, M, dmask), RCC_OK);
    uint8_t *got = rcc_test_from_gpu_bytes(dmask, count);
    char what[80];
    snprintf(what, sizeof what, "nm_mask %d:%d on %dx%d", N, M, m, n);
    expect_equal_bytes(got, want, count, what);
    rcc_backend_release(rcc_test_gpu, dmask);
    free(got);
  }
  rcc_backend_release(rcc_test_gpu, ds);
  free(s);
  free(want);
}

static void test_apply_mask_and_scale_rows(void **state) {
  const int m = 3072, n = 768;
  const size_t count = (size_t)m * n;
  float *W = rcc_test_random_floats(count, -2, 2),
        *alpha = rcc_test_random_floats((size_t)m, 0.5f, 2.0f);
  W[0] = NAN; /* masked below: becomes +0 on both */
  uint8_t *mask = rcc_test_malloc(count);
  for (size_t i = 0; i < count; i++)
    mask[i] = (i * 2654435761u >> 7) % 3 != 0;
  mask[0] = 0;
  float *dW = rcc_test_to_gpu(W, count * sizeof *W),
        *dalpha = rcc_test_to_gpu(alpha, (size_t)m * sizeof *alpha);
  uint8_t *dmask = rcc_test_to_gpu(mask, count);

  assert_int_equal(rcc_backend_apply_mask(rcc_test_cpu, W, mask, (int64_t)count), RCC_OK);
  assert_int_equal(rcc_backend_apply_mask(rcc_test_gpu, dW, dmask, (int64_t)count), RCC_OK);
  float *got = rcc_test_from_gpu_bytes(dW, count * sizeof *W);
  expect_equal_bytes(got, W, count * sizeof *W, "apply_mask 3072x768");
  free(got);

  assert_int_equal(rcc_backend_scale_rows(rcc_test_cpu, W, alpha, m, n), RCC_OK);
  assert_int_equal(rcc_backend_scale_rows(rcc_test_gpu, dW, dalpha, m, n), RCC_OK);
  got = rcc_test_from_gpu_bytes(dW, count * sizeof *W);
  expect_equal_bytes(got, W, count * sizeof *W, "scale_rows 3072x768");
  free(got);

  rcc_backend_release(rcc_test_gpu, dW);
  rcc_backend_release(rcc_test_gpu, dalpha);
  rcc_backend_release(rcc_test_gpu, dmask);
  free(W);
  free(alpha);
  free(mask);
}

int main(void) {
  if (rcc_test_gpu_missing()) return 77;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_svd),           cmocka_unit_test(test_cholesky),
      cmocka_unit_test(test_row_topk_mask), cmocka_unit_test(test_threshold_mask),
      cmocka_unit_test(test_nm_mask),       cmocka_unit_test(test_apply_mask_and_scale_rows),
  };
  return cmocka_run_group_tests(tests, rcc_test_open_cpu_and_gpu, rcc_test_close_backends);
}
