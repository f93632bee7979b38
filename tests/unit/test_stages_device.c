/* The stage kernels on a backend (compress/device.h) against their host twins, through the
 * CPU backend's ops, at the ViT-B/32 shapes (768 x 768, 3072 x 768, 768 x 3072) and odd
 * small ones. What must match, and why these bounds:
 *   svd       same rank; ||U V - U' V'||_F / ||W||_F <= 2e-5. The host computes the SVD in
 *             float32, the backend in float64: the float32 factors carry ~k eps32 ||W|| of
 *             backward error, and the truncated product moves by that over the spectral
 *             gap at the cut, which the smooth spectra below keep open.
 *   whitened  same rank; <= 1e-6 relative to ||W||_F: both sides factor in float64 from the
 *             same damped H and differ only in summation order (GEMM vs TRMM), ~1e-11
 *             measured; the floor is the float32 rounding of the U and V both return.
 *   alpha     within 1e-6 relative (measured ~1e-12: float64 sums in another order).
 *   masks     identical masks and bit-identical weights, ties included (the inputs are
 *             quantized so that many scores tie at the cut).
 * The host svd is asked for its exact path: its AUTO path may pick the randomized SVD,
 * which the backend never uses. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/alpha.h"
#include "compress/device.h"
#include "compress/lowrank.h"
#include "compress/prune.h"
#include "tests/backend_pair.h"
#include "tests/harness.h"

/* W (m, n) with a smooth, decaying spectrum: Q1 diag(0.97^j) Q2 from random factors, so
 * that the energy rule cuts where consecutive singular values differ by a few percent. */
static float *smooth_matrix(int m, int n) {
  const int k = m < n ? m : n;
  float *A = rcc_test_random_floats((size_t)m * k, -1.0f, 1.0f);
  float *B = rcc_test_random_floats((size_t)k * n, -1.0f, 1.0f);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < k; j++)
      A[(size_t)i * k + j] *= (float)pow(0.97, j);
  float *W = rcc_test_malloc((size_t)m * n * sizeof *W);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f / (float)sqrt(k), A, k, B, n,
              0.0f, W, n);
  free(A);
  free(B);
  return W;
}

/* H (n, n) = X^T X for a random X (N, n). */
static double *gram(int N, int n) {
  float *Xf = rcc_test_random_floats((size_t)N * n, -1.0f, 1.0f);
  double *X = rcc_test_malloc((size_t)N * n * sizeof *X);
  for (size_t i = 0; i < (size_t)N * n; i++)
    X[i] = Xf[i];
  double *H = rcc_test_malloc((size_t)n * n * sizeof *H);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, N, 1.0, X, n, X, n, 0.0, H, n);
  free(Xf);
  free(X);
  return H;
}

/* ||U V - U' V'||_F / ||W||_F. */
static double product_error(const rcc_lowrank_t *a, const rcc_lowrank_t *b, const float *W) {
  const int m = a->m, n = a->n;
  float *P = rcc_test_malloc((size_t)m * n * sizeof *P);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, a->rank, 1.0f, a->U, a->rank, a->V,
              n, 0.0f, P, n);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, b->rank, -1.0f, b->U, b->rank, b->V,
              n, 1.0f, P, n);
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < (size_t)m * n; i++) {
    diff += (double)P[i] * P[i];
    norm += (double)W[i] * W[i];
  }
  free(P);
  return sqrt(diff / norm);
}

static const int SHAPES[][2] = {{768, 768}, {3072, 768}, {768, 3072}, {37, 53}, {61, 17}, {1, 5}};
enum { NSHAPES = sizeof SHAPES / sizeof SHAPES[0] };

static void test_svd(void **state) {
  (void)state;
  const rcc_rank_rule_t rules[] = {{0.9, 1.0, 1}, {0.99, 0.25, 2}};
  for (int s = 0; s < NSHAPES; s++)
    for (int r = 0; r < 2; r++) {
      const int m = SHAPES[s][0], n = SHAPES[s][1];
      float *W = smooth_matrix(m, n);
      rcc_lowrank_t host, dev;
      double dh = 0.0, dd = 0.0;
      assert_int_equal(rcc_lowrank_svd_path(W, m, n, &rules[r], RCC_SVD_EXACT, &host, &dh), RCC_OK);
      assert_int_equal(rcc_lowrank_svd_on(rcc_test_cpu, W, m, n, &rules[r], &dev, &dd), RCC_OK);
      const double err = product_error(&dev, &host, W);
      printf("  svd      %4d x %4d rule %d: rank %d / %d, error %.2e (bound 2e-5)\n", m, n, r,
             dev.rank, host.rank, err);
      assert_int_equal(dev.rank, host.rank);
      assert_true(err <= 2e-5);
      assert_true(fabs(dd - dh) <= 1e-4 * (dh + 1e-30) + 1e-12);
      rcc_lowrank_free(&host);
      rcc_lowrank_free(&dev);
      free(W);
    }
}

static void test_whitened(void **state) {
  (void)state;
  const rcc_rank_rule_t rule = {0.9, 1.0, 1};
  for (int s = 0; s < NSHAPES; s++) {
    const int m = SHAPES[s][0], n = SHAPES[s][1];
    float *W = smooth_matrix(m, n);
    double *H = gram(n < 256 ? 2 * n : 256, n); /* rank-deficient for wide n: damping needed */
    rcc_lowrank_t host, dev;
    assert_int_equal(rcc_lowrank_whitened(W, m, n, H, 0.01, &rule, &host), RCC_OK);
    assert_int_equal(rcc_lowrank_whitened_on(rcc_test_cpu, W, m, n, H, 0.01, &rule, &dev), RCC_OK);
    const double err = product_error(&dev, &host, W);
    printf("  whitened %4d x %4d: rank %d / %d, error %.2e (bound 1e-6)\n", m, n, dev.rank,
           host.rank, err);
    assert_int_equal(dev.rank, host.rank);
    /* Both sides round U and V to float32 at the end: that is the floor of the comparison. */
    assert_true(err <= 1e-6);
    rcc_lowrank_free(&host);
    rcc_lowrank_free(&dev);
    free(W);
    free(H);
  }
  /* Not positive definite even after damping (H = 0 has mean diagonal 0): same refusal. */
  float W[6] = {1, 2, 3, 4, 5, 6};
  double H[9] = {0};
  rcc_lowrank_t lr;
  assert_int_equal(rcc_lowrank_whitened_on(rcc_test_cpu, W, 2, 3, H, 0.01, &rule, &lr),
                   RCC_ERR_NUMERIC);
  H[0] = 1.0;
  H[4] = -5.0; /* mean diagonal > 0 but the matrix is indefinite */
  H[8] = 5.0;
  assert_int_equal(rcc_lowrank_whitened_on(rcc_test_cpu, W, 2, 3, H, 0.0, &rule, &lr),
                   RCC_ERR_NUMERIC);
}

static void test_alpha(void **state) {
  (void)state;
  const int shapes[][2] = {{768, 768}, {3072, 768}, {768, 3072}, {5, 3}, {1, 1}};
  for (int s = 0; s < 5; s++)
    for (int l = 0; l < 2; l++) {
      const int m = shapes[s][0], n = shapes[s][1];
      const double lambda = l ? 0.5 : 0.0;
      float *W = rcc_test_random_floats((size_t)m * n, -1.0f, 1.0f);
      float *W_hat = rcc_test_random_floats((size_t)m * n, -0.2f, 0.2f);
      for (size_t i = 0; i < (size_t)m * n; i++)
        W_hat[i] += 0.8f * W[i];
      memset(W_hat, 0, (size_t)n * sizeof *W_hat); /* row 0 degenerate: alpha 1 */
      double *H = gram(64, n);
      float *a_host = rcc_test_malloc((size_t)m * sizeof *a_host);
      float *a_dev = rcc_test_nan_floats((size_t)m);
      assert_int_equal(rcc_alpha_closed_form(W, W_hat, m, n, H, lambda, a_host), RCC_OK);
      assert_int_equal(rcc_alpha_closed_form_on(rcc_test_cpu, W, W_hat, m, n, H, lambda, a_dev),
                       RCC_OK);
      assert_true(a_dev[0] == 1.0f);
      assert_allclose(a_dev, a_host, (size_t)m, 0.0, 1e-6);
      free(W);
      free(W_hat);
      free(H);
      free(a_host);
      free(a_dev);
    }
}

/* W quantized to 16 levels (many ties at any cut) and a mask with every 7th entry pruned
 * and every 11th group of 8 pruned whole (an N:M group then holds more pruned entries than
 * the pattern drops: they must stay pruned). */
static void prune_inputs(int m, int n, float **W, uint8_t **mask) {
  *W = rcc_test_random_floats((size_t)m * n, -8.0f, 8.0f);
  *mask = rcc_test_malloc((size_t)m * n);
  for (size_t i = 0; i < (size_t)m * n; i++) {
    (*W)[i] = truncf((*W)[i]) * 0.25f;
    (*mask)[i] = i % 7 != 3 && (i / 8) % 11 != 5;
  }
}

static void expect_same(const float *W1, const uint8_t *m1, const float *W2, const uint8_t *m2,
                        size_t count, const char *what) {
  size_t mask_diff = 0, w_diff = 0;
  for (size_t i = 0; i < count; i++) {
    mask_diff += m1[i] != m2[i];
    w_diff += memcmp(&W1[i], &W2[i], sizeof *W1) != 0;
  }
  if (mask_diff || w_diff)
    printf("  %s: %zu mask and %zu weight differences\n", what, mask_diff, w_diff);
  assert_int_equal(mask_diff, 0);
  assert_int_equal(w_diff, 0);
}

static void test_magnitude(void **state) {
  (void)state;
  const int shapes[][2] = {{768, 768}, {3072, 768}, {768, 3072}, {12, 8}, {3, 16}};
  const rcc_nm_t patterns[] = {{0, 0}, {2, 4}, {3, 8}};
  for (int s = 0; s < 5; s++)
    for (int p = 0; p < 3; p++)
      for (int rescale = 0; rescale < 2; rescale++)
        for (int t = 0; t < 3; t++) {
          const int m = shapes[s][0], n = shapes[s][1];
          const double sparsity = (double[]){0.5, 0.1, 0.57}[t]; /* 0.1: mask already enough */
          const size_t count = (size_t)m * n;
          float *W1, *W2 = rcc_test_malloc(count * sizeof *W2);
          uint8_t *m1, *m2 = rcc_test_malloc(count);
          prune_inputs(m, n, &W1, &m1);
          memcpy(W2, W1, count * sizeof *W2);
          memcpy(m2, m1, count);
          assert_int_equal(rcc_prune_magnitude(W1, m1, m, n, sparsity, patterns[p], rescale),
                           RCC_OK);
          assert_int_equal(
              rcc_prune_magnitude_on(rcc_test_cpu, W2, m2, m, n, sparsity, patterns[p], rescale),
              RCC_OK);
          expect_same(W2, m2, W1, m1, count, "magnitude");
          free(W1);
          free(W2);
          free(m1);
          free(m2);
        }
}

static void test_wanda(void **state) {
  (void)state;
  const int shapes[][2] = {{768, 768}, {3072, 768}, {768, 3072}, {12, 8}, {3, 16}};
  const rcc_nm_t patterns[] = {{0, 0}, {2, 4}, {1, 8}};
  for (int s = 0; s < 5; s++)
    for (int p = 0; p < 3; p++) {
      const int m = shapes[s][0], n = shapes[s][1];
      const size_t count = (size_t)m * n;
      float *W1, *W2 = rcc_test_malloc(count * sizeof *W2);
      uint8_t *m1, *m2 = rcc_test_malloc(count);
      prune_inputs(m, n, &W1, &m1);
      memcpy(W2, W1, count * sizeof *W2);
      memset(m2, 0xAA, count); /* an output: anything before */
      double *col_sq = rcc_test_malloc((size_t)n * sizeof *col_sq);
      for (int j = 0; j < n; j++)
        col_sq[j] = (double)(1 + j % 3); /* few levels: ties across columns too */
      assert_int_equal(rcc_prune_wanda(W1, m1, m, n, col_sq, 0.57, patterns[p]), RCC_OK);
      assert_int_equal(rcc_prune_wanda_on(rcc_test_cpu, W2, m2, m, n, col_sq, 0.57, patterns[p]),
                       RCC_OK);
      expect_same(W2, m2, W1, m1, count, "wanda");
      free(W1);
      free(W2);
      free(m1);
      free(m2);
      free(col_sq);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_svd),   cmocka_unit_test(test_whitened),
      cmocka_unit_test(test_alpha), cmocka_unit_test(test_magnitude),
      cmocka_unit_test(test_wanda),
  };
  return cmocka_run_group_tests(tests, rcc_test_open_cpu, rcc_test_close_backends);
}
