/* The public backend API: picks an implementation by name, checks every argument once
 * here (so the CPU and CUDA implementations can assume valid shapes), then forwards to
 * the implementation's function table (backend_impl.h). */
#include "backend/backend_impl.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "rcc_version.h"

#define ACCEPTED_NAMES "\"cpu\", \"cuda\", \"cuda:N\" or \"auto\""

#if !RCC_HAVE_CUDA
/* Without the CUDA backend no device is ever usable. */
int rcc_backend_cuda_device_count(void) { return 0; }
#endif

/* Parses "cuda" (device 0) or "cuda:N". Returns 1 and sets *device on a match. */
static int parse_cuda_name(const char *name, int *device) {
  if (strcmp(name, "cuda") == 0) {
    *device = 0;
    return 1;
  }
  if (strncmp(name, "cuda:", 5) != 0) return 0;
  const char *digits = name + 5;
  if (*digits < '0' || *digits > '9') return 0;
  char *end = NULL;
  errno = 0;
  long v = strtol(digits, &end, 10);
  if (errno != 0 || *end != '\0' || v > INT_MAX) return 0;
  *device = (int)v;
  return 1;
}

static rcc_status_t init_cuda(rcc_backend_t *out, const char *name, int device) {
#if RCC_HAVE_CUDA
  return rcc_backend_cuda_create(out, device);
#else
  (void)out;
  (void)device;
  return rcc_fail(RCC_ERR_UNSUPPORTED,
                  "backend.c: rcc_backend_init: backend '%s' requested but this build has no "
                  "CUDA support (configure on a machine with the CUDA toolkit); use \"cpu\"",
                  name);
#endif
}

rcc_status_t rcc_backend_init(rcc_backend_t *out, const char *name) {
  if (!out || !name)
    return rcc_fail(RCC_ERR_ARG, "backend.c: rcc_backend_init: NULL %s",
                    out ? "name" : "output handle");
  *out = NULL;
  int device = 0;
  if (strcmp(name, "cpu") == 0) return rcc_backend_cpu_create(out);
  if (parse_cuda_name(name, &device)) return init_cuda(out, name, device);
  if (strcmp(name, "auto") == 0) {
    if (rcc_backend_cuda_device_count() > 0) return init_cuda(out, "cuda:0", 0);
    RCC_INFO("backend auto: no CUDA device visible%s, using cpu",
             RCC_HAVE_CUDA ? "" : " (built without CUDA)");
    return rcc_backend_cpu_create(out);
  }
  return rcc_fail(RCC_ERR_ARG, "backend.c: rcc_backend_init: unknown backend '%s' (accepted: %s)",
                  name, ACCEPTED_NAMES);
}

void rcc_backend_free(rcc_backend_t be) {
  if (be) be->ops->destroy(be);
}

rcc_backend_kind_t rcc_backend_kind(rcc_backend_t be) { return be->kind; }

bool rcc_backend_device_path(rcc_backend_t be) {
  if (be->kind != RCC_BACKEND_CPU) return true;
  const char *env = getenv("RCC_STAGES_ON_BACKEND");
  return env && strcmp(env, "1") == 0;
}

const char *rcc_backend_describe(rcc_backend_t be) { return be ? be->description : "(none)"; }

const char *rcc_backend_device_id(rcc_backend_t be) { return be->device_id; }

void rcc_backend_set_threads(rcc_backend_t be, int threads) {
  if (be && threads > 0) be->ops->set_threads(be, threads);
}

/* Shared checks: a handle, and non-NULL pointers for non-empty data. */
#define CHECK_BE(fn)                                                                               \
  do {                                                                                             \
    if (!be) return rcc_fail(RCC_ERR_ARG, "backend.c: %s: NULL backend", fn);                      \
  } while (0)
#define CHECK_PTR(fn, p, nonempty)                                                                 \
  do {                                                                                             \
    if ((nonempty) && !(p)) return rcc_fail(RCC_ERR_ARG, "backend.c: %s: %s is NULL", fn, #p);     \
  } while (0)

void *rcc_backend_alloc(rcc_backend_t be, size_t bytes) {
  if (!be) {
    rcc_fail(RCC_ERR_ARG, "backend.c: rcc_backend_alloc: NULL backend");
    return NULL;
  }
  return be->ops->alloc(be, bytes);
}

void rcc_backend_release(rcc_backend_t be, void *ptr) {
  if (be && ptr) be->ops->release(be, ptr);
}

rcc_status_t rcc_backend_upload(rcc_backend_t be, void *dst, const void *host_src, size_t bytes) {
  CHECK_BE("rcc_backend_upload");
  CHECK_PTR("rcc_backend_upload", dst, bytes > 0);
  CHECK_PTR("rcc_backend_upload", host_src, bytes > 0);
  if (bytes == 0) return RCC_OK;
  return be->ops->upload(be, dst, host_src, bytes);
}

rcc_status_t rcc_backend_download(rcc_backend_t be, void *host_dst, const void *src, size_t bytes) {
  CHECK_BE("rcc_backend_download");
  CHECK_PTR("rcc_backend_download", host_dst, bytes > 0);
  CHECK_PTR("rcc_backend_download", src, bytes > 0);
  if (bytes == 0) return RCC_OK;
  return be->ops->download(be, host_dst, src, bytes);
}

rcc_status_t rcc_backend_synchronize(rcc_backend_t be) {
  CHECK_BE("rcc_backend_synchronize");
  return be->ops->synchronize(be);
}

rcc_status_t rcc_gemm(rcc_backend_t be, bool trans_a, bool trans_b, int M, int N, int K,
                      float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc) {
  return rcc_gemm_strided_batched(be, trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta,
                                  C, ldc, 0, 1);
}

static int max_int(int a, int b) { return a > b ? a : b; }

rcc_status_t rcc_gemm_strided_batched(rcc_backend_t be, bool trans_a, bool trans_b, int M, int N,
                                      int K, float alpha, const float *A, int lda, int64_t stride_a,
                                      const float *B, int ldb, int64_t stride_b, float beta,
                                      float *C, int ldc, int64_t stride_c, int batch) {
  static const char fn[] = "rcc_gemm";
  CHECK_BE(fn);
  if (M < 0 || N < 0 || K < 0 || batch < 0)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative size (M %d, N %d, K %d, batch %d)", fn, M,
                    N, K, batch);
  if (stride_a < 0 || stride_b < 0 || stride_c < 0)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative batch stride (%lld, %lld, %lld)", fn,
                    (long long)stride_a, (long long)stride_b, (long long)stride_c);
  /* Row strides as stored: A is (M,K) or, transposed, (K,M); B is (K,N) or (N,K). */
  int a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
  if (lda < max_int(1, a_cols) || ldb < max_int(1, b_cols) || ldc < max_int(1, N))
    return rcc_fail(RCC_ERR_ARG,
                    "backend.c: %s: leading dimension too small: lda %d (A has %d columns), "
                    "ldb %d (B has %d columns), ldc %d (C has %d columns)",
                    fn, lda, a_cols, ldb, b_cols, ldc, N);
  if (M == 0 || N == 0 || batch == 0) return RCC_OK;
  CHECK_PTR(fn, C, 1);
  CHECK_PTR(fn, A, K > 0);
  CHECK_PTR(fn, B, K > 0);
  return be->ops->gemm_strided_batched(be, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B,
                                       ldb, stride_b, beta, C, ldc, stride_c, batch);
}

/* Rows and columns of a (N,C) tensor: both non-negative, the data non-NULL when non-empty. */
#define CHECK_ROWS(fn, N, C)                                                                       \
  do {                                                                                             \
    if ((N) < 0 || (C) < 0)                                                                        \
      return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative shape (%d, %d)", fn, (N), (C));        \
  } while (0)

rcc_status_t rcc_layernorm(rcc_backend_t be, float *out, const float *inp, const float *weight,
                           const float *bias, int N, int C, float eps) {
  static const char fn[] = "rcc_layernorm";
  CHECK_BE(fn);
  CHECK_ROWS(fn, N, C);
  if (!(eps >= 0.0f))
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: eps %g must be >= 0", fn, (double)eps);
  if (N == 0 || C == 0) return RCC_OK;
  CHECK_PTR(fn, out, 1);
  CHECK_PTR(fn, inp, 1);
  CHECK_PTR(fn, weight, 1);
  CHECK_PTR(fn, bias, 1);
  return be->ops->layernorm(be, out, inp, weight, bias, N, C, eps);
}

rcc_status_t rcc_softmax(rcc_backend_t be, float *x, int R, int L, float scale, int causal_T,
                         const uint8_t *key_valid, int rows_per_key) {
  static const char fn[] = "rcc_softmax";
  CHECK_BE(fn);
  CHECK_ROWS(fn, R, L);
  if (causal_T < 0 || (causal_T > 0 && R % causal_T != 0))
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: causal_T %d must be 0 or divide the rows %d", fn,
                    causal_T, R);
  if (key_valid && (rows_per_key <= 0 || R % rows_per_key != 0))
    return rcc_fail(RCC_ERR_ARG,
                    "backend.c: %s: rows_per_key %d must be positive and divide the rows %d", fn,
                    rows_per_key, R);
  if (R == 0 || L == 0) return RCC_OK;
  CHECK_PTR(fn, x, 1);
  return be->ops->softmax(be, x, R, L, scale, causal_T, key_valid, key_valid ? rows_per_key : 1);
}

rcc_status_t rcc_activation(rcc_backend_t be, rcc_activation_t act, float *x, int64_t n) {
  static const char fn[] = "rcc_activation";
  CHECK_BE(fn);
  if (act != RCC_ACT_GELU && act != RCC_ACT_GELU_TANH && act != RCC_ACT_QUICK_GELU &&
      act != RCC_ACT_RELU)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: unknown activation %d", fn, (int)act);
  if (n < 0) return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative n %lld", fn, (long long)n);
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, x, 1);
  return be->ops->activation(be, act, x, n);
}

rcc_status_t rcc_add_bias(rcc_backend_t be, float *x, const float *bias, int N, int C) {
  static const char fn[] = "rcc_add_bias";
  CHECK_BE(fn);
  CHECK_ROWS(fn, N, C);
  if (N == 0 || C == 0) return RCC_OK;
  CHECK_PTR(fn, x, 1);
  CHECK_PTR(fn, bias, 1);
  return be->ops->add_bias(be, x, bias, N, C);
}

rcc_status_t rcc_add(rcc_backend_t be, float *out, const float *a, const float *b, int64_t n) {
  static const char fn[] = "rcc_add";
  CHECK_BE(fn);
  if (n < 0) return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative n %lld", fn, (long long)n);
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, out, 1);
  CHECK_PTR(fn, a, 1);
  CHECK_PTR(fn, b, 1);
  return be->ops->add(be, out, a, b, n);
}

rcc_status_t rcc_scale(rcc_backend_t be, float *x, float s, int64_t n) {
  static const char fn[] = "rcc_scale";
  CHECK_BE(fn);
  if (n < 0) return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative n %lld", fn, (long long)n);
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, x, 1);
  return be->ops->scale(be, x, s, n);
}

rcc_status_t rcc_l2_normalize_rows(rcc_backend_t be, float *x, int N, int C) {
  static const char fn[] = "rcc_l2_normalize_rows";
  CHECK_BE(fn);
  CHECK_ROWS(fn, N, C);
  if (N == 0 || C == 0) return RCC_OK;
  CHECK_PTR(fn, x, 1);
  return be->ops->l2_normalize_rows(be, x, N, C);
}

/* ---- Compression kernels ---- */

/* True when the byte ranges [a, a+na) and [b, b+nb) share a byte (both non-empty). */
static bool ranges_overlap(const void *a, size_t na, const void *b, size_t nb) {
  uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
  return na > 0 && nb > 0 && pa < pb + nb && pb < pa + na;
}

rcc_status_t rcc_backend_svd_f64(rcc_backend_t be, int m, int n, double *A, double *U, double *S,
                                 double *Vt) {
  static const char fn[] = "rcc_backend_svd_f64";
  CHECK_BE(fn);
  CHECK_ROWS(fn, m, n);
  if (m == 0 || n == 0) return RCC_OK;
  CHECK_PTR(fn, A, 1);
  CHECK_PTR(fn, U, 1);
  CHECK_PTR(fn, S, 1);
  CHECK_PTR(fn, Vt, 1);
  const size_t k = (size_t)(m < n ? m : n), d = sizeof(double);
  const struct {
    const char *name;
    const void *p;
    size_t bytes;
  } buf[] = {{"A", A, (size_t)m * n * d},
             {"U", U, (size_t)m * k * d},
             {"S", S, k * d},
             {"Vt", Vt, k * n * d}};
  for (int i = 0; i < 4; i++)
    for (int j = i + 1; j < 4; j++)
      if (ranges_overlap(buf[i].p, buf[i].bytes, buf[j].p, buf[j].bytes))
        return rcc_fail(RCC_ERR_ARG, "backend.c: %s: %s and %s overlap (%d x %d)", fn, buf[i].name,
                        buf[j].name, m, n);
  return be->ops->svd_f64(be, m, n, A, U, S, Vt);
}

/* Shared by the two Cholesky ops: a square size and a known triangle. */
static rcc_status_t check_cholesky(rcc_backend_t be, int n, const double *A, rcc_triangle_t tri,
                                   const char *fn) {
  CHECK_BE(fn);
  if (n < 0) return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative n %d", fn, n);
  if (tri != RCC_TRIANGLE_LOWER && tri != RCC_TRIANGLE_UPPER)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: unknown triangle %d", fn, (int)tri);
  CHECK_PTR(fn, A, n > 0);
  return RCC_OK;
}

rcc_status_t rcc_backend_cholesky_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri) {
  RCC_TRY(check_cholesky(be, n, A, tri, "rcc_backend_cholesky_f64"));
  if (n == 0) return RCC_OK;
  return be->ops->cholesky_f64(be, n, A, tri);
}

rcc_status_t rcc_backend_cholesky_inverse_f64(rcc_backend_t be, int n, double *A,
                                              rcc_triangle_t tri) {
  RCC_TRY(check_cholesky(be, n, A, tri, "rcc_backend_cholesky_inverse_f64"));
  if (n == 0) return RCC_OK;
  return be->ops->cholesky_inverse_f64(be, n, A, tri);
}

rcc_status_t rcc_backend_row_topk_mask(rcc_backend_t be, const float *scores, int m, int n,
                                       int keep_per_row, uint8_t *mask) {
  static const char fn[] = "rcc_backend_row_topk_mask";
  CHECK_BE(fn);
  CHECK_ROWS(fn, m, n);
  if (keep_per_row < 0 || keep_per_row > n)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: keep_per_row %d outside 0..%d (the row length)",
                    fn, keep_per_row, n);
  if (m == 0 || n == 0) return RCC_OK;
  CHECK_PTR(fn, scores, 1);
  CHECK_PTR(fn, mask, 1);
  return be->ops->row_topk_mask(be, scores, m, n, keep_per_row, mask);
}

rcc_status_t rcc_backend_threshold_mask(rcc_backend_t be, const float *scores, int64_t count,
                                        float threshold, uint8_t *mask) {
  static const char fn[] = "rcc_backend_threshold_mask";
  CHECK_BE(fn);
  if (count < 0)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative count %lld", fn, (long long)count);
  if (isnan(threshold)) return rcc_fail(RCC_ERR_ARG, "backend.c: %s: threshold is NaN", fn);
  if (count == 0) return RCC_OK;
  CHECK_PTR(fn, scores, 1);
  CHECK_PTR(fn, mask, 1);
  return be->ops->threshold_mask(be, scores, count, threshold, mask);
}

rcc_status_t rcc_backend_nm_mask(rcc_backend_t be, const float *scores, int m, int n, int N, int M,
                                 uint8_t *mask) {
  static const char fn[] = "rcc_backend_nm_mask";
  CHECK_BE(fn);
  CHECK_ROWS(fn, m, n);
  if (N < 1 || N > M || M > RCC_BACKEND_NM_MAX_M)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: pattern %d:%d needs 1 <= N <= M <= %d", fn, N, M,
                    RCC_BACKEND_NM_MAX_M);
  if (n % M != 0)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: pattern %d:%d needs M to divide the row length %d",
                    fn, N, M, n);
  if (m == 0 || n == 0) return RCC_OK;
  CHECK_PTR(fn, scores, 1);
  CHECK_PTR(fn, mask, 1);
  return be->ops->nm_mask(be, scores, m, n, N, M, mask);
}

rcc_status_t rcc_backend_apply_mask(rcc_backend_t be, float *W, const uint8_t *mask,
                                    int64_t count) {
  static const char fn[] = "rcc_backend_apply_mask";
  CHECK_BE(fn);
  if (count < 0)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative count %lld", fn, (long long)count);
  if (count == 0) return RCC_OK;
  CHECK_PTR(fn, W, 1);
  CHECK_PTR(fn, mask, 1);
  return be->ops->apply_mask(be, W, mask, count);
}

rcc_status_t rcc_backend_scale_rows(rcc_backend_t be, float *W, const float *alpha, int m, int n) {
  static const char fn[] = "rcc_backend_scale_rows";
  CHECK_BE(fn);
  CHECK_ROWS(fn, m, n);
  if (m == 0 || n == 0) return RCC_OK;
  CHECK_PTR(fn, W, 1);
  CHECK_PTR(fn, alpha, 1);
  return be->ops->scale_rows(be, W, alpha, m, n);
}

rcc_status_t rcc_backend_gram_f64(rcc_backend_t be, double *H, const float *X, int N, int d,
                                  double *scratch) {
  static const char fn[] = "rcc_backend_gram_f64";
  CHECK_BE(fn);
  CHECK_ROWS(fn, N, d);
  if (N == 0 || d == 0) return RCC_OK;
  CHECK_PTR(fn, H, 1);
  CHECK_PTR(fn, X, 1);
  CHECK_PTR(fn, scratch, 1);
  return be->ops->gram_f64(be, H, X, N, d, scratch);
}

/* ---- Dense linear algebra in float64 for the stages on the device ---- */

rcc_status_t rcc_backend_gemm_f64(rcc_backend_t be, bool trans_a, bool trans_b, int M, int N, int K,
                                  double alpha, const double *A, int lda, const double *B, int ldb,
                                  double beta, double *C, int ldc) {
  static const char fn[] = "rcc_backend_gemm_f64";
  CHECK_BE(fn);
  if (M < 0 || N < 0 || K < 0)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative size (M %d, N %d, K %d)", fn, M, N, K);
  const int a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
  if (lda < max_int(1, a_cols) || ldb < max_int(1, b_cols) || ldc < max_int(1, N))
    return rcc_fail(RCC_ERR_ARG,
                    "backend.c: %s: leading dimension too small: lda %d (A has %d columns), "
                    "ldb %d (B has %d columns), ldc %d (C has %d columns)",
                    fn, lda, a_cols, ldb, b_cols, ldc, N);
  if (M == 0 || N == 0) return RCC_OK;
  CHECK_PTR(fn, C, 1);
  CHECK_PTR(fn, A, K > 0);
  CHECK_PTR(fn, B, K > 0);
  return be->ops->gemm_f64(be, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

rcc_status_t rcc_backend_trsm_f64(rcc_backend_t be, bool right, rcc_triangle_t tri, bool trans,
                                  int M, int N, const double *T, int ldt, double *B, int ldb) {
  static const char fn[] = "rcc_backend_trsm_f64";
  CHECK_BE(fn);
  CHECK_ROWS(fn, M, N);
  if (tri != RCC_TRIANGLE_LOWER && tri != RCC_TRIANGLE_UPPER)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: unknown triangle %d", fn, (int)tri);
  const int order = right ? N : M;
  if (ldt < max_int(1, order) || ldb < max_int(1, N))
    return rcc_fail(RCC_ERR_ARG,
                    "backend.c: %s: leading dimension too small: ldt %d (T has order %d), "
                    "ldb %d (B has %d columns)",
                    fn, ldt, order, ldb, N);
  if (M == 0 || N == 0) return RCC_OK;
  CHECK_PTR(fn, T, 1);
  CHECK_PTR(fn, B, 1);
  return be->ops->trsm_f64(be, right, tri, trans, M, N, T, ldt, B, ldb);
}

/* Shared by the two conversions: a count and two buffers. */
static rcc_status_t check_convert(rcc_backend_t be, const void *out, const void *in, int64_t count,
                                  const char *fn) {
  CHECK_BE(fn);
  if (count < 0)
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: negative count %lld", fn, (long long)count);
  CHECK_PTR(fn, out, count > 0);
  CHECK_PTR(fn, in, count > 0);
  return RCC_OK;
}

rcc_status_t rcc_backend_f32_to_f64(rcc_backend_t be, double *out, const float *in, int64_t count) {
  RCC_TRY(check_convert(be, out, in, count, "rcc_backend_f32_to_f64"));
  if (count == 0) return RCC_OK;
  return be->ops->f32_to_f64(be, out, in, count);
}

rcc_status_t rcc_backend_f64_to_f32(rcc_backend_t be, float *out, const double *in, int64_t count) {
  RCC_TRY(check_convert(be, out, in, count, "rcc_backend_f64_to_f32"));
  if (count == 0) return RCC_OK;
  return be->ops->f64_to_f32(be, out, in, count);
}

rcc_status_t rcc_backend_row_dots_f64(rcc_backend_t be, double *out, const double *A,
                                      const double *B, int m, int n) {
  static const char fn[] = "rcc_backend_row_dots_f64";
  CHECK_BE(fn);
  CHECK_ROWS(fn, m, n);
  /* n = 0 would ask for zeros, which no caller wants: refuse it rather than write them. */
  if (n == 0 && m > 0) return rcc_fail(RCC_ERR_ARG, "backend.c: %s: rows of length 0", fn);
  if (m == 0) return RCC_OK;
  CHECK_PTR(fn, out, 1);
  CHECK_PTR(fn, A, 1);
  CHECK_PTR(fn, B, 1);
  return be->ops->row_dots_f64(be, out, A, B, m, n);
}

rcc_status_t rcc_backend_prune_scores(rcc_backend_t be, float *scores, const float *W,
                                      const double *col_scale, const uint8_t *mask, int m, int n) {
  static const char fn[] = "rcc_backend_prune_scores";
  CHECK_BE(fn);
  CHECK_ROWS(fn, m, n);
  if (m == 0 || n == 0) return RCC_OK;
  CHECK_PTR(fn, scores, 1);
  CHECK_PTR(fn, W, 1);
  return be->ops->prune_scores(be, scores, W, col_scale, mask, m, n);
}

rcc_status_t rcc_backend_obs_sweep_f64(rcc_backend_t be, double *Wt, int ldw, uint8_t *maskt,
                                       double *errt, const double *Hinv, int ldh, int m, int cols,
                                       int nm_n, int nm_m) {
  static const char fn[] = "rcc_backend_obs_sweep_f64";
  CHECK_BE(fn);
  CHECK_ROWS(fn, cols, m);
  if (ldw < max_int(1, m) || ldh < max_int(1, cols))
    return rcc_fail(RCC_ERR_ARG,
                    "backend.c: %s: leading dimension too small: ldw %d (%d rows of W), ldh %d "
                    "(block of %d columns)",
                    fn, ldw, m, ldh, cols);
  if (nm_n != 0 && !(nm_n >= 1 && nm_n <= nm_m && nm_m <= RCC_BACKEND_NM_MAX_M && cols % nm_m == 0))
    return rcc_fail(RCC_ERR_ARG, "backend.c: %s: N:M %d:%d on a block of %d columns", fn, nm_n,
                    nm_m, cols);
  if (m == 0 || cols == 0) return RCC_OK;
  CHECK_PTR(fn, Wt, 1);
  CHECK_PTR(fn, maskt, 1);
  CHECK_PTR(fn, errt, 1);
  CHECK_PTR(fn, Hinv, 1);
  return be->ops->obs_sweep_f64(be, Wt, ldw, maskt, errt, Hinv, ldh, m, cols, nm_n, nm_m);
}
