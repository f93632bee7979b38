/* The CPU backend against naive double-precision references written here: GEMM (every
 * transpose, padded leading dimensions, strided batches), LayerNorm, masked softmax, each
 * activation, the element-wise helpers; plus backend selection by name and the argument
 * checks of backend.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tests/backend_pair.h"
#include "tests/harness.h"

static float *copy_floats(const float *x, size_t n) {
  float *y = rcc_test_malloc(n * sizeof *y);
  memcpy(y, x, n * sizeof *y);
  return y;
}

/* The thread count in "cpu (OpenBLAS 0.3.21, 2 threads)". */
static int described_threads(rcc_backend_t b) {
  const char *comma = strrchr(rcc_backend_describe(b), ',');
  int threads = 0;
  assert_non_null(comma);
  assert_int_equal(sscanf(comma, ", %d thread", &threads), 1);
  return threads;
}

/* ---- backend selection ---- */

static void test_select_by_name(void **state) {
  rcc_backend_t b = NULL;
  assert_int_equal(rcc_backend_init(&b, "cpu"), RCC_OK);
  assert_int_equal(rcc_backend_kind(b), RCC_BACKEND_CPU);
  assert_non_null(strstr(rcc_backend_describe(b), "cpu (OpenBLAS"));
  assert_string_equal(rcc_backend_device_id(b), ""); /* no GPU to be shared between ranks */
  int threads = described_threads(b);
  assert_true(threads >= 1);
  rcc_backend_set_threads(b, 1); /* OpenBLAS and OpenMP settings are process-wide */
  assert_non_null(strstr(rcc_backend_describe(b), "1 thread)"));
  rcc_backend_set_threads(b, 0); /* 0 leaves the setting alone */
  assert_int_equal(described_threads(b), 1);
  rcc_backend_set_threads(b, threads);
  assert_int_equal(described_threads(b), threads);
  rcc_backend_free(b);

  /* auto: the GPU when there is one, else the cpu; then "cuda" must fail clearly. */
  assert_int_equal(rcc_backend_init(&b, "auto"), RCC_OK);
  rcc_backend_kind_t auto_kind = rcc_backend_kind(b);
  rcc_backend_free(b);
  if (auto_kind == RCC_BACKEND_CPU) {
    const char *names[] = {"cuda", "cuda:0", "cuda:3"};
    for (size_t i = 0; i < 3; i++) {
      b = (rcc_backend_t)1;
      assert_int_equal(rcc_backend_init(&b, names[i]), RCC_ERR_UNSUPPORTED);
      assert_null(b);
      assert_non_null(strstr(rcc_last_error(), "cuda"));
    }
  }
  const char *bad[] = {"bogus", "", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:0x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(rcc_backend_init(&b, bad[i]), RCC_ERR_ARG);
    assert_non_null(strstr(rcc_last_error(), "\"cpu\"")); /* lists the accepted names */
  }
  assert_int_equal(rcc_backend_init(&b, NULL), RCC_ERR_ARG);
}

static void test_memory(void **state) {
  float back[100], *host = rcc_test_random_floats(100, -1, 1);
  for (size_t bytes = 0; bytes < 300; bytes += 37) {
    void *p = rcc_backend_alloc(rcc_test_cpu, bytes);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    rcc_backend_release(rcc_test_cpu, p);
  }
  float *dev = rcc_backend_alloc(rcc_test_cpu, sizeof back);
  assert_int_equal(rcc_backend_upload(rcc_test_cpu, dev, host, sizeof back), RCC_OK);
  assert_int_equal(rcc_backend_download(rcc_test_cpu, back, dev, sizeof back), RCC_OK);
  assert_int_equal(rcc_backend_synchronize(rcc_test_cpu), RCC_OK);
  assert_memory_equal(host, back, sizeof back);
  rcc_backend_release(rcc_test_cpu, dev);
  free(host);
}

/* ---- GEMM ---- */

/* C (M,N) = alpha op(A) op(B) + beta C in double, every index spelled out. */
static void gemm_ref(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double acc = 0.0;
      for (int k = 0; k < K; k++) {
        double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        acc += a * b;
      }
      C[(size_t)i * ldc + j] = (float)(alpha * acc + (double)beta * C[(size_t)i * ldc + j]);
    }
}

/* Runs one strided-batched GEMM and its reference on the same data; padding between rows
 * and between matrices must come back untouched. */
static void check_gemm(bool ta, bool tb, int M, int N, int K, int pad, int batch, bool shared_b,
                       float beta) {
  const rcc_test_gemm_layout_t g = rcc_test_gemm_layout(ta, tb, M, N, K, pad, batch, shared_b);
  float *A = rcc_test_random_floats(g.na, -1, 1), *B = rcc_test_random_floats(g.nb, -1, 1);
  float *C = rcc_test_random_floats(g.nc, -1, 1), *ref = copy_floats(C, g.nc);
  const float alpha = 0.75f;
  if (beta == 0.0f) /* BLAS semantics: C is not read, so NaN there must not leak */
    for (int b = 0; b < batch; b++)
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
          C[b * g.sc + (int64_t)i * g.ldc + j] = NAN;
          ref[b * g.sc + (int64_t)i * g.ldc + j] = 0.0f;
        }
  for (int i = 0; i < batch; i++)
    gemm_ref(ta, tb, M, N, K, alpha, A + i * g.sa, g.lda, B + i * g.sb, g.ldb, beta, ref + i * g.sc,
             g.ldc);
  rcc_status_t st =
      batch == 1
          ? rcc_gemm(rcc_test_cpu, ta, tb, M, N, K, alpha, A, g.lda, B, g.ldb, beta, C, g.ldc)
          : rcc_gemm_strided_batched(rcc_test_cpu, ta, tb, M, N, K, alpha, A, g.lda, g.sa, B, g.ldb,
                                     g.sb, beta, C, g.ldc, g.sc, batch);
  assert_int_equal(st, RCC_OK);
  /* float32 dot products of length K over [-1,1] values: error ~ K * 2^-24 * sqrt(K). */
  assert_allclose(C, ref, g.nc, 1e-5 * K, 1e-5);
  free(A);
  free(B);
  free(C);
  free(ref);
}

static void test_gemm_transposes(void **state) {
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    check_gemm(ta, tb, 13, 9, 17, 0, 1, false, 0.5f); /* non-square, tight */
    check_gemm(ta, tb, 13, 9, 17, 3, 1, false, 0.5f); /* lda > K etc. */
    check_gemm(ta, tb, 1, 31, 5, 2, 1, false, 0.5f);  /* a row vector */
    check_gemm(ta, tb, 64, 48, 80, 1, 1, false, 0.5f);
    check_gemm(ta, tb, 13, 9, 17, 2, 1, false, 0.0f);
    /* past SMALL_GEMM_MACS: split across threads by rows of C, then by columns */
    check_gemm(ta, tb, 300, 200, 100, 1, 1, false, 0.5f);
    check_gemm(ta, tb, 8, 1024, 700, 2, 1, false, 0.5f);
  }
}

static void test_gemm_batched(void **state) {
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    /* Attention-sized: whole matrices in parallel (OpenMP over the batch). */
    check_gemm(ta, tb, 50, 50, 64, 0, 6, false, 0.5f);
    check_gemm(ta, tb, 50, 64, 50, 2, 5, false, 0.0f);
    check_gemm(ta, tb, 7, 5, 3, 1, 4, true, 0.5f); /* one B for every matrix */
  }
  /* Past the small-GEMM bound: each GEMM threaded by OpenBLAS, one after the other. */
  check_gemm(false, true, 256, 256, 80, 0, 2, false, 0.5f);
  check_gemm(true, true, 256, 256, 80, 3, 2, false, 0.0f);
  /* One thread: the sequential path for small GEMMs too. */
  int threads = described_threads(rcc_test_cpu);
  rcc_backend_set_threads(rcc_test_cpu, 1);
  check_gemm(true, false, 50, 50, 64, 1, 3, false, 0.5f);
  rcc_backend_set_threads(rcc_test_cpu, threads);
}

static void test_gemm_edges(void **state) {
  float A[4] = {1, 2, 3, 4}, B[4] = {1, 0, 0, 1}, C[4] = {1, 2, 3, 4};
  /* K = 0: op(A) op(B) is the zero matrix, C = beta C. */
  assert_int_equal(rcc_gemm(rcc_test_cpu, false, false, 2, 2, 0, 1.0f, A, 1, B, 2, 0.5f, C, 2),
                   RCC_OK);
  float halved[4] = {0.5f, 1, 1.5f, 2};
  assert_allclose(C, halved, 4, 0, 0);
  /* Empty outputs are no-ops, even with NULL data. */
  assert_int_equal(rcc_gemm(rcc_test_cpu, false, false, 0, 2, 2, 1.0f, NULL, 2, B, 2, 0, NULL, 2),
                   RCC_OK);
  assert_int_equal(rcc_gemm_strided_batched(rcc_test_cpu, false, false, 2, 2, 2, 1, A, 2, 4, B, 2,
                                            4, 0, C, 2, 4, 0),
                   RCC_OK);
  /* Leading dimensions smaller than the stored rows, negative sizes, NULL data. */
  assert_int_equal(rcc_gemm(rcc_test_cpu, false, false, 2, 2, 2, 1, A, 1, B, 2, 0, C, 2),
                   RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "lda 1"));
  assert_int_equal(rcc_gemm(rcc_test_cpu, true, false, 3, 2, 2, 1, A, 2, B, 2, 0, C, 2),
                   RCC_ERR_ARG);
  assert_int_equal(rcc_gemm(rcc_test_cpu, false, true, 2, 2, 3, 1, A, 3, B, 2, 0, C, 2),
                   RCC_ERR_ARG);
  assert_int_equal(rcc_gemm(rcc_test_cpu, false, false, 2, 3, 2, 1, A, 2, B, 3, 0, C, 2),
                   RCC_ERR_ARG);
  assert_int_equal(rcc_gemm(rcc_test_cpu, false, false, -1, 2, 2, 1, A, 2, B, 2, 0, C, 2),
                   RCC_ERR_ARG);
  assert_int_equal(rcc_gemm(rcc_test_cpu, false, false, 2, 2, 2, 1, NULL, 2, B, 2, 0, C, 2),
                   RCC_ERR_ARG);
  assert_int_equal(rcc_gemm_strided_batched(rcc_test_cpu, false, false, 2, 2, 2, 1, A, 2, -4, B, 2,
                                            4, 0, C, 2, 4, 2),
                   RCC_ERR_ARG);
  assert_int_equal(rcc_gemm(NULL, false, false, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2), RCC_ERR_ARG);
}

/* ---- LayerNorm ---- */

static void layernorm_ref(float *out, const float *x, const float *w, const float *b, int N, int C,
                          float eps) {
  for (int i = 0; i < N; i++) {
    const float *r = x + (size_t)i * C;
    double mean = 0, var = 0;
    for (int j = 0; j < C; j++)
      mean += r[j];
    mean /= C;
    for (int j = 0; j < C; j++)
      var += (r[j] - mean) * (r[j] - mean);
    var /= C;
    for (int j = 0; j < C; j++)
      out[(size_t)i * C + j] = (float)((r[j] - mean) / sqrt(var + eps) * w[j] + b[j]);
  }
}

static void check_layernorm(int N, int C, float offset, float eps) {
  size_t n = (size_t)N * C;
  float *x = rcc_test_random_floats(n, offset - 1.0f, offset + 1.0f);
  float *w = rcc_test_random_floats(C, 0.5f, 1.5f), *b = rcc_test_random_floats(C, -0.5f, 0.5f);
  float *ref = rcc_test_malloc(n * sizeof *ref), *out = rcc_test_malloc(n * sizeof *out);
  layernorm_ref(ref, x, w, b, N, C, eps);
  for (size_t i = 0; i < n; i++)
    out[i] = NAN; /* every output must rcc_test_cpu written */
  assert_int_equal(rcc_layernorm(rcc_test_cpu, out, x, w, b, N, C, eps), RCC_OK);
  assert_allclose(out, ref, n, 1e-5, 1e-5);
  /* In place. */
  assert_int_equal(rcc_layernorm(rcc_test_cpu, x, x, w, b, N, C, eps), RCC_OK);
  assert_allclose(x, ref, n, 1e-5, 1e-5);
  free(x);
  free(w);
  free(b);
  free(ref);
  free(out);
}

static void test_layernorm(void **state) {
  check_layernorm(7, 33, 0.0f, 1e-5f);
  check_layernorm(5, 768, 10.0f, 1e-5f);  /* a mean far from 0: the two-pass variance */
  check_layernorm(200, 768, 0.5f, 1e-6f); /* large enough for the parallel loop */
  check_layernorm(3, 1, 2.0f, 1e-5f);     /* C = 1: output is the bias */
  float x = 1, w = 1, b = 0;
  assert_int_equal(rcc_layernorm(rcc_test_cpu, &x, &x, &w, &b, 1, 1, -1.0f), RCC_ERR_ARG);
  assert_int_equal(rcc_layernorm(rcc_test_cpu, &x, &x, NULL, &b, 1, 1, 1e-5f), RCC_ERR_ARG);
}

/* ---- softmax ---- */

static void softmax_ref(float *x, int R, int L, float scale, int causal_T, const uint8_t *key_valid,
                        int rows_per_key) {
  for (int r = 0; r < R; r++) {
    float *row = x + (size_t)r * L;
    bool ok[512];
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j < L; j++) {
      ok[j] = (causal_T == 0 || j <= r % causal_T) &&
              (!key_valid || key_valid[(size_t)(r / rows_per_key) * L + j]);
      if (ok[j] && (double)scale * row[j] > mx) mx = (double)scale * row[j];
    }
    for (int j = 0; j < L; j++)
      sum += ok[j] ? exp((double)scale * row[j] - mx) : 0.0;
    for (int j = 0; j < L; j++)
      row[j] = ok[j] ? (float)(exp((double)scale * row[j] - mx) / sum) : 0.0f;
  }
}

static void check_softmax(int R, int L, float scale, float range, int causal_T,
                          const uint8_t *key_valid, int rows_per_key) {
  size_t n = (size_t)R * L;
  float *x = rcc_test_random_floats(n, -range, range), *ref = copy_floats(x, n);
  softmax_ref(ref, R, L, scale, causal_T, key_valid, rows_per_key);
  assert_int_equal(rcc_softmax(rcc_test_cpu, x, R, L, scale, causal_T, key_valid, rows_per_key),
                   RCC_OK);
  assert_allclose(x, ref, n, 1e-6, 1e-5);
  free(x);
  free(ref);
}

static void test_softmax(void **state) {
  check_softmax(10, 17, 1.0f, 3.0f, 0, NULL, 0);
  check_softmax(10, 17, 0.125f, 3.0f, 0, NULL, 0);
  check_softmax(6, 9, 1.0f, 1e4f, 0, NULL, 0);       /* exp would overflow without the max */
  check_softmax(12, 6, 0.5f, 3.0f, 4, NULL, 0);      /* causal, L > T: columns past T masked */
  check_softmax(16, 5, 0.5f, 3.0f, 8, NULL, 0);      /* causal, L < T: late rows see all */
  check_softmax(600, 50, 0.125f, 4.0f, 50, NULL, 0); /* the parallel loop */

  /* Key mask (B=3 groups of 4 rows, L=6); group 1 has every key masked. */
  uint8_t keys[3 * 6] = {1, 1, 1, 0, 0, 0, /**/ 0, 0, 0, 0, 0, 0, /**/ 1, 0, 1, 1, 0, 1};
  check_softmax(12, 6, 0.7f, 3.0f, 0, keys, 4);
  check_softmax(12, 6, 0.7f, 3.0f, 4, keys, 4); /* causal and key mask together */
  /* Fully masked rows are all zeros, no NaN. */
  float x[4 * 6];
  for (int i = 0; i < 24; i++)
    x[i] = NAN;
  uint8_t none[6] = {0};
  assert_int_equal(rcc_softmax(rcc_test_cpu, x, 4, 6, 1.0f, 0, none, 4), RCC_OK);
  for (int i = 0; i < 24; i++)
    assert_true(x[i] == 0.0f);
  /* Row 0 of a causal block whose only key (0) is masked: zeros too. */
  float y[2 * 3] = {1, 2, 3, 4, 5, 6};
  uint8_t no_first[3] = {0, 1, 1};
  assert_int_equal(rcc_softmax(rcc_test_cpu, y, 2, 3, 1.0f, 2, no_first, 2), RCC_OK);
  float expect[6] = {0, 0, 0, 0, 1, 0};
  assert_allclose(y, expect, 6, 0, 0);

  assert_int_equal(rcc_softmax(rcc_test_cpu, y, 2, 3, 1.0f, 4, NULL, 0),
                   RCC_ERR_ARG); /* 4 does not divide 2 */
  assert_int_equal(rcc_softmax(rcc_test_cpu, y, 2, 3, 1.0f, 0, keys, 0),
                   RCC_ERR_ARG); /* rows_per_key */
  assert_int_equal(rcc_softmax(rcc_test_cpu, y, 2, 3, 1.0f, -1, NULL, 0), RCC_ERR_ARG);
}

/* ---- activations ---- */

static double act_ref(rcc_activation_t act, double x) {
  switch (act) {
  case RCC_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
  case RCC_ACT_GELU_TANH:
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
  case RCC_ACT_QUICK_GELU: return x / (1.0 + exp(-1.702 * x));
  case RCC_ACT_RELU: return x > 0 ? x : 0.0;
  }
  return NAN;
}

static void test_activations(void **state) {
  /* -12..12 in steps of 1/16, then extremes that overflow x^3 or exp() in float. */
  float base[400];
  size_t n = 0;
  for (int i = -192; i <= 192; i++)
    base[n++] = (float)i / 16.0f;
  const float extremes[] = {1e-30f, -1e-30f, 30, -30, 88, -88, 1e4f, -1e4f, 1e30f, -1e30f};
  for (size_t i = 0; i < sizeof extremes / sizeof extremes[0]; i++)
    base[n++] = extremes[i];

  const rcc_activation_t acts[] = {RCC_ACT_GELU, RCC_ACT_GELU_TANH, RCC_ACT_QUICK_GELU,
                                   RCC_ACT_RELU};
  for (size_t a = 0; a < 4; a++) {
    float x[400], ref[400];
    memcpy(x, base, n * sizeof *x);
    for (size_t i = 0; i < n; i++)
      ref[i] = (float)act_ref(acts[a], base[i]);
    assert_int_equal(rcc_activation(rcc_test_cpu, acts[a], x, (int64_t)n), RCC_OK);
    /* Absolute 1e-6: near -4 the float 1 + erf(x) cancels to ~1e-7 anyway (as in torch). */
    assert_allclose(x, ref, n, 1e-6, 1e-5);
  }
  /* A long vector takes the parallel loop. */
  size_t big = 100000;
  float *x = rcc_test_random_floats(big, -6, 6), *ref = rcc_test_malloc(big * sizeof *ref);
  for (size_t i = 0; i < big; i++)
    ref[i] = (float)act_ref(RCC_ACT_GELU, x[i]);
  assert_int_equal(rcc_activation(rcc_test_cpu, RCC_ACT_GELU, x, (int64_t)big), RCC_OK);
  assert_allclose(x, ref, big, 1e-6, 1e-5);
  free(x);
  free(ref);
  assert_int_equal(rcc_activation(rcc_test_cpu, (rcc_activation_t)99, base, 1), RCC_ERR_ARG);
}

/* ---- element-wise ---- */

static void test_elementwise(void **state) {
  int N = 300, C = 257;
  size_t n = (size_t)N * C;
  float *x = rcc_test_random_floats(n, -2, 2), *bias = rcc_test_random_floats(C, -1, 1);
  float *y = rcc_test_random_floats(n, -2, 2), *ref = rcc_test_malloc(n * sizeof *ref);

  for (size_t i = 0; i < n; i++)
    ref[i] = x[i] + bias[i % C];
  assert_int_equal(rcc_add_bias(rcc_test_cpu, x, bias, N, C), RCC_OK);
  assert_allclose(x, ref, n, 0, 0);

  for (size_t i = 0; i < n; i++)
    ref[i] = x[i] + y[i];
  assert_int_equal(rcc_add(rcc_test_cpu, x, x, y, (int64_t)n), RCC_OK); /* out aliases a */
  assert_allclose(x, ref, n, 0, 0);
  for (size_t i = 0; i < n; i++)
    ref[i] = x[i] + y[i];
  assert_int_equal(rcc_add(rcc_test_cpu, y, x, y, (int64_t)n), RCC_OK); /* out aliases b */
  assert_allclose(y, ref, n, 0, 0);

  for (size_t i = 0; i < n; i++)
    ref[i] = x[i] * -0.3f;
  assert_int_equal(rcc_scale(rcc_test_cpu, x, -0.3f, (int64_t)n), RCC_OK);
  assert_allclose(x, ref, n, 0, 0);

  for (int j = 0; j < C; j++)
    x[(size_t)5 * C + j] = 0.0f; /* a zero row stays zero */
  for (int i = 0; i < N; i++) {
    double sq = 0;
    for (int j = 0; j < C; j++)
      sq += (double)x[(size_t)i * C + j] * x[(size_t)i * C + j];
    for (int j = 0; j < C; j++)
      ref[(size_t)i * C + j] = sq > 0 ? (float)(x[(size_t)i * C + j] / sqrt(sq)) : 0.0f;
  }
  assert_int_equal(rcc_l2_normalize_rows(rcc_test_cpu, x, N, C), RCC_OK);
  assert_allclose(x, ref, n, 1e-7, 1e-6);

  assert_int_equal(rcc_add(rcc_test_cpu, x, x, NULL, 3), RCC_ERR_ARG);
  assert_int_equal(rcc_scale(rcc_test_cpu, x, 1.0f, -1), RCC_ERR_ARG);
  assert_int_equal(rcc_add_bias(rcc_test_cpu, x, bias, -1, C), RCC_ERR_ARG);
  free(x);
  free(bias);
  free(y);
  free(ref);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_select_by_name),  cmocka_unit_test(test_memory),
      cmocka_unit_test(test_gemm_transposes), cmocka_unit_test(test_gemm_batched),
      cmocka_unit_test(test_gemm_edges),      cmocka_unit_test(test_layernorm),
      cmocka_unit_test(test_softmax),         cmocka_unit_test(test_activations),
      cmocka_unit_test(test_elementwise),
  };
  return cmocka_run_group_tests(tests, rcc_test_open_cpu, rcc_test_close_backends);
}
