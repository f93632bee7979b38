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
#include "runner/stages.h"
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

/* The global scope's per-layer step: |W| == t is kept (t a quantization level, so many
 * ties), t <= 0 keeps everything, and a NaN weight is kept as the host keeps it. */
static void test_threshold(void **state) {
  (void)state;
  const float thresholds[] = {1.0f, 0.25f, 0.0f, -1.0f, INFINITY, 2.1f};
  for (int t = 0; t < 6; t++) {
    const int m = 768, n = 768;
    const size_t count = (size_t)m * n;
    float *W1, *W2 = rcc_test_malloc(count * sizeof *W2);
    uint8_t *m1, *m2 = rcc_test_malloc(count);
    prune_inputs(m, n, &W1, &m1);
    W1[1] = NAN;
    W1[2] = INFINITY;
    memcpy(W2, W1, count * sizeof *W2);
    memcpy(m2, m1, count);
    assert_int_equal(rcc_prune_threshold(W1, m1, (int64_t)count, thresholds[t]), RCC_OK);
    assert_int_equal(rcc_prune_threshold_on(rcc_test_cpu, W2, m2, (int64_t)count, thresholds[t]),
                     RCC_OK);
    size_t mask_diff = 0, w_diff = 0;
    for (size_t i = 0; i < count; i++) {
      mask_diff += m1[i] != m2[i];
      w_diff += memcmp(&W1[i], &W2[i], sizeof *W1) != 0;
    }
    printf("  threshold %g: %zu mask and %zu weight differences\n", (double)thresholds[t],
           mask_diff, w_diff);
    assert_int_equal(mask_diff, 0);
    assert_int_equal(w_diff, 0);
    free(W1);
    free(W2);
    free(m1);
    free(m2);
  }
}

/* ||a - b||_F / ||b||_F over count floats. */
static double rel_error(const float *a, const float *b, size_t count) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < count; i++) {
    diff += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    norm += (double)b[i] * b[i];
  }
  return norm > 0.0 ? sqrt(diff / norm) : sqrt(diff);
}

static void test_sparsegpt(void **state) {
  (void)state;
  /* {m, n, block}: blocks that divide n and one that leaves a short last block. */
  const int shapes[][3] = {{768, 768, 128}, {3072, 768, 128}, {37, 56, 16}, {5, 52, 24}};
  const rcc_nm_t patterns[] = {{0, 0}, {2, 4}};
  for (int s = 0; s < 4; s++)
    for (int p = 0; p < 2; p++) {
      const int m = shapes[s][0], n = shapes[s][1], block = shapes[s][2];
      const size_t count = (size_t)m * n;
      float *W1, *W2 = rcc_test_malloc(count * sizeof *W2);
      uint8_t *m1, *m2 = rcc_test_malloc(count);
      prune_inputs(m, n, &W1, &m1); /* quantized: saliencies tie within a column */
      double *H = gram(2 * n, n);
      for (int j = 0; j < n; j++) { /* input 3 dead: its weights are pruned first */
        H[(size_t)3 * n + j] = 0.0;
        H[(size_t)j * n + 3] = 0.0;
      }
      memcpy(W2, W1, count * sizeof *W2);
      memset(m2, 0xAA, count); /* an output: anything before */
      assert_int_equal(rcc_prune_sparsegpt(W1, m1, m, n, H, 0.5, patterns[p], block, 0.01), RCC_OK);
      assert_int_equal(
          rcc_prune_sparsegpt_on(rcc_test_cpu, W2, m2, m, n, H, 0.5, patterns[p], block, 0.01),
          RCC_OK);
      size_t mask_diff = 0;
      for (size_t i = 0; i < count; i++)
        mask_diff += m1[i] != m2[i];
      const double err = rel_error(W2, W1, count);
      printf("  sparsegpt %4d x %4d %d:%d block %d: %zu mask differences, error %.2e (bound "
             "1e-9)\n",
             m, n, patterns[p].n, patterns[p].m, block, mask_diff, err);
      assert_int_equal(mask_diff, 0);
      assert_true(err <= 1e-9);
      free(W1);
      free(W2);
      free(m1);
      free(m2);
      free(H);
    }
  /* Same refusals: a block that splits N:M groups, an indefinite H. */
  float W[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint8_t mk[8];
  double H[16] = {1, 0, 0, 0, 0, -5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  assert_int_equal(
      rcc_prune_sparsegpt_on(rcc_test_cpu, W, mk, 2, 4, H, 0.5, (rcc_nm_t){2, 4}, 2, 0.01),
      RCC_ERR_ARG);
  assert_int_equal(
      rcc_prune_sparsegpt_on(rcc_test_cpu, W, mk, 2, 4, H, 0.5, (rcc_nm_t){0, 0}, 2, 0.0),
      RCC_ERR_NUMERIC);
}

static void test_residual(void **state) {
  (void)state;
  const rcc_rank_rule_t rule = {0.9, 1.0, 1}; /* ratio 1: the host's exact SVD path */
  const int shapes[][2] = {{768, 768}, {3072, 768}, {37, 53}, {61, 17}};
  for (int s = 0; s < 4; s++)
    for (int h = 0; h < 2; h++) {
      const int m = shapes[s][0], n = shapes[s][1];
      const size_t count = (size_t)m * n;
      float *W = smooth_matrix(m, n);
      float *S = rcc_test_malloc(count * sizeof *S);
      for (size_t i = 0; i < count; i++) /* a sparse part: two thirds of W */
        S[i] = i % 3 ? W[i] : 0.0f;
      double *H = h ? gram(n < 256 ? 2 * n : 256, n) : NULL;
      rcc_lowrank_t host, dev;
      assert_int_equal(rcc_lowrank_residual(W, S, m, n, H, 0.01, &rule, &host), RCC_OK);
      assert_int_equal(rcc_lowrank_residual_on(rcc_test_cpu, W, S, m, n, H, 0.01, &rule, &dev),
                       RCC_OK);
      const double err = product_error(&dev, &host, W);
      printf("  residual %4d x %4d %s: rank %d / %d, error %.2e (bound 1e-6)\n", m, n,
             h ? "whitened" : "plain", dev.rank, host.rank, err);
      assert_int_equal(dev.rank, host.rank);
      assert_true(err <= 1e-6);
      rcc_lowrank_free(&host);
      rcc_lowrank_free(&dev);
      free(W);
      free(S);
      free(H);
    }
}

static void test_null_space(void **state) {
  (void)state;
  const int shapes[][2] = {{768, 768}, {3072, 768}, {37, 53}, {5, 3}, {1, 1}};
  const double energies[] = {0.9, 1.0};
  for (int s = 0; s < 5; s++)
    for (int e = 0; e < 2; e++) {
      const int m = shapes[s][0], n = shapes[s][1];
      const double lambda = e ? 0.5 : 0.0;
      float *W = rcc_test_random_floats((size_t)m * n, -1.0f, 1.0f);
      float *W_hat = rcc_test_random_floats((size_t)m * n, -0.2f, 0.2f);
      for (size_t i = 0; i < (size_t)m * n; i++)
        W_hat[i] += 0.8f * W[i];
      double *H = gram(n > 64 ? 64 : n, n); /* rank 64 for wide n: a true null space */
      double *P = rcc_test_malloc((size_t)n * n * sizeof *P);
      float *a_host = rcc_test_malloc((size_t)m * sizeof *a_host);
      float *a_dev = rcc_test_nan_floats((size_t)m);
      int null_host = -1, null_dev = -2;
      assert_int_equal(rcc_null_space_projector(H, n, energies[e], P, &null_host), RCC_OK);
      assert_int_equal(rcc_alpha_closed_form_null_space(W, W_hat, m, n, H, P, lambda, a_host),
                       RCC_OK);
      assert_int_equal(rcc_alpha_null_space_on(rcc_test_cpu, W, W_hat, m, n, H, energies[e], lambda,
                                               a_dev, &null_dev),
                       RCC_OK);
      const double err = rel_error(a_dev, a_host, (size_t)m);
      printf("  null space %4d x %4d energy %.2f: null dim %d / %d, alpha error %.2e (bound "
             "1e-6)\n",
             m, n, energies[e], null_dev, null_host, err);
      assert_int_equal(null_dev, null_host);
      assert_allclose(a_dev, a_host, (size_t)m, 0.0, 1e-6);
      free(W);
      free(W_hat);
      free(H);
      free(P);
      free(a_host);
      free(a_dev);
    }
}

/* The stages as runner/stages.c routes them: dare (sparsegpt unstructured and 2:4, global
 * magnitude) -> nullu residual -> alphaedit with null space, once on the host and once
 * on the CPU backend with RCC_STAGES_ON_BACKEND=1 (the path backend: cuda takes). Same
 * masks and ranks; layers within the bounds above. */
static void run_cascade(const rcc_stage_t *stages, int count, const rcc_layer_input_t *in,
                        rcc_factored_t *out) {
  rcc_factored_t cur;
  assert_int_equal(rcc_factored_init_dense(&cur, in->W0, in->m, in->n), RCC_OK);
  for (int i = 0; i < count; i++) {
    assert_int_equal(rcc_stage_apply(&stages[i], in, &cur, out), RCC_OK);
    rcc_factored_free(&cur);
    cur = *out;
  }
  *out = cur;
}

static void test_routed_cascade(void **state) {
  (void)state;
  const int m = 96, n = 64;
  float *W = smooth_matrix(m, n);
  double *H = gram(2 * n, n);
  rcc_layer_input_t in = {
      .name = "routed", .m = m, .n = n, .W0 = W, .H = H, .global_threshold = 0.01f};
  rcc_stage_t st[3] = {{.kind = RCC_STAGE_DARE, .enabled = true},
                       {.kind = RCC_STAGE_NULLU, .enabled = true},
                       {.kind = RCC_STAGE_ALPHAEDIT, .enabled = true}};
  st[1].config.nullu = (rcc_nullu_config_t){.method = RCC_NULLU_METHOD_RESIDUAL,
                                            .energy_threshold = 0.9,
                                            .rank_reduction_ratio = 1.0,
                                            .min_rank = 1,
                                            .damp_percent = 0.01};
  st[2].config.alphaedit = (rcc_alphaedit_config_t){.method = RCC_ALPHAEDIT_METHOD_CLOSED_FORM,
                                                    .regularization = 0.001,
                                                    .null_space = true,
                                                    .null_space_energy = 0.9};
  for (int d = 0; d < 3; d++) {
    st[0].config.dare =
        (rcc_dare_config_t){.method = d < 2 ? RCC_DARE_METHOD_SPARSEGPT : RCC_DARE_METHOD_MAGNITUDE,
                            .target_sparsity = 0.5,
                            .num_iterations = 1,
                            .pattern_n = d == 1 ? 2 : 0,
                            .pattern_m = d == 1 ? 4 : 0,
                            .scope = d == 2 ? RCC_SCOPE_GLOBAL : RCC_SCOPE_LAYER,
                            .block_size = 16,
                            .damp_percent = 0.01};
    rcc_factored_t host, dev;
    assert_int_equal(unsetenv("RCC_STAGES_ON_BACKEND"), 0);
    in.be = rcc_test_cpu;
    run_cascade(st, 3, &in, &host);
    assert_int_equal(setenv("RCC_STAGES_ON_BACKEND", "1", 1), 0);
    run_cascade(st, 3, &in, &dev);
    assert_int_equal(unsetenv("RCC_STAGES_ON_BACKEND"), 0);
    assert_non_null(host.mask);
    assert_non_null(dev.mask);
    assert_memory_equal(dev.mask, host.mask, (size_t)m * n);
    assert_int_equal(dev.rank, host.rank);
    assert_true(host.rank > 0);
    const double s_err = rel_error(dev.S, host.S, (size_t)m * n);
    float *Wh = rcc_test_malloc((size_t)m * n * sizeof *Wh);
    float *Wd = rcc_test_malloc((size_t)m * n * sizeof *Wd);
    rcc_factored_dense(&host, Wh);
    rcc_factored_dense(&dev, Wd);
    const double w_err = rel_error(Wd, Wh, (size_t)m * n);
    printf("  routed dare %d -> residual -> null space: rank %d, S error %.2e (bound 1e-9), "
           "layer error %.2e (bound 1e-6)\n",
           d, dev.rank, s_err, w_err);
    assert_true(s_err <= 1e-9);
    assert_true(w_err <= 1e-6);
    assert_allclose(dev.alpha, host.alpha, (size_t)m, 0.0, 1e-6);
    free(Wh);
    free(Wd);
    rcc_factored_free(&host);
    rcc_factored_free(&dev);
  }
  free(W);
  free(H);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_svd),        cmocka_unit_test(test_whitened),
      cmocka_unit_test(test_alpha),      cmocka_unit_test(test_magnitude),
      cmocka_unit_test(test_wanda),      cmocka_unit_test(test_threshold),
      cmocka_unit_test(test_sparsegpt),  cmocka_unit_test(test_residual),
      cmocka_unit_test(test_null_space), cmocka_unit_test(test_routed_cascade),
  };
  return cmocka_run_group_tests(tests, rcc_test_open_cpu, rcc_test_close_backends);
}
