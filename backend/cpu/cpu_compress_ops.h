/* Private to the CPU backend: the compression kernels of cpu_compress_ops.c (SVD,
 * Cholesky, pruning masks, row scaling) and the calibration statistics of cpu_stats_ops.c,
 * in the shape of the rcc_backend_ops_t slots
 * (arguments already checked by backend.c, sizes non-zero). */
#pragma once
#include "backend/backend_impl.h"

rcc_status_t rcc_cpu_svd_f64(rcc_backend_t be, int m, int n, double *A, double *U, double *S,
                             double *Vt);
rcc_status_t rcc_cpu_cholesky_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri);
rcc_status_t rcc_cpu_cholesky_inverse_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri);
rcc_status_t rcc_cpu_row_topk_mask(rcc_backend_t be, const float *scores, int m, int n, int keep,
                                   uint8_t *mask);
rcc_status_t rcc_cpu_threshold_mask(rcc_backend_t be, const float *scores, int64_t count,
                                    float threshold, uint8_t *mask);
rcc_status_t rcc_cpu_nm_mask(rcc_backend_t be, const float *scores, int m, int n, int N, int M,
                             uint8_t *mask);
rcc_status_t rcc_cpu_apply_mask(rcc_backend_t be, float *W, const uint8_t *mask, int64_t count);
rcc_status_t rcc_cpu_scale_rows(rcc_backend_t be, float *W, const float *alpha, int m, int n);
rcc_status_t rcc_cpu_gram_f64(rcc_backend_t be, double *H, const float *X, int N, int d,
                              double *scratch);
/* Dense linear algebra in float64 for the stages (cpu_linalg_ops.c). */
rcc_status_t rcc_cpu_gemm_f64(rcc_backend_t be, bool ta, bool tb, int M, int N, int K, double alpha,
                              const double *A, int lda, const double *B, int ldb, double beta,
                              double *C, int ldc);
rcc_status_t rcc_cpu_trsm_f64(rcc_backend_t be, bool right, rcc_triangle_t tri, bool trans, int M,
                              int N, const double *T, int ldt, double *B, int ldb);
rcc_status_t rcc_cpu_f32_to_f64(rcc_backend_t be, double *out, const float *in, int64_t count);
rcc_status_t rcc_cpu_f64_to_f32(rcc_backend_t be, float *out, const double *in, int64_t count);
rcc_status_t rcc_cpu_row_dots_f64(rcc_backend_t be, double *out, const double *A, const double *B,
                                  int m, int n);
rcc_status_t rcc_cpu_prune_scores(rcc_backend_t be, float *scores, const float *W,
                                  const double *col_scale, const uint8_t *mask, int m, int n);
rcc_status_t rcc_cpu_obs_sweep_f64(rcc_backend_t be, double *Wt, int ldw, uint8_t *maskt,
                                   double *errt, const double *Hinv, int ldh, int m, int cols,
                                   int nm_n, int nm_m);
