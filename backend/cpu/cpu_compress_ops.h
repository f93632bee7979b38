/* Private to the CPU backend: the compression kernels of cpu_compress_ops.c (SVD,
 * Cholesky, pruning masks, row scaling) in the shape of the rcc_backend_ops_t slots
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
