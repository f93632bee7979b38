/* Private to the CPU backend: the row-wise and element-wise kernels of cpu_ops.c, in the
 * shape of the rcc_backend_ops_t slots (arguments already checked by backend.c). */
#pragma once
#include "backend/backend_impl.h"

rcc_status_t rcc_cpu_layernorm(rcc_backend_t be, float *out, const float *inp, const float *w,
                               const float *b, int N, int C, float eps);
rcc_status_t rcc_cpu_softmax(rcc_backend_t be, float *x, int R, int L, float scale, int causal_T,
                             const uint8_t *key_valid, int rows_per_key);
rcc_status_t rcc_cpu_activation(rcc_backend_t be, rcc_activation_t act, float *x, int64_t n);
rcc_status_t rcc_cpu_add_bias(rcc_backend_t be, float *x, const float *bias, int N, int C);
rcc_status_t rcc_cpu_add(rcc_backend_t be, float *out, const float *a, const float *b, int64_t n);
rcc_status_t rcc_cpu_scale(rcc_backend_t be, float *x, float s, int64_t n);
rcc_status_t rcc_cpu_l2_normalize_rows(rcc_backend_t be, float *x, int N, int C);
