/* The shared helpers of backend_pair.h. */
#include "tests/backend_pair.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcc_version.h"
#include "tests/harness.h"

rcc_backend_t rcc_test_cpu, rcc_test_gpu;
static uint64_t rng = 0x2545f4914f6cdd1dULL;
/* All-NAN_BYTE is NaN in floats and doubles; MASK_POISON is neither 0 nor 1, so a mask
 * entry an op forgot to write fails. */
enum { NAN_BYTE = 0xFF, MASK_POISON = 0xAB };

int rcc_test_open_cpu(void **state) {
  (void)state;
  if (rcc_backend_init(&rcc_test_cpu, "cpu") != RCC_OK) {
    fprintf(stderr, "cannot create the cpu backend: %s\n", rcc_last_error());
    return -1;
  }
  return 0;
}

int rcc_test_open_cpu_and_gpu(void **state) {
  if (rcc_test_open_cpu(state) != 0) return -1;
  if (rcc_backend_init(&rcc_test_gpu, "cuda:0") != RCC_OK) {
    fprintf(stderr, "cannot create the cuda:0 backend: %s\n", rcc_last_error());
    return -1;
  }
  printf("comparing %s with %s\n", rcc_backend_describe(rcc_test_gpu),
         rcc_backend_describe(rcc_test_cpu));
  return 0;
}

int rcc_test_close_backends(void **state) {
  (void)state;
  if (rcc_test_gpu) rcc_backend_free(rcc_test_gpu);
  if (rcc_test_cpu) rcc_backend_free(rcc_test_cpu);
  rcc_test_gpu = rcc_test_cpu = NULL;
  return 0;
}

int rcc_test_gpu_missing(void) {
  if (RCC_HAVE_CUDA && rcc_backend_cuda_device_count() > 0) return 0;
  printf("skipped: no GPU\n");
  return 77;
}

void *rcc_test_malloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  assert_non_null(p);
  return p;
}

float *rcc_test_random_floats(size_t n, float lo, float hi) {
  float *x = rcc_test_malloc(n * sizeof *x);
  rcc_fill_uniform(x, n, lo, hi, &rng);
  return x;
}

double *rcc_test_random_doubles(size_t n) {
  float *a = rcc_test_random_floats(n, -1, 1), *b = rcc_test_random_floats(n, -1, 1);
  double *x = rcc_test_malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++)
    x[i] = (double)a[i] + 1e-7 * (double)b[i];
  free(a);
  free(b);
  return x;
}

float *rcc_test_nan_floats(size_t n) {
  float *x = rcc_test_malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++)
    x[i] = NAN;
  return x;
}

void *rcc_test_to_gpu(const void *host, size_t bytes) {
  void *d = rcc_backend_alloc(rcc_test_gpu, bytes);
  assert_non_null(d);
  assert_int_equal(rcc_backend_upload(rcc_test_gpu, d, host, bytes), RCC_OK);
  return d;
}

/* A device buffer of `bytes` copies of `byte`. */
static void *gpu_filled(size_t bytes, int byte) {
  void *h = rcc_test_malloc(bytes);
  memset(h, byte, bytes);
  void *d = rcc_test_to_gpu(h, bytes);
  free(h);
  return d;
}

float *rcc_test_gpu_nan_floats(size_t n) { return gpu_filled(n * sizeof(float), NAN_BYTE); }

double *rcc_test_gpu_nan_doubles(size_t n) { return gpu_filled(n * sizeof(double), NAN_BYTE); }

void *rcc_test_from_gpu_bytes(const void *d, size_t bytes) {
  void *h = rcc_test_malloc(bytes);
  memset(h, NAN_BYTE, bytes);
  assert_int_equal(rcc_backend_synchronize(rcc_test_gpu), RCC_OK);
  assert_int_equal(rcc_backend_download(rcc_test_gpu, h, d, bytes), RCC_OK);
  return h;
}

float *rcc_test_from_gpu(const float *d, size_t n) {
  return rcc_test_from_gpu_bytes(d, n * sizeof *d);
}

uint8_t *rcc_test_poisoned_mask(size_t n) {
  uint8_t *m = rcc_test_malloc(n);
  memset(m, MASK_POISON, n);
  return m;
}

uint8_t *rcc_test_gpu_poisoned_mask(size_t n) { return gpu_filled(n, MASK_POISON); }

double rcc_test_normalized_error_f64(const double *got, const double *want, size_t n) {
  double diff = 0.0, scale = 1e-300;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(got[i] - want[i]);
    if (isnan(d)) return INFINITY;
    diff = fmax(diff, d);
    scale = fmax(scale, fabs(want[i]));
  }
  return diff / scale;
}

void rcc_test_expect_below(double err, double bound, const char *what) {
  printf("  %-44s error %.2e (bound %.0e)\n", what, err, bound);
  if (!(err <= bound)) {
    print_error("%s: error %.3g above %.1g\n", what, err, bound);
    fail();
  }
}

rcc_test_gemm_layout_t rcc_test_gemm_layout(bool ta, bool tb, int M, int N, int K, int pad,
                                            int batch, bool shared_b) {
  int a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
  rcc_test_gemm_layout_t g = {.lda = a_cols + pad, .ldb = b_cols + pad, .ldc = N + pad};
  g.sa = (int64_t)a_rows * g.lda + 3;
  g.sb = shared_b ? 0 : (int64_t)b_rows * g.ldb + 5;
  g.sc = (int64_t)M * g.ldc + 1;
  g.na = (size_t)g.sa * batch;
  g.nb = shared_b ? (size_t)b_rows * g.ldb : (size_t)g.sb * batch;
  g.nc = (size_t)g.sc * batch;
  return g;
}
