/* Private: the function table behind rcc_backend_t. Only backend/ includes this. */
#pragma once
#include "backend/backend.h"

typedef struct rcc_backend_ops {
  void (*destroy)(rcc_backend_t be);
  void (*set_threads)(rcc_backend_t be, int threads);
  void *(*alloc)(rcc_backend_t be, size_t bytes);
  void (*release)(rcc_backend_t be, void *ptr);
  rcc_status_t (*upload)(rcc_backend_t be, void *dst, const void *src, size_t bytes);
  rcc_status_t (*download)(rcc_backend_t be, void *dst, const void *src, size_t bytes);
  rcc_status_t (*synchronize)(rcc_backend_t be);
  rcc_status_t (*gemm_strided_batched)(rcc_backend_t be, bool ta, bool tb, int M, int N, int K,
                                       float alpha, const float *A, int lda, int64_t sa,
                                       const float *B, int ldb, int64_t sb, float beta, float *C,
                                       int ldc, int64_t sc, int batch);
  rcc_status_t (*layernorm)(rcc_backend_t be, float *out, const float *inp, const float *w,
                            const float *b, int N, int C, float eps);
  rcc_status_t (*softmax)(rcc_backend_t be, float *x, int R, int L, float scale, int causal_T,
                          const uint8_t *key_valid, int rows_per_key);
  rcc_status_t (*activation)(rcc_backend_t be, rcc_activation_t act, float *x, int64_t n);
  rcc_status_t (*add_bias)(rcc_backend_t be, float *x, const float *bias, int N, int C);
  rcc_status_t (*add)(rcc_backend_t be, float *out, const float *a, const float *b, int64_t n);
  rcc_status_t (*scale)(rcc_backend_t be, float *x, float s, int64_t n);
  rcc_status_t (*l2_normalize_rows)(rcc_backend_t be, float *x, int N, int C);
  /* Compression kernels (backend.h): arguments checked, sizes non-zero. */
  rcc_status_t (*gram_f64)(rcc_backend_t be, double *H, const float *X, int N, int d,
                           double *scratch);
  rcc_status_t (*svd_f64)(rcc_backend_t be, int m, int n, double *A, double *U, double *S,
                          double *Vt);
  rcc_status_t (*cholesky_f64)(rcc_backend_t be, int n, double *A, rcc_triangle_t tri);
  rcc_status_t (*cholesky_inverse_f64)(rcc_backend_t be, int n, double *A, rcc_triangle_t tri);
  rcc_status_t (*row_topk_mask)(rcc_backend_t be, const float *scores, int m, int n, int keep,
                                uint8_t *mask);
  rcc_status_t (*threshold_mask)(rcc_backend_t be, const float *scores, int64_t count,
                                 float threshold, uint8_t *mask);
  rcc_status_t (*nm_mask)(rcc_backend_t be, const float *scores, int m, int n, int N, int M,
                          uint8_t *mask);
  rcc_status_t (*apply_mask)(rcc_backend_t be, float *W, const uint8_t *mask, int64_t count);
  rcc_status_t (*scale_rows)(rcc_backend_t be, float *W, const float *alpha, int m, int n);
  /* Training kernels (backend_train_impl.h); NULL: the backend cannot train. */
  const struct rcc_backend_train_ops *train;
  /* Dense linear algebra in float64 for the stages (backend.h): checked, sizes non-zero. */
  rcc_status_t (*gemm_f64)(rcc_backend_t be, bool ta, bool tb, int M, int N, int K, double alpha,
                           const double *A, int lda, const double *B, int ldb, double beta,
                           double *C, int ldc);
  rcc_status_t (*trsm_f64)(rcc_backend_t be, bool right, rcc_triangle_t tri, bool trans, int M,
                           int N, const double *T, int ldt, double *B, int ldb);
  rcc_status_t (*f32_to_f64)(rcc_backend_t be, double *out, const float *in, int64_t count);
  rcc_status_t (*f64_to_f32)(rcc_backend_t be, float *out, const double *in, int64_t count);
  rcc_status_t (*row_dots_f64)(rcc_backend_t be, double *out, const double *A, const double *B,
                               int m, int n);
  rcc_status_t (*prune_scores)(rcc_backend_t be, float *scores, const float *W,
                               const double *col_scale, const uint8_t *mask, int m, int n);
  rcc_status_t (*obs_sweep_f64)(rcc_backend_t be, double *Wt, int ldw, uint8_t *maskt, double *errt,
                                const double *Hinv, int ldh, int m, int cols, int nm_n, int nm_m);
} rcc_backend_ops_t;

struct rcc_backend {
  const rcc_backend_ops_t *ops;
  rcc_backend_kind_t kind;
  char description[256];
  char device_id[64]; /* rcc_backend_device_id */
  void *impl; /* the implementation's own state */
};

rcc_status_t rcc_backend_cpu_create(rcc_backend_t *out);
/* Defined only when built with CUDA (RCC_HAVE_CUDA). */
rcc_status_t rcc_backend_cuda_create(rcc_backend_t *out, int device);
