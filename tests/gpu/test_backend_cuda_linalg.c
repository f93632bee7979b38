/* The float64 stage ops of backend.h (last section) on the CUDA backend against the CPU
 * backend, on random inputs at the ViT-B/32 shapes and odd small ones, device outputs
 * poisoned (NaN) first; then the stage kernels of compress/device.h run on the GPU against
 * the same kernels run through the CPU backend. Bounds, as normalized errors (max |diff| /
 * max |CPU|):
 *   gemm_f64      1e-11: K <= 3072 products per entry, each sum off by at most ~K eps
 *                 (2.2e-16) of sum |a b|, which is <= sqrt(K) times max |C| here;
 *   trsm_f64      1e-11: diagonally dominant triangles (condition ~3), same sum lengths;
 *   row_dots_f64  1e-12 of the row's sum |a b|: n <= 3072 terms in another order;
 *   f32_to_f64, f64_to_f32, prune_scores: bit-identical (one IEEE rounding each);
 *   lowrank (svd, whitened) on the GPU: same rank, ||U V - U' V'||_F / ||W||_F <= 1e-6
 *                 (both exact float64 SVDs, gesvd vs gesdd, then rounded to float32 outputs,
 *                 which is the floor: ~6e-8 per entry);
 *   alpha         1e-6 relative; masks and pruned weights identical.
 *   obs_sweep_f64 1e-14, bit-identical expected: each weight sees the same IEEE operations
 *                 in the same order on both (the kernel keeps the update unfused); masks
 *                 (N:M chosen in the sweep) identical;
 *   stage kernels added with it, GPU against the CPU backend: sparsegpt masks identical and
 *                 weights within 1e-9 relative (cuBLAS and OpenBLAS sum the lazy-batch
 *                 GEMMs and the factorizations in other orders, ~1e-13, then float32
 *                 outputs); residual as lowrank; null space alpha within 1e-6 relative and
 *                 the same null dimension; the global threshold step identical.
 * Without a GPU (or a CUDA build) it prints "skipped: no GPU" and exits 77. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "compress/device.h"
#include "tests/backend_pair.h"
#include "tests/harness.h"

static double *from_gpu_doubles(const double *d, size_t n) {
  double *h = rcc_test_malloc(n * sizeof *h);
  for (size_t i = 0; i < n; i++)
    h[i] = NAN;
  assert_int_equal(rcc_backend_synchronize(rcc_test_gpu), RCC_OK);
  assert_int_equal(rcc_backend_download(rcc_test_gpu, h, d, n * sizeof *h), RCC_OK);
  return h;
}

/* max |got - want| / max |want| (NaN anywhere: infinity). */
static double normalized(const double *got, const double *want, size_t n) {
  double err = 0.0, scale = 1e-300;
  for (size_t i = 0; i < n; i++) {
    if (isnan(got[i]) || isnan(want[i])) return INFINITY;
    err = fmax(err, fabs(got[i] - want[i]));
    scale = fmax(scale, fabs(want[i]));
  }
  return err / scale;
}

static void check_gemm(bool ta, bool tb, int M, int N, int K, double beta) {
  const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
  const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
  const size_t nc = (size_t)M * ldc;
  double *A = rcc_test_random_doubles(na), *B = rcc_test_random_doubles(nb);
  double *C = rcc_test_random_doubles(nc);
  double *dA = rcc_test_to_gpu(A, na * sizeof *A), *dB = rcc_test_to_gpu(B, nb * sizeof *B);
  /* beta = 0 must not read C: start it from NaN then. */
  double *dC = beta == 0.0 ? rcc_test_gpu_nan_doubles(nc) : rcc_test_to_gpu(C, nc * sizeof *C);
  assert_int_equal(
      rcc_backend_gemm_f64(rcc_test_gpu, ta, tb, M, N, K, 1.5, dA, lda, dB, ldb, beta, dC, ldc),
      RCC_OK);
  assert_int_equal(
      rcc_backend_gemm_f64(rcc_test_cpu, ta, tb, M, N, K, 1.5, A, lda, B, ldb, beta, C, ldc),
      RCC_OK);
  double *got = from_gpu_doubles(dC, nc);
  /* Compare the M x N part only: the padding columns of a NaN-started C stay NaN. */
  double err = 0.0, scale = 1e-300;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      const size_t k = (size_t)i * ldc + j;
      err = isnan(got[k]) ? INFINITY : fmax(err, fabs(got[k] - C[k]));
      scale = fmax(scale, fabs(C[k]));
    }
  printf("  gemm_f64 %c%c %4d x %4d x %4d beta %.1f: error %.2e (bound 1e-11)\n", ta ? 'T' : 'N',
         tb ? 'T' : 'N', M, N, K, beta, err / scale);
  assert_true(err / scale <= 1e-11);
  rcc_backend_release(rcc_test_gpu, dA);
  rcc_backend_release(rcc_test_gpu, dB);
  rcc_backend_release(rcc_test_gpu, dC);
  free(A);
  free(B);
  free(C);
  free(got);
}

static void test_gemm(void **state) {
  (void)state;
  for (int t = 0; t < 4; t++) {
    check_gemm(t & 1, t & 2, 768, 768, 768, 0.0);
    check_gemm(t & 1, t & 2, 37, 5, 11, 0.5);
  }
  check_gemm(false, false, 3072, 768, 768, 0.0);
  check_gemm(false, false, 768, 3072, 3072, 0.0);
  check_gemm(false, true, 1, 1, 1, 0.0);
}

static void check_trsm(bool right, rcc_triangle_t tri, bool trans, int M, int N) {
  const int order = right ? N : M, ldt = order + 1, ldb = N + 2;
  const size_t nt = (size_t)order * ldt, nb = (size_t)M * ldb;
  double *T = rcc_test_random_doubles(nt), *B = rcc_test_random_doubles(nb);
  /* Off-diagonal entries of size 1/order against a diagonal of 2..3: condition ~3. The other
   * triangle holds NaN: it must not be read. */
  for (int i = 0; i < order; i++)
    for (int j = 0; j < order; j++) {
      double *t = &T[(size_t)i * ldt + j];
      const bool stored = tri == RCC_TRIANGLE_LOWER ? j <= i : j >= i;
      *t = !stored ? NAN : i == j ? 2.5 + 0.5 * *t : *t / order;
    }
  double *dT = rcc_test_to_gpu(T, nt * sizeof *T), *dB = rcc_test_to_gpu(B, nb * sizeof *B);
  assert_int_equal(rcc_backend_trsm_f64(rcc_test_gpu, right, tri, trans, M, N, dT, ldt, dB, ldb),
                   RCC_OK);
  assert_int_equal(rcc_backend_trsm_f64(rcc_test_cpu, right, tri, trans, M, N, T, ldt, B, ldb),
                   RCC_OK);
  double *got = from_gpu_doubles(dB, nb);
  const double err = normalized(got, B, nb);
  printf("  trsm_f64 %s %s %c %4d x %4d: error %.2e (bound 1e-11)\n", right ? "right" : "left ",
         tri == RCC_TRIANGLE_LOWER ? "lower" : "upper", trans ? 'T' : 'N', M, N, err);
  assert_true(err <= 1e-11);
  rcc_backend_release(rcc_test_gpu, dT);
  rcc_backend_release(rcc_test_gpu, dB);
  free(T);
  free(B);
  free(got);
}

static void test_trsm(void **state) {
  (void)state;
  for (int c = 0; c < 8; c++) {
    const bool right = c & 1, trans = c & 4;
    const rcc_triangle_t tri = (c & 2) ? RCC_TRIANGLE_UPPER : RCC_TRIANGLE_LOWER;
    check_trsm(right, tri, trans, 13, 7);
    check_trsm(right, tri, trans, 300, 768);
  }
  check_trsm(true, RCC_TRIANGLE_LOWER, false, 768, 3072); /* V L^{-1} of the whitened nullu */
}

static void test_conversions(void **state) {
  (void)state;
  const size_t sizes[] = {1, 1000, 3072 * 768 + 5};
  for (int s = 0; s < 3; s++) {
    const size_t n = sizes[s];
    float *f = rcc_test_random_floats(n, -1e3f, 1e3f);
    double *d = rcc_test_random_doubles(n);
    float *df = rcc_test_to_gpu(f, n * sizeof *f);
    double *dd = rcc_test_to_gpu(d, n * sizeof *d);
    double *wide = rcc_test_gpu_nan_doubles(n);
    float *narrow = rcc_test_gpu_nan_floats(n);
    assert_int_equal(rcc_backend_f32_to_f64(rcc_test_gpu, wide, df, (int64_t)n), RCC_OK);
    assert_int_equal(rcc_backend_f64_to_f32(rcc_test_gpu, narrow, dd, (int64_t)n), RCC_OK);
    double *w = from_gpu_doubles(wide, n);
    float *nr = rcc_test_from_gpu(narrow, n);
    double *w_cpu = rcc_test_malloc(n * sizeof *w_cpu);
    float *n_cpu = rcc_test_malloc(n * sizeof *n_cpu);
    assert_int_equal(rcc_backend_f32_to_f64(rcc_test_cpu, w_cpu, f, (int64_t)n), RCC_OK);
    assert_int_equal(rcc_backend_f64_to_f32(rcc_test_cpu, n_cpu, d, (int64_t)n), RCC_OK);
    assert_memory_equal(w, w_cpu, n * sizeof *w);
    assert_memory_equal(nr, n_cpu, n * sizeof *nr);
    printf("  conversions of %zu values: bit-identical\n", n);
    rcc_backend_release(rcc_test_gpu, df);
    rcc_backend_release(rcc_test_gpu, dd);
    rcc_backend_release(rcc_test_gpu, wide);
    rcc_backend_release(rcc_test_gpu, narrow);
    free(f);
    free(d);
    free(w);
    free(nr);
    free(w_cpu);
    free(n_cpu);
  }
}

static void test_row_dots(void **state) {
  (void)state;
  const int shapes[][2] = {{768, 768}, {3072, 768}, {768, 3072}, {7, 1}, {1, 300}};
  for (int s = 0; s < 5; s++) {
    const int m = shapes[s][0], n = shapes[s][1];
    const size_t mn = (size_t)m * n;
    double *A = rcc_test_random_doubles(mn), *B = rcc_test_random_doubles(mn);
    double *dA = rcc_test_to_gpu(A, mn * sizeof *A), *dB = rcc_test_to_gpu(B, mn * sizeof *B);
    double *dout = rcc_test_gpu_nan_doubles((size_t)m);
    double *want = rcc_test_malloc((size_t)m * sizeof *want);
    assert_int_equal(rcc_backend_row_dots_f64(rcc_test_gpu, dout, dA, dB, m, n), RCC_OK);
    assert_int_equal(rcc_backend_row_dots_f64(rcc_test_cpu, want, A, B, m, n), RCC_OK);
    double *got = from_gpu_doubles(dout, (size_t)m);
    double err = 0.0;
    for (int i = 0; i < m; i++) {
      double abs_sum = 1e-300;
      for (int j = 0; j < n; j++)
        abs_sum += fabs(A[(size_t)i * n + j] * B[(size_t)i * n + j]);
      err = isnan(got[i]) ? INFINITY : fmax(err, fabs(got[i] - want[i]) / abs_sum);
    }
    printf("  row_dots_f64 %4d x %4d: error %.2e (bound 1e-12)\n", m, n, err);
    assert_true(err <= 1e-12);
    rcc_backend_release(rcc_test_gpu, dA);
    rcc_backend_release(rcc_test_gpu, dB);
    rcc_backend_release(rcc_test_gpu, dout);
    free(A);
    free(B);
    free(want);
    free(got);
  }
}

static void test_prune_scores(void **state) {
  (void)state;
  const int shapes[][2] = {{3072, 768}, {5, 7}};
  for (int s = 0; s < 2; s++)
    for (int v = 0; v < 4; v++) {
      const int m = shapes[s][0], n = shapes[s][1];
      const size_t mn = (size_t)m * n;
      float *W = rcc_test_random_floats(mn, -2.0f, 2.0f);
      double *scale = rcc_test_random_doubles((size_t)n);
      uint8_t *mask = rcc_test_malloc(mn);
      for (int j = 0; j < n; j++)
        scale[j] = fabs(scale[j]) * 3.0;
      for (size_t i = 0; i < mn; i++)
        mask[i] = i % 5 != 2;
      W[0] = -0.0f;
      const double *cs = (v & 1) ? scale : NULL;
      const uint8_t *mk = (v & 2) ? mask : NULL;
      float *dW = rcc_test_to_gpu(W, mn * sizeof *W);
      double *dcs = cs ? rcc_test_to_gpu(cs, (size_t)n * sizeof *cs) : NULL;
      uint8_t *dmk = mk ? rcc_test_to_gpu(mk, mn) : NULL;
      float *dscores = rcc_test_gpu_nan_floats(mn);
      float *want = rcc_test_malloc(mn * sizeof *want);
      assert_int_equal(rcc_backend_prune_scores(rcc_test_gpu, dscores, dW, dcs, dmk, m, n), RCC_OK);
      assert_int_equal(rcc_backend_prune_scores(rcc_test_cpu, want, W, cs, mk, m, n), RCC_OK);
      float *got = rcc_test_from_gpu(dscores, mn);
      assert_memory_equal(got, want, mn * sizeof *got);
      printf("  prune_scores %4d x %4d (scale %d, mask %d): bit-identical\n", m, n, v & 1,
             (v & 2) != 0);
      rcc_backend_release(rcc_test_gpu, dW);
      rcc_backend_release(rcc_test_gpu, dcs);
      rcc_backend_release(rcc_test_gpu, dmk);
      rcc_backend_release(rcc_test_gpu, dscores);
      free(W);
      free(scale);
      free(mask);
      free(want);
      free(got);
    }
}

/* ||U V - U' V'||_F / ||W||_F. */
static double product_error(const rcc_lowrank_t *a, const rcc_lowrank_t *b, const float *W) {
  const int m = a->m, n = a->n;
  double diff = 0.0, norm = 0.0;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double pa = 0.0, pb = 0.0;
      for (int r = 0; r < a->rank; r++)
        pa += (double)a->U[(size_t)i * a->rank + r] * a->V[(size_t)r * n + j];
      for (int r = 0; r < b->rank; r++)
        pb += (double)b->U[(size_t)i * b->rank + r] * b->V[(size_t)r * n + j];
      diff += (pa - pb) * (pa - pb);
      norm += (double)W[(size_t)i * n + j] * W[(size_t)i * n + j];
    }
  return sqrt(diff / norm);
}

/* The stage kernels of compress/device.h: GPU against the CPU backend. */
static void test_stage_kernels(void **state) {
  (void)state;
  const int shapes[][2] = {{768, 768}, {3072, 768}, {768, 3072}, {37, 53}};
  const rcc_rank_rule_t rule = {0.9, 0.5, 1};
  for (int s = 0; s < 4; s++) {
    const int m = shapes[s][0], n = shapes[s][1];
    const size_t mn = (size_t)m * n;
    float *W = rcc_test_random_floats(mn, -1.0f, 1.0f);
    double *H = rcc_test_malloc((size_t)n * n * sizeof *H);
    float *X = rcc_test_random_floats((size_t)64 * n, -1.0f, 1.0f);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double h = 0.0;
        for (int t = 0; t < 64; t++)
          h += (double)X[(size_t)t * n + i] * X[(size_t)t * n + j];
        H[(size_t)i * n + j] = h;
      }
    for (int w = 0; w < 2; w++) {
      rcc_lowrank_t g, c;
      if (w) {
        assert_int_equal(rcc_lowrank_whitened_on(rcc_test_gpu, W, m, n, H, 0.01, &rule, &g),
                         RCC_OK);
        assert_int_equal(rcc_lowrank_whitened_on(rcc_test_cpu, W, m, n, H, 0.01, &rule, &c),
                         RCC_OK);
      } else {
        assert_int_equal(rcc_lowrank_svd_on(rcc_test_gpu, W, m, n, &rule, &g, NULL), RCC_OK);
        assert_int_equal(rcc_lowrank_svd_on(rcc_test_cpu, W, m, n, &rule, &c, NULL), RCC_OK);
      }
      const double err = product_error(&g, &c, W);
      printf("  %s on the GPU %4d x %4d: rank %d / %d, error %.2e (bound 1e-6)\n",
             w ? "whitened" : "svd     ", m, n, g.rank, c.rank, err);
      assert_int_equal(g.rank, c.rank);
      assert_true(err <= 1e-6);
      rcc_lowrank_free(&g);
      rcc_lowrank_free(&c);
    }
    float *W_hat = rcc_test_random_floats(mn, -0.1f, 0.1f);
    for (size_t i = 0; i < mn; i++)
      W_hat[i] += W[i];
    float *ag = rcc_test_nan_floats((size_t)m), *ac = rcc_test_nan_floats((size_t)m);
    assert_int_equal(rcc_alpha_closed_form_on(rcc_test_gpu, W, W_hat, m, n, H, 0.1, ag), RCC_OK);
    assert_int_equal(rcc_alpha_closed_form_on(rcc_test_cpu, W, W_hat, m, n, H, 0.1, ac), RCC_OK);
    assert_allclose(ag, ac, (size_t)m, 0.0, 1e-6);
    for (int p = 0; p < 4; p++) {
      const rcc_nm_t nm = (p & 1) ? (rcc_nm_t){2, 4} : (rcc_nm_t){0, 0};
      if (nm.m && n % nm.m) continue;
      float *Wg = rcc_test_malloc(mn * sizeof *Wg), *Wc = rcc_test_malloc(mn * sizeof *Wc);
      uint8_t *mg = rcc_test_malloc(mn), *mc = rcc_test_malloc(mn);
      memcpy(Wg, W, mn * sizeof *W);
      memcpy(Wc, W, mn * sizeof *W);
      for (size_t i = 0; i < mn; i++)
        mg[i] = mc[i] = i % 9 != 4;
      if (p & 2) {
        double *col_sq = rcc_test_malloc((size_t)n * sizeof *col_sq);
        for (int j = 0; j < n; j++)
          col_sq[j] = H[(size_t)j * n + j];
        assert_int_equal(rcc_prune_wanda_on(rcc_test_gpu, Wg, mg, m, n, col_sq, 0.5, nm), RCC_OK);
        assert_int_equal(rcc_prune_wanda_on(rcc_test_cpu, Wc, mc, m, n, col_sq, 0.5, nm), RCC_OK);
        free(col_sq);
      } else {
        assert_int_equal(rcc_prune_magnitude_on(rcc_test_gpu, Wg, mg, m, n, 0.5, nm, true), RCC_OK);
        assert_int_equal(rcc_prune_magnitude_on(rcc_test_cpu, Wc, mc, m, n, 0.5, nm, true), RCC_OK);
      }
      assert_memory_equal(mg, mc, mn);
      assert_memory_equal(Wg, Wc, mn * sizeof *Wg);
      free(Wg);
      free(Wc);
      free(mg);
      free(mc);
    }
    printf("  alpha, magnitude and wanda on the GPU %4d x %4d: alpha within 1e-6, masks equal\n", m,
           n);
    free(W);
    free(H);
    free(X);
    free(W_hat);
    free(ag);
    free(ac);
  }
}

/* One block sweep, rows of W padded (ldw = m + 3) and the factor block padded (ldh), so
 * that a write outside the block or a wrong stride shows. */
static void check_obs_sweep(int m, int cols, int nm_n, int nm_m) {
  const int ldw = m + 3, ldh = cols + 2;
  const size_t nw = (size_t)cols * ldw, nt = (size_t)cols * m, nh = (size_t)cols * ldh;
  double *Wt = rcc_test_random_doubles(nw), *Hinv = rcc_test_random_doubles(nh);
  for (int i = 0; i < cols; i++) /* a factor's diagonal: positive, away from 0 */
    Hinv[(size_t)i * ldh + i] = 1.0 + fabs(Hinv[(size_t)i * ldh + i]);
  for (size_t i = 0; i < nw; i += 5) /* zeros: saliency ties inside the N:M groups */
    Wt[i] = 0.0;
  uint8_t *mask = rcc_test_malloc(nt);
  for (size_t i = 0; i < nt; i++)
    mask[i] = (i * 7 + 3) % 10 >= 5; /* the unstructured input; N:M writes its own */
  double *dW = rcc_test_to_gpu(Wt, nw * sizeof *Wt), *dH = rcc_test_to_gpu(Hinv, nh * sizeof *Hinv);
  uint8_t *dM = nm_n ? rcc_test_gpu_poisoned_mask(nt) : rcc_test_to_gpu(mask, nt);
  if (nm_n) memset(mask, 0xAB, nt);
  double *dE = rcc_test_gpu_nan_doubles(nt);
  double *err = rcc_test_malloc(nt * sizeof *err);
  assert_int_equal(
      rcc_backend_obs_sweep_f64(rcc_test_gpu, dW, ldw, dM, dE, dH, ldh, m, cols, nm_n, nm_m),
      RCC_OK);
  assert_int_equal(
      rcc_backend_obs_sweep_f64(rcc_test_cpu, Wt, ldw, mask, err, Hinv, ldh, m, cols, nm_n, nm_m),
      RCC_OK);
  double *gW = from_gpu_doubles(dW, nw), *gE = from_gpu_doubles(dE, nt);
  uint8_t *gM = rcc_test_from_gpu_bytes(dM, nt);
  char what[96];
  snprintf(what, sizeof what, "obs_sweep_f64 %4d rows x %3d columns %d:%d weights", m, cols, nm_n,
           nm_m);
  rcc_test_expect_below(normalized(gW, Wt, nw), 1e-14, what);
  snprintf(what, sizeof what, "obs_sweep_f64 %4d rows x %3d columns %d:%d errors", m, cols, nm_n,
           nm_m);
  rcc_test_expect_below(normalized(gE, err, nt), 1e-14, what);
  assert_memory_equal(gM, mask, nt);
  rcc_backend_release(rcc_test_gpu, dW);
  rcc_backend_release(rcc_test_gpu, dH);
  rcc_backend_release(rcc_test_gpu, dM);
  rcc_backend_release(rcc_test_gpu, dE);
  free(Wt);
  free(Hinv);
  free(mask);
  free(err);
  free(gW);
  free(gE);
  free(gM);
}

static void test_obs_sweep(void **state) {
  (void)state;
  check_obs_sweep(3072, 128, 0, 0);
  check_obs_sweep(768, 128, 2, 4);
  check_obs_sweep(200, 64, 3, 8); /* rows not a multiple of the kernel's block */
  check_obs_sweep(5, 24, 0, 0);
  check_obs_sweep(1, 1, 0, 0);
}

/* sparsegpt, residual, null-space alpha and the global threshold on the GPU against the
 * same kernels through the CPU backend, at the ViT-B/32 shapes and an odd small one. */
static void test_more_stage_kernels(void **state) {
  (void)state;
  const int shapes[][2] = {{768, 768}, {3072, 768}, {37, 52}};
  for (int s = 0; s < 3; s++) {
    const int m = shapes[s][0], n = shapes[s][1];
    const size_t mn = (size_t)m * n;
    float *W = rcc_test_random_floats(mn, -1.0f, 1.0f);
    float *X = rcc_test_random_floats((size_t)2 * n * n, -1.0f, 1.0f);
    double *H = rcc_test_malloc((size_t)n * n * sizeof *H);
    for (size_t i = 0; i < (size_t)n * n; i++)
      H[i] = 0.0;
    for (int t = 0; t < 2 * n; t++) /* H = X^T X, upper triangle, then mirrored */
      for (int a = 0; a < n; a++)
        for (int b = a; b < n; b++)
          H[(size_t)a * n + b] += (double)X[(size_t)t * n + a] * X[(size_t)t * n + b];
    for (int a = 0; a < n; a++)
      for (int b = 0; b < a; b++)
        H[(size_t)a * n + b] = H[(size_t)b * n + a];
    for (int p = 0; p < 2; p++) {
      const rcc_nm_t nm = p ? (rcc_nm_t){2, 4} : (rcc_nm_t){0, 0};
      float *Wg = rcc_test_malloc(mn * sizeof *Wg), *Wc = rcc_test_malloc(mn * sizeof *Wc);
      uint8_t *mg = rcc_test_poisoned_mask(mn), *mc = rcc_test_poisoned_mask(mn);
      memcpy(Wg, W, mn * sizeof *W);
      memcpy(Wc, W, mn * sizeof *W);
      assert_int_equal(rcc_prune_sparsegpt_on(rcc_test_gpu, Wg, mg, m, n, H, 0.5, nm, 128, 0.01),
                       RCC_OK);
      assert_int_equal(rcc_prune_sparsegpt_on(rcc_test_cpu, Wc, mc, m, n, H, 0.5, nm, 128, 0.01),
                       RCC_OK);
      assert_memory_equal(mg, mc, mn);
      double diff = 0.0, norm = 0.0;
      for (size_t i = 0; i < mn; i++) {
        diff += ((double)Wg[i] - Wc[i]) * ((double)Wg[i] - Wc[i]);
        norm += (double)Wc[i] * Wc[i];
      }
      rcc_test_expect_below(isnan(diff) ? INFINITY : sqrt(diff / norm), 1e-9,
                            "sparsegpt on the GPU, weights");
      /* The sparse part just pruned feeds the residual fit and the threshold step. */
      for (int h = 0; h < 2 && p == 0; h++) {
        const rcc_rank_rule_t rule = {0.9, 1.0, 1};
        rcc_lowrank_t g, c;
        assert_int_equal(
            rcc_lowrank_residual_on(rcc_test_gpu, W, Wc, m, n, h ? H : NULL, 0.01, &rule, &g),
            RCC_OK);
        assert_int_equal(
            rcc_lowrank_residual_on(rcc_test_cpu, W, Wc, m, n, h ? H : NULL, 0.01, &rule, &c),
            RCC_OK);
        assert_int_equal(g.rank, c.rank);
        rcc_test_expect_below(product_error(&g, &c, W), 1e-6, "residual on the GPU");
        rcc_lowrank_free(&g);
        rcc_lowrank_free(&c);
      }
      if (p == 0) {
        memcpy(Wg, W, mn * sizeof *W);
        memcpy(Wc, W, mn * sizeof *W);
        memcpy(mg, mc, mn); /* sparsegpt's mask: some entries pruned before */
        assert_int_equal(rcc_prune_threshold_on(rcc_test_gpu, Wg, mg, (int64_t)mn, 0.25f), RCC_OK);
        assert_int_equal(rcc_prune_threshold(Wc, mc, (int64_t)mn, 0.25f), RCC_OK);
        assert_memory_equal(mg, mc, mn);
        assert_memory_equal(Wg, Wc, mn * sizeof *Wg);
      }
      free(Wg);
      free(Wc);
      free(mg);
      free(mc);
    }
    float *W_hat = rcc_test_random_floats(mn, -0.1f, 0.1f);
    for (size_t i = 0; i < mn; i++)
      W_hat[i] += W[i];
    float *ag = rcc_test_nan_floats((size_t)m), *ac = rcc_test_nan_floats((size_t)m);
    int null_g = -1, null_c = -2;
    assert_int_equal(
        rcc_alpha_null_space_on(rcc_test_gpu, W, W_hat, m, n, H, 0.9, 0.1, ag, &null_g), RCC_OK);
    assert_int_equal(
        rcc_alpha_null_space_on(rcc_test_cpu, W, W_hat, m, n, H, 0.9, 0.1, ac, &null_c), RCC_OK);
    assert_int_equal(null_g, null_c);
    assert_allclose(ag, ac, (size_t)m, 0.0, 1e-6);
    printf("  sparsegpt, residual, threshold and null space on the GPU %4d x %4d\n", m, n);
    free(W);
    free(X);
    free(H);
    free(W_hat);
    free(ag);
    free(ac);
  }
}

int main(void) {
  if (rcc_test_gpu_missing()) return 77;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm),         cmocka_unit_test(test_trsm),
      cmocka_unit_test(test_conversions),  cmocka_unit_test(test_row_dots),
      cmocka_unit_test(test_prune_scores), cmocka_unit_test(test_stage_kernels),
      cmocka_unit_test(test_obs_sweep),    cmocka_unit_test(test_more_stage_kernels),
  };
  return cmocka_run_group_tests(tests, rcc_test_open_cpu_and_gpu, rcc_test_close_backends);
}
