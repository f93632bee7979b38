/* The CUDA backend against the CPU backend: every op on the same random inputs, outputs
 * poisoned with NaN before each run (a value the kernel forgot to write fails), compared
 * by normalized error (max |gpu - cpu| / max |cpu|) under a bound stated per op. cuBLAS
 * runs in plain FP32 (no TF32), so 1e-5 holds for GEMM too. Without a GPU (or a CUDA
 * build) it prints "skipped: no GPU" and exits 77. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tests/backend_pair.h"
#include "tests/harness.h"

static void expect_close(const float *got, const float *want, size_t n, double bound,
                         const char *what) {
  double err = rcc_normalized_error(got, want, n);
  printf("  %-40s normalized error %.2e (bound %.0e)\n", what, err, bound);
  if (!(err <= bound)) {
    print_error("%s: normalized error %.3g above %.1g\n", what, err, bound);
    fail();
  }
}

static void test_memory_and_names(void **state) {
  assert_int_equal(rcc_backend_kind(rcc_test_gpu), RCC_BACKEND_CUDA);
  assert_non_null(strstr(rcc_backend_describe(rcc_test_gpu), "cuda:0 ("));
  /* the UUID, "GPU-" and 8-4-4-4-12 hex digits: what tells two ranks' GPUs apart
   * (runner/session.c) */
  const char *id = rcc_backend_device_id(rcc_test_gpu);
  assert_true(strlen(id) == 40 && !strncmp(id, "GPU-", 4) && id[12] == '-' && id[27] == '-');
  rcc_backend_t b = NULL;
  assert_int_equal(rcc_backend_init(&b, "auto"), RCC_OK);
  assert_int_equal(rcc_backend_kind(b), RCC_BACKEND_CUDA);
  rcc_backend_free(b);
  char name[32];
  snprintf(name, sizeof name, "cuda:%d", rcc_backend_cuda_device_count());
  assert_int_equal(rcc_backend_init(&b, name), RCC_ERR_UNSUPPORTED);

  size_t n = 1000;
  float *h = rcc_test_random_floats(n, -1, 1);
  float *d = rcc_test_to_gpu(h, n * sizeof *h);
  float *back = rcc_test_from_gpu(d, n);
  assert_memory_equal(h, back, n * sizeof *h);
  rcc_backend_release(rcc_test_gpu, d);
  free(h);
  free(back);
}

/* One strided-batched GEMM on both backends (beta 0: C poisoned; else the same C). */
static void check_gemm(bool ta, bool tb, int M, int N, int K, int pad, int batch, float beta,
                       bool shared_b) {
  const rcc_test_gemm_layout_t g = rcc_test_gemm_layout(ta, tb, M, N, K, pad, batch, shared_b);
  float *A = rcc_test_random_floats(g.na, -1, 1), *B = rcc_test_random_floats(g.nb, -1, 1);
  float *C = beta == 0.0f ? rcc_test_nan_floats(g.nc) : rcc_test_random_floats(g.nc, -1, 1);
  /* Gaps between rows and matrices must survive: give them a value on both sides. */
  for (size_t i = 0; i < g.nc; i++) {
    int64_t off = (int64_t)i % g.sc;
    if (off >= (int64_t)M * g.ldc || off % g.ldc >= N) C[i] = 7.0f;
  }
  float *dA = rcc_test_to_gpu(A, g.na * 4), *dB = rcc_test_to_gpu(B, g.nb * 4),
        *dC = rcc_test_to_gpu(C, g.nc * 4);
  assert_int_equal(rcc_gemm_strided_batched(rcc_test_cpu, ta, tb, M, N, K, 0.5f, A, g.lda, g.sa, B,
                                            g.ldb, g.sb, beta, C, g.ldc, g.sc, batch),
                   RCC_OK);
  assert_int_equal(rcc_gemm_strided_batched(rcc_test_gpu, ta, tb, M, N, K, 0.5f, dA, g.lda, g.sa,
                                            dB, g.ldb, g.sb, beta, dC, g.ldc, g.sc, batch),
                   RCC_OK);
  float *got = rcc_test_from_gpu(dC, g.nc);
  char what[80];
  snprintf(what, sizeof what, "gemm %c%c %dx%dx%d batch %d beta %g", ta ? 'T' : 'N', tb ? 'T' : 'N',
           M, N, K, batch, (double)beta);
  expect_close(got, C, g.nc, 1e-5, what);
  rcc_backend_release(rcc_test_gpu, dA);
  rcc_backend_release(rcc_test_gpu, dB);
  rcc_backend_release(rcc_test_gpu, dC);
  free(A);
  free(B);
  free(C);
  free(got);
}

static void test_gemm(void **state) {
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    check_gemm(ta, tb, 67, 45, 129, 0, 1, 0.0f, false);
    check_gemm(ta, tb, 67, 45, 129, 3, 1, 0.5f, false);
    check_gemm(ta, tb, 50, 50, 64, 1, 12, 0.0f, false); /* attention-sized batch */
    check_gemm(ta, tb, 9, 5, 7, 2, 4, 0.25f, true);     /* shared B */
    /* K = 0 (a rank-0 factor): C = beta C, a poisoned C overwritten with zeros at beta 0 */
    check_gemm(ta, tb, 7, 5, 0, 1, 1, 0.0f, false);
    check_gemm(ta, tb, 7, 5, 0, 1, 3, 0.5f, false);
  }
  check_gemm(false, true, 200, 768, 768, 0, 1, 0.0f, false); /* a projection */
}

static void test_layernorm(void **state) {
  int N = 200, C = 768;
  size_t n = (size_t)N * C;
  float *x = rcc_test_random_floats(n, 2.0f, 4.0f), *w = rcc_test_random_floats(C, 0.5f, 1.5f);
  float *b = rcc_test_random_floats(C, -0.5f, 0.5f), *out = rcc_test_nan_floats(n);
  float *dx = rcc_test_to_gpu(x, n * 4), *dw = rcc_test_to_gpu(w, C * 4),
        *db = rcc_test_to_gpu(b, C * 4);
  float *dout = rcc_test_to_gpu(out, n * 4);
  assert_int_equal(rcc_layernorm(rcc_test_cpu, out, x, w, b, N, C, 1e-5f), RCC_OK);
  assert_int_equal(rcc_layernorm(rcc_test_gpu, dout, dx, dw, db, N, C, 1e-5f), RCC_OK);
  float *got = rcc_test_from_gpu(dout, n);
  expect_close(got, out, n, 1e-5, "layernorm 200x768");
  free(got);
  assert_int_equal(rcc_layernorm(rcc_test_gpu, dx, dx, dw, db, N, C, 1e-5f), RCC_OK); /* in place */
  got = rcc_test_from_gpu(dx, n);
  expect_close(got, out, n, 1e-5, "layernorm in place");
  rcc_backend_release(rcc_test_gpu, dx);
  rcc_backend_release(rcc_test_gpu, dw);
  rcc_backend_release(rcc_test_gpu, db);
  rcc_backend_release(rcc_test_gpu, dout);
  free(x);
  free(w);
  free(b);
  free(out);
  free(got);
}

static void check_softmax(int R, int L, float scale, int causal_T, const uint8_t *keys,
                          size_t keys_len, int rows_per_key, const char *what) {
  size_t n = (size_t)R * L;
  float *x = rcc_test_random_floats(n, -6, 6), *dx = rcc_test_to_gpu(x, n * 4);
  uint8_t *dkeys = keys ? rcc_test_to_gpu(keys, keys_len) : NULL;
  assert_int_equal(rcc_softmax(rcc_test_cpu, x, R, L, scale, causal_T, keys, rows_per_key), RCC_OK);
  assert_int_equal(rcc_softmax(rcc_test_gpu, dx, R, L, scale, causal_T, dkeys, rows_per_key),
                   RCC_OK);
  float *got = rcc_test_from_gpu(dx, n);
  expect_close(got, x, n, 1e-5, what);
  rcc_backend_release(rcc_test_gpu, dx);
  rcc_backend_release(rcc_test_gpu, dkeys);
  free(x);
  free(got);
}

static void test_softmax(void **state) {
  int B = 3, H = 4, T = 50;
  check_softmax(B * H * T, T, 0.125f, 0, NULL, 0, 0, "softmax (B*H*T, T)");
  check_softmax(B * H * T, T, 0.125f, T, NULL, 0, 0, "softmax causal");
  check_softmax(B * H * 77, 77, 0.125f, 77, NULL, 0, 0, "softmax causal T=77");
  check_softmax(64, 1000, 1.0f, 0, NULL, 0, 0, "softmax long rows");
  uint8_t *keys = malloc((size_t)B * T);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      keys[b * T + t] = b == 1 ? 0 : t < 20 + 10 * b; /* b=1: none */
  check_softmax(B * H * T, T, 0.125f, 0, keys, (size_t)B * T, H * T, "softmax key mask");
  check_softmax(B * H * T, T, 0.125f, T, keys, (size_t)B * T, H * T, "softmax causal+key");
  free(keys);
}

static void test_activations(void **state) {
  size_t n = 100003;
  float *base = rcc_test_random_floats(n, -8, 8);
  const float extremes[] = {0, 1e-30f, -1e-30f, 30, -30, 88, -88, 1e4f, -1e4f, 1e30f, -1e30f};
  memcpy(base, extremes, sizeof extremes);
  const rcc_activation_t acts[] = {RCC_ACT_GELU, RCC_ACT_GELU_TANH, RCC_ACT_QUICK_GELU,
                                   RCC_ACT_RELU};
  const char *names[] = {"gelu", "gelu_tanh", "quick_gelu", "relu"};
  for (int a = 0; a < 4; a++) {
    float *x = malloc(n * 4);
    memcpy(x, base, n * 4);
    float *dx = rcc_test_to_gpu(x, n * 4);
    assert_int_equal(rcc_activation(rcc_test_cpu, acts[a], x, (int64_t)n), RCC_OK);
    assert_int_equal(rcc_activation(rcc_test_gpu, acts[a], dx, (int64_t)n), RCC_OK);
    float *got = rcc_test_from_gpu(dx, n);
    /* The extremes (up to 1e30) would hide errors among ordinary values: compare apart. */
    size_t k = sizeof extremes / sizeof extremes[0];
    expect_close(got, x, k, 1e-6, names[a]);
    expect_close(got + k, x + k, n - k, 1e-5, names[a]);
    rcc_backend_release(rcc_test_gpu, dx);
    free(x);
    free(got);
  }
  free(base);
}

static void test_elementwise(void **state) {
  int N = 301, C = 513;
  size_t n = (size_t)N * C;
  float *x = rcc_test_random_floats(n, -2, 2), *y = rcc_test_random_floats(n, -2, 2);
  float *bias = rcc_test_random_floats(C, -1, 1), *out = rcc_test_nan_floats(n);
  float *dx = rcc_test_to_gpu(x, n * 4), *dy = rcc_test_to_gpu(y, n * 4),
        *db = rcc_test_to_gpu(bias, C * 4);
  float *dout = rcc_test_to_gpu(out, n * 4), *got;

  assert_int_equal(rcc_add(rcc_test_cpu, out, x, y, (int64_t)n), RCC_OK);
  assert_int_equal(rcc_add(rcc_test_gpu, dout, dx, dy, (int64_t)n), RCC_OK);
  got = rcc_test_from_gpu(dout, n);
  expect_close(got, out, n, 1e-7, "add");
  free(got);

  assert_int_equal(rcc_add_bias(rcc_test_cpu, x, bias, N, C), RCC_OK);
  assert_int_equal(rcc_add_bias(rcc_test_gpu, dx, db, N, C), RCC_OK);
  got = rcc_test_from_gpu(dx, n);
  expect_close(got, x, n, 1e-7, "add_bias");
  free(got);

  assert_int_equal(rcc_scale(rcc_test_cpu, x, -1.5f, (int64_t)n), RCC_OK);
  assert_int_equal(rcc_scale(rcc_test_gpu, dx, -1.5f, (int64_t)n), RCC_OK);
  got = rcc_test_from_gpu(dx, n);
  expect_close(got, x, n, 1e-7, "scale");
  free(got);

  for (int j = 0; j < C; j++)
    x[(size_t)7 * C + j] = 0.0f; /* a zero row stays zero */
  assert_int_equal(rcc_backend_upload(rcc_test_gpu, dx, x, n * 4), RCC_OK);
  assert_int_equal(rcc_l2_normalize_rows(rcc_test_cpu, x, N, C), RCC_OK);
  assert_int_equal(rcc_l2_normalize_rows(rcc_test_gpu, dx, N, C), RCC_OK);
  got = rcc_test_from_gpu(dx, n);
  expect_close(got, x, n, 1e-5, "l2_normalize_rows");
  free(got);

  rcc_backend_release(rcc_test_gpu, dx);
  rcc_backend_release(rcc_test_gpu, dy);
  rcc_backend_release(rcc_test_gpu, db);
  rcc_backend_release(rcc_test_gpu, dout);
  free(x);
  free(y);
  free(bias);
  free(out);
}

/* The caching pool (cuda_backend.c): blocks released while work on them is still queued
 * are reused by the next allocation of the same size; stream order must keep the values
 * right. Each round doubles x through a fresh temporary, so a temporary that shared memory
 * with unfinished work would show in the result. Then a request far beyond the device's
 * memory fails as out of memory, and the backend keeps working after it. */
static void test_caching_pool(void **state) {
  const size_t n = 1 << 20;
  float *x = rcc_test_random_floats(n, -1, 1);
  float *dx = rcc_test_to_gpu(x, n * sizeof *x);
  for (int round = 0; round < 64; round++) {
    float *tmp = rcc_backend_alloc(rcc_test_gpu, n * sizeof *tmp);
    assert_non_null(tmp);
    assert_int_equal(rcc_add(rcc_test_gpu, tmp, dx, dx, (int64_t)n), RCC_OK);
    assert_int_equal(rcc_scale(rcc_test_gpu, dx, 0.0f, (int64_t)n), RCC_OK);
    assert_int_equal(rcc_add(rcc_test_gpu, dx, dx, tmp, (int64_t)n), RCC_OK);
    assert_int_equal(rcc_scale(rcc_test_gpu, dx, 0.5f, (int64_t)n), RCC_OK);
    rcc_backend_release(rcc_test_gpu, tmp); /* queued behind the adds, not waited for */
  }
  float *got = rcc_test_from_gpu(dx, n);
  expect_close(got, x, n, 0, "64 rounds through released temporaries");
  free(got);

  void *empty = rcc_backend_alloc(rcc_test_gpu, 0);
  assert_non_null(empty);
  rcc_backend_release(rcc_test_gpu, empty);
  assert_null(rcc_backend_alloc(rcc_test_gpu, (size_t)1 << 52));
  assert_non_null(strstr(rcc_last_error(), "alloc"));
  assert_int_equal(rcc_scale(rcc_test_gpu, dx, 1.0f, (int64_t)n), RCC_OK);
  assert_int_equal(rcc_backend_synchronize(rcc_test_gpu), RCC_OK);
  rcc_backend_release(rcc_test_gpu, dx);
  free(x);
}

int main(void) {
  if (rcc_test_gpu_missing()) return 77;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memory_and_names), cmocka_unit_test(test_gemm),
      cmocka_unit_test(test_layernorm),        cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_activations),      cmocka_unit_test(test_elementwise),
      cmocka_unit_test(test_caching_pool),
  };
  return cmocka_run_group_tests(tests, rcc_test_open_cpu_and_gpu, rcc_test_close_backends);
}
