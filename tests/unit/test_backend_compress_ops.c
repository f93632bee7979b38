/* The compression ops of the CPU backend (backend.h: SVD, Cholesky, pruning masks, scalings)
 * against references computed here independently: SVDs of matrices built with known
 * singular values, L L^T and A^-1 A products, brute-force rankings for the masks, hand-made
 * tie cases for the order of scores, and the argument errors of backend.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tests/backend_pair.h"
#include "tests/harness.h"

static double *alloc_doubles(size_t n) { return rcc_test_malloc(n * sizeof(double)); }

/* The Householder reflection I - 2 v v^T / (v^T v), (d,d), of a random v: orthogonal. */
static double *householder(int d) {
  double *v = rcc_test_random_doubles((size_t)d), vv = 0.0;
  for (int i = 0; i < d; i++)
    vv += v[i] * v[i];
  double *H = alloc_doubles((size_t)d * d);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      H[(size_t)i * d + j] = (i == j) - 2.0 * v[i] * v[j] / vv;
  free(v);
  return H;
}

/* Max |G - I| of the Gram matrix G (k,k) = sum over `len` of x[a] x[b], where element t of
 * vector a is X[a * stride_v + t * stride_t]. */
static double orthonormality_error(const double *X, int k, int len, int stride_v, int stride_t) {
  double worst = 0.0;
  for (int a = 0; a < k; a++)
    for (int b = 0; b < k; b++) {
      double g = 0.0;
      for (int t = 0; t < len; t++)
        g += X[(size_t)a * stride_v + (size_t)t * stride_t] *
             X[(size_t)b * stride_v + (size_t)t * stride_t];
      worst = fmax(worst, fabs(g - (a == b)));
    }
  return worst;
}

/* A (m,n) = H1[:, :k] diag(sigma) H2[:k, :] has singular values sigma exactly (up to
 * rounding); the op must reconstruct A, return orthonormal factors and find sigma. */
static void check_svd(int m, int n) {
  const int k = m < n ? m : n;
  double *H1 = householder(m), *H2 = householder(n), *sigma = alloc_doubles((size_t)k);
  for (int l = 0; l < k; l++)
    sigma[l] =
        10.0 / (1.0 + l) + 0.01 * l * l; /* distinct, not monotone: must rcc_test_cpu sorted */
  double *A = alloc_doubles((size_t)m * n);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double a = 0.0;
      for (int l = 0; l < k; l++)
        a += H1[(size_t)i * m + l] * sigma[l] * H2[(size_t)l * n + j];
      A[(size_t)i * n + j] = a;
    }
  double *work = alloc_doubles((size_t)m * n), *U = alloc_doubles((size_t)m * k);
  double *S = alloc_doubles((size_t)k), *Vt = alloc_doubles((size_t)k * n);
  memcpy(work, A, (size_t)m * n * sizeof *A);
  assert_int_equal(rcc_backend_svd_f64(rcc_test_cpu, m, n, work, U, S, Vt), RCC_OK);

  double *R = alloc_doubles((size_t)m * n);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double r = 0.0;
      for (int l = 0; l < k; l++)
        r += U[(size_t)i * k + l] * S[l] * Vt[(size_t)l * n + j];
      R[(size_t)i * n + j] = r;
    }
  char what[64];
  snprintf(what, sizeof what, "svd %dx%d reconstruction", m, n);
  rcc_test_expect_below(rcc_test_normalized_error_f64(R, A, (size_t)m * n), 1e-12, what);
  snprintf(what, sizeof what, "svd %dx%d U^T U = I", m, n);
  rcc_test_expect_below(orthonormality_error(U, k, m, 1, k), 1e-12, what);
  snprintf(what, sizeof what, "svd %dx%d Vt Vt^T = I", m, n);
  rcc_test_expect_below(orthonormality_error(Vt, k, n, n, 1), 1e-12, what);
  for (int l = 0; l < k; l++) {
    assert_true(S[l] >= 0.0);
    if (l > 0) assert_true(S[l] <= S[l - 1]);
  }
  /* sigma sorted descending is what S must rcc_test_cpu. */
  for (int a = 1; a < k; a++)
    for (int b = a; b > 0 && sigma[b] > sigma[b - 1]; b--) {
      double t = sigma[b];
      sigma[b] = sigma[b - 1];
      sigma[b - 1] = t;
    }
  snprintf(what, sizeof what, "svd %dx%d singular values", m, n);
  rcc_test_expect_below(rcc_test_normalized_error_f64(S, sigma, (size_t)k), 1e-12, what);
  free(H1);
  free(H2);
  free(sigma);
  free(A);
  free(work);
  free(U);
  free(S);
  free(Vt);
  free(R);
}

static void test_svd(void **state) {
  check_svd(40, 25); /* tall */
  check_svd(25, 40); /* wide */
  check_svd(30, 30); /* square */
  check_svd(1, 7);
  check_svd(7, 1);
  check_svd(120, 64);
}

/* A random symmetric positive definite matrix (n,n): B B^T + n I. */
static double *spd_matrix(int n) {
  double *B = rcc_test_random_doubles((size_t)n * n), *A = alloc_doubles((size_t)n * n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double a = i == j ? n : 0.0;
      for (int t = 0; t < n; t++)
        a += B[(size_t)i * n + t] * B[(size_t)j * n + t];
      A[(size_t)i * n + j] = a;
    }
  free(B);
  return A;
}

static void check_cholesky(int n, rcc_triangle_t tri) {
  const bool lower = tri == RCC_TRIANGLE_LOWER;
  double *A = spd_matrix(n), *F = alloc_doubles((size_t)n * n);
  /* NaN in the triangle that must not rcc_test_cpu read. */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      F[(size_t)i * n + j] = (lower ? j > i : j < i) ? NAN : A[(size_t)i * n + j];
  assert_int_equal(rcc_backend_cholesky_f64(rcc_test_cpu, n, F, tri), RCC_OK);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (lower ? j > i : j < i) assert_true(F[(size_t)i * n + j] == 0.0);
  /* F F^T (lower: F = L) or F^T F (upper: F = R) must give A back. */
  double *P = alloc_doubles((size_t)n * n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double p = 0.0;
      for (int t = 0; t < n; t++)
        p += lower ? F[(size_t)i * n + t] * F[(size_t)j * n + t]
                   : F[(size_t)t * n + i] * F[(size_t)t * n + j];
      P[(size_t)i * n + j] = p;
    }
  rcc_test_expect_below(rcc_test_normalized_error_f64(P, A, (size_t)n * n), 1e-12,
                        lower ? "L L^T = A" : "R^T R = A");

  assert_int_equal(rcc_backend_cholesky_inverse_f64(rcc_test_cpu, n, F, tri), RCC_OK);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      assert_true(F[(size_t)i * n + j] == F[(size_t)j * n + i]);
      double p = 0.0;
      for (int t = 0; t < n; t++)
        p += F[(size_t)i * n + t] * A[(size_t)t * n + j];
      P[(size_t)i * n + j] = p - (i == j);
    }
  double worst = 0.0;
  for (size_t i = 0; i < (size_t)n * n; i++)
    worst = fmax(worst, fabs(P[i]));
  rcc_test_expect_below(worst, 1e-12, lower ? "A^-1 A = I (lower)" : "A^-1 A = I (upper)");
  free(A);
  free(F);
  free(P);
}

static void test_cholesky(void **state) {
  check_cholesky(50, RCC_TRIANGLE_LOWER);
  check_cholesky(50, RCC_TRIANGLE_UPPER);
  check_cholesky(1, RCC_TRIANGLE_LOWER);
}

static void test_cholesky_failures(void **state) {
  /* Leading minors 4, 8, -8: the third is the first that is not positive. */
  const double not_pd[16] = {4, 2, 0, 0, 2, 3, 0, 0, 0, 0, -1, 0, 0, 0, 0, 5};
  for (int t = 0; t < 2; t++) {
    double A[16];
    memcpy(A, not_pd, sizeof A);
    assert_int_equal(
        rcc_backend_cholesky_f64(rcc_test_cpu, 4, A, t ? RCC_TRIANGLE_UPPER : RCC_TRIANGLE_LOWER),
        RCC_ERR_NUMERIC);
    assert_non_null(strstr(rcc_last_error(), "leading minor of order 3"));
  }
  /* A factor with a zero on its diagonal has no inverse. */
  double L[9] = {2, 0, 0, 1, 0, 0, 1, 1, 3};
  assert_int_equal(rcc_backend_cholesky_inverse_f64(rcc_test_cpu, 3, L, RCC_TRIANGLE_LOWER),
                   RCC_ERR_NUMERIC);
  assert_non_null(strstr(rcc_last_error(), "singular"));
}

/* True when score a at index ia ranks above score b at index ib (backend.h's order for
 * non-NaN scores, written with float comparisons). */
static bool ranks_above(float a, int ia, float b, int ib) { return a > b || (a == b && ia > ib); }

/* Checks one row of a top-k (or one N:M group) mask: exactly `keep` ones, and every kept
 * score ranks above every dropped one (checked between the weakest kept and the strongest
 * dropped, O(n)). */
static void check_selection(const float *s, const uint8_t *mask, int n, int keep) {
  int kept = 0, weakest = -1, strongest = -1;
  for (int j = 0; j < n; j++) {
    assert_true(mask[j] == 0 || mask[j] == 1);
    if (mask[j]) {
      kept++;
      if (weakest < 0 || ranks_above(s[weakest], weakest, s[j], j)) weakest = j;
    } else if (strongest < 0 || ranks_above(s[j], j, s[strongest], strongest)) {
      strongest = j;
    }
  }
  assert_int_equal(kept, keep);
  if (weakest >= 0 && strongest >= 0)
    assert_true(ranks_above(s[weakest], weakest, s[strongest], strongest));
}

static void expect_mask(const uint8_t *got, const uint8_t *want, int n) {
  for (int j = 0; j < n; j++)
    if (got[j] != want[j]) {
      print_error("mask[%d] = %d, expected %d\n", j, got[j], want[j]);
      fail();
    }
}

static void test_topk_ties(void **state) {
  uint8_t mask[5];
  const float threes[5] = {1, 3, 3, 2, 3};
  assert_int_equal(rcc_backend_row_topk_mask(rcc_test_cpu, threes, 1, 5, 2, mask), RCC_OK);
  expect_mask(mask, (const uint8_t[]){0, 0, 1, 0, 1}, 5);
  assert_int_equal(rcc_backend_row_topk_mask(rcc_test_cpu, threes, 1, 5, 3, mask), RCC_OK);
  expect_mask(mask, (const uint8_t[]){0, 1, 1, 0, 1}, 5);
  const float zeros[4] = {-1.0f, -0.0f, 0.0f, 0.0f}; /* -0 ties with +0 */
  assert_int_equal(rcc_backend_row_topk_mask(rcc_test_cpu, zeros, 1, 4, 2, mask), RCC_OK);
  expect_mask(mask, (const uint8_t[]){0, 0, 1, 1}, 4);
  const float nans[4] = {1.0f, -NAN, INFINITY, NAN}; /* +NaN above +inf, -NaN below all */
  assert_int_equal(rcc_backend_row_topk_mask(rcc_test_cpu, nans, 1, 4, 2, mask), RCC_OK);
  expect_mask(mask, (const uint8_t[]){0, 0, 1, 1}, 4);
  assert_int_equal(rcc_backend_row_topk_mask(rcc_test_cpu, nans, 1, 4, 3, mask), RCC_OK);
  expect_mask(mask, (const uint8_t[]){1, 0, 1, 1}, 4);
}

static void test_topk_random(void **state) {
  const int m = 37, n = 129, keeps[] = {0, 1, 17, 64, 128, 129};
  float *s = rcc_test_random_floats((size_t)m * n, -4, 4);
  for (size_t i = 0; i < (size_t)m * n; i++)
    s[i] = floorf(s[i]); /* 8 values: ties everywhere */
  uint8_t *mask = rcc_test_poisoned_mask((size_t)m * n);
  for (size_t t = 0; t < sizeof keeps / sizeof keeps[0]; t++) {
    assert_int_equal(rcc_backend_row_topk_mask(rcc_test_cpu, s, m, n, keeps[t], mask), RCC_OK);
    for (int i = 0; i < m; i++) {
      const float *row = s + (size_t)i * n;
      /* Brute force: kept iff fewer than keep scores rank above it. */
      for (int j = 0; j < n; j++) {
        int above = 0;
        for (int a = 0; a < n; a++)
          above += ranks_above(row[a], a, row[j], j);
        assert_int_equal(mask[(size_t)i * n + j], above < keeps[t]);
      }
    }
  }
  free(s);
  free(mask);

  /* Rows longer than any shared-memory tile, distinct and tied values. */
  const int M = 3, N = 20000;
  s = rcc_test_random_floats((size_t)M * N, -1, 1);
  for (int j = 0; j < N; j++)
    s[N + j] = (float)(j % 7); /* row 1: seven values */
  mask = rcc_test_poisoned_mask((size_t)M * N);
  assert_int_equal(rcc_backend_row_topk_mask(rcc_test_cpu, s, M, N, 7001, mask), RCC_OK);
  for (int i = 0; i < M; i++)
    check_selection(s + (size_t)i * N, mask + (size_t)i * N, N, 7001);
  free(s);
  free(mask);
}

static void test_threshold(void **state) {
  const int64_t n = 1000;
  float *s = rcc_test_random_floats((size_t)n, -1, 1);
  const float special[] = {0.5f, -0.5f, 0.50001f, -0.50001f, NAN, -INFINITY, 0.0f};
  const uint8_t special_want[] = {0, 0, 1, 1, 0, 1, 0};
  memcpy(s, special, sizeof special);
  uint8_t *mask = rcc_test_poisoned_mask((size_t)n);
  assert_int_equal(rcc_backend_threshold_mask(rcc_test_cpu, s, n, 0.5f, mask), RCC_OK);
  expect_mask(mask, special_want, (int)(sizeof special_want));
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    if (i >= (int64_t)sizeof special_want) assert_int_equal(mask[i], fabsf(s[i]) > 0.5f);
    kept += mask[i];
  }
  assert_true(kept > n / 4 && kept < 3 * n / 4); /* about half of uniform [-1, 1) */
  free(s);
  free(mask);
}

static void test_nm(void **state) {
  const float groups[12] = {2, 2, 2, 2, 1, 5, 5, 0, -1, -1, -3, -1};
  uint8_t mask[12];
  assert_int_equal(rcc_backend_nm_mask(rcc_test_cpu, groups, 1, 12, 2, 4, mask), RCC_OK);
  expect_mask(mask, (const uint8_t[]){0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1}, 12);
  assert_int_equal(rcc_backend_nm_mask(rcc_test_cpu, groups, 3, 4, 1, 4, mask), RCC_OK);
  expect_mask(mask, (const uint8_t[]){0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1}, 12);

  const int m = 16, n = 128;
  const int patterns[][2] = {{2, 4}, {4, 8}, {1, 4}, {3, 3}, {5, 64}};
  float *s = rcc_test_random_floats((size_t)m * n, -3, 3);
  for (size_t i = 0; i < (size_t)m * n; i += 2)
    s[i] = roundf(s[i]); /* half the scores tie often */
  uint8_t *big = rcc_test_poisoned_mask((size_t)m * n);
  for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
    const int N = patterns[p][0], M = patterns[p][1];
    const int cols = n / M * M; /* 128 is no multiple of 3 */
    assert_int_equal(rcc_backend_nm_mask(rcc_test_cpu, s, m, cols, N, M, big), RCC_OK);
    for (int g = 0; g < m * cols; g += M)
      check_selection(s + g, big + g, M, N);
  }
  free(s);
  free(big);
}

static void test_apply_mask_and_scale_rows(void **state) {
  const int m = 13, n = 77;
  const size_t count = (size_t)m * n;
  float *W = rcc_test_random_floats(count, -2, 2), *orig = rcc_test_malloc(count * sizeof *orig);
  assert_non_null(orig);
  uint8_t *mask = rcc_test_malloc(count);
  assert_non_null(mask);
  for (size_t i = 0; i < count; i++)
    mask[i] = (i * 7) % 3 != 0;
  W[0] = NAN;   /* mask[0] = 0: becomes +0 */
  W[3] = -1.5f; /* mask[3] = 0: becomes +0, not -0 */
  memcpy(orig, W, count * sizeof *W);
  assert_int_equal(rcc_backend_apply_mask(rcc_test_cpu, W, mask, (int64_t)count), RCC_OK);
  for (size_t i = 0; i < count; i++) {
    if (mask[i]) {
      assert_memory_equal(&W[i], &orig[i], sizeof *W);
    } else {
      assert_true(W[i] == 0.0f);
      assert_false(signbit(W[i]));
    }
  }

  float *alpha = rcc_test_random_floats((size_t)m, 0.5f, 2.0f);
  memcpy(orig, W, count * sizeof *W);
  assert_int_equal(rcc_backend_scale_rows(rcc_test_cpu, W, alpha, m, n), RCC_OK);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++)
      assert_true(W[(size_t)i * n + j] == orig[(size_t)i * n + j] * alpha[i]);
  free(W);
  free(orig);
  free(mask);
  free(alpha);
}

/* Each bad call must return RCC_ERR_ARG with a message from backend.c. */
static void expect_arg_error(rcc_status_t st, const char *what) {
  if (st != RCC_ERR_ARG) {
    print_error("%s: status %d, expected RCC_ERR_ARG\n", what, (int)st);
    fail();
  }
  assert_non_null(strstr(rcc_last_error(), "backend.c"));
}

static void test_argument_errors(void **state) {
  float s[8] = {0};
  uint8_t mask[8];
  double A[16] = {0}, U[16], S[4], Vt[16];
  expect_arg_error(rcc_backend_nm_mask(rcc_test_cpu, s, 1, 6, 2, 4, mask), "n % M != 0");
  expect_arg_error(rcc_backend_nm_mask(rcc_test_cpu, s, 1, 8, 5, 4, mask), "N > M");
  expect_arg_error(rcc_backend_nm_mask(rcc_test_cpu, s, 1, 8, 0, 4, mask), "N = 0");
  expect_arg_error(rcc_backend_nm_mask(rcc_test_cpu, s, 1, 128, 2, 128, mask), "M past the limit");
  expect_arg_error(rcc_backend_nm_mask(rcc_test_cpu, NULL, 1, 8, 2, 4, mask), "NULL scores");
  expect_arg_error(rcc_backend_row_topk_mask(rcc_test_cpu, s, 1, 8, 9, mask), "keep > n");
  expect_arg_error(rcc_backend_row_topk_mask(rcc_test_cpu, s, 1, 8, -1, mask), "keep < 0");
  expect_arg_error(rcc_backend_row_topk_mask(rcc_test_cpu, s, 1, 8, 2, NULL), "NULL mask");
  expect_arg_error(rcc_backend_row_topk_mask(NULL, s, 1, 8, 2, mask), "NULL backend");
  expect_arg_error(rcc_backend_row_topk_mask(rcc_test_cpu, s, -1, 8, 2, mask), "negative rows");
  expect_arg_error(rcc_backend_threshold_mask(rcc_test_cpu, s, 8, NAN, mask), "NaN threshold");
  expect_arg_error(rcc_backend_threshold_mask(rcc_test_cpu, s, -1, 0.5f, mask), "negative count");
  expect_arg_error(rcc_backend_apply_mask(rcc_test_cpu, s, NULL, 8), "apply_mask NULL mask");
  expect_arg_error(rcc_backend_scale_rows(rcc_test_cpu, s, NULL, 2, 4), "scale_rows NULL alpha");
  expect_arg_error(rcc_backend_svd_f64(rcc_test_cpu, 4, 4, A, NULL, S, Vt), "svd NULL U");
  expect_arg_error(rcc_backend_svd_f64(rcc_test_cpu, 4, 4, A, A, S, Vt), "svd U overlaps A");
  expect_arg_error(rcc_backend_svd_f64(rcc_test_cpu, 4, 4, A, U, U + 15, Vt), "svd S overlaps U");
  expect_arg_error(rcc_backend_svd_f64(rcc_test_cpu, -4, 4, A, U, S, Vt), "svd negative m");
  expect_arg_error(rcc_backend_cholesky_f64(rcc_test_cpu, 4, A, (rcc_triangle_t)7),
                   "unknown triangle");
  expect_arg_error(rcc_backend_cholesky_f64(rcc_test_cpu, 4, NULL, RCC_TRIANGLE_LOWER), "NULL A");
  expect_arg_error(rcc_backend_cholesky_inverse_f64(rcc_test_cpu, -1, A, RCC_TRIANGLE_LOWER),
                   "negative n");
  /* Empty shapes are no-ops, even with NULL data. */
  assert_int_equal(rcc_backend_row_topk_mask(rcc_test_cpu, NULL, 0, 8, 2, NULL), RCC_OK);
  assert_int_equal(rcc_backend_svd_f64(rcc_test_cpu, 0, 5, NULL, NULL, NULL, NULL), RCC_OK);
  assert_int_equal(rcc_backend_cholesky_f64(rcc_test_cpu, 0, NULL, RCC_TRIANGLE_UPPER), RCC_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_svd),
      cmocka_unit_test(test_cholesky),
      cmocka_unit_test(test_cholesky_failures),
      cmocka_unit_test(test_topk_ties),
      cmocka_unit_test(test_topk_random),
      cmocka_unit_test(test_threshold),
      cmocka_unit_test(test_nm),
      cmocka_unit_test(test_apply_mask_and_scale_rows),
      cmocka_unit_test(test_argument_errors),
  };
  return cmocka_run_group_tests(tests, rcc_test_open_cpu, rcc_test_close_backends);
}
