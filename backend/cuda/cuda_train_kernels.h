/* Private to the CUDA backend: C-callable launchers for the training kernels of
 * cuda_train_kernels.cu, one per op of backend_train.h with the same arguments and rules.
 * Pointers are device memory, arguments already checked by backend_train.c, sizes
 * non-zero; each launcher queues its kernel(s) on `stream` and returns the launch status
 * (cudaGetLastError). */
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t rcc_cuda_train_linear_epilogue(cudaStream_t stream, float *y, float *P,
                                           const float *alpha, const float *bias, int N, int m);
cudaError_t rcc_cuda_train_column_sums(cudaStream_t stream, float *d, const float *a,
                                       const float *b, int N, int m);
cudaError_t rcc_cuda_train_scale_columns(cudaStream_t stream, float *out, const float *in,
                                         const float *alpha, int N, int m);
cudaError_t rcc_cuda_train_layernorm_forward(cudaStream_t stream, float *out, float *mean,
                                             float *rstd, const float *inp, const float *w,
                                             const float *b, int N, int C, float eps);
cudaError_t rcc_cuda_train_layernorm_backward(cudaStream_t stream, float *dinp, float *dw,
                                              float *db, const float *dout, const float *inp,
                                              const float *w, const float *mean, const float *rstd,
                                              int N, int C);
cudaError_t rcc_cuda_train_softmax_backward(cudaStream_t stream, float *datt, const float *att,
                                            int64_t rows, int L);
cudaError_t rcc_cuda_train_activation_forward(cudaStream_t stream, rcc_activation_t act, float *out,
                                              const float *inp, int64_t n);
cudaError_t rcc_cuda_train_activation_backward(cudaStream_t stream, rcc_activation_t act,
                                               float *dinp, const float *dout, const float *inp,
                                               int64_t n);
cudaError_t rcc_cuda_train_im2col(cudaStream_t stream, float *cols, const float *pixels, int B,
                                  int C, int S, int p);
cudaError_t rcc_cuda_train_patch_rows_forward(cudaStream_t stream, float *x, const float *cls,
                                              const float *pos, int B, int T, int D);
cudaError_t rcc_cuda_train_patch_rows_backward(cudaStream_t stream, float *dcls, float *dpos,
                                               const float *dx, int B, int T, int D);
cudaError_t rcc_cuda_train_token_embed_forward(cudaStream_t stream, float *x, const int32_t *ids,
                                               const float *tok, const float *pos, int B, int T,
                                               int D);
cudaError_t rcc_cuda_train_token_embed_backward(cudaStream_t stream, float *dtok, float *dpos,
                                                const float *dx, const int32_t *ids, int B, int T,
                                                int D);
cudaError_t rcc_cuda_train_pool_forward(cudaStream_t stream, float *out, const float *x,
                                        const int *rows, int B, int T, int D);
cudaError_t rcc_cuda_train_pool_backward(cudaStream_t stream, float *dx, const float *dout,
                                         const int *rows, int B, int T, int D);
cudaError_t rcc_cuda_train_l2norm_forward(cudaStream_t stream, float *out, float *norm,
                                          const float *inp, int N, int C);
cudaError_t rcc_cuda_train_l2norm_backward(cudaStream_t stream, float *dinp, const float *dout,
                                           const float *out, const float *norm, int N, int C);
cudaError_t rcc_cuda_train_logit_scale_backward(cudaStream_t stream, float *dscale,
                                                const float *dlogits, const float *logits,
                                                float scale, int64_t count);
cudaError_t rcc_cuda_train_group_mean_forward(cudaStream_t stream, float *out, const float *inp,
                                              int G, int n, int C);
cudaError_t rcc_cuda_train_group_mean_backward(cudaStream_t stream, float *dinp, const float *dout,
                                               int G, int n, int C);
/* The loss ops add up one term per row: `sums` (device) holds N + 1 doubles, sums[1 + i]
 * row i's term, sums[0] their total in a fixed order. */
cudaError_t rcc_cuda_train_kd_loss(cudaStream_t stream, float *dlogits_s, const float *logits_s,
                                   const float *logits_t, int N, int M, double T, double coef,
                                   double *sums);
/* cosine: 1 for RCC_TRAIN_EMBED_COSINE, 0 for RCC_TRAIN_EMBED_MSE. */
cudaError_t rcc_cuda_train_embedding_loss(cudaStream_t stream, int cosine, float *da,
                                          const float *a, const float *b, int N, int C,
                                          double weight, double count, double *sums);
cudaError_t rcc_cuda_train_fill(cudaStream_t stream, float *x, float value, int64_t n);
cudaError_t rcc_cuda_train_gather(cudaStream_t stream, float *packed, const float *x,
                                  const int64_t *idx, int64_t n);
cudaError_t rcc_cuda_train_scatter(cudaStream_t stream, float *x, const float *packed,
                                   const int64_t *idx, int64_t n);
/* bc1, bc2: the bias corrections 1 - beta^step, computed on the host as the CPU does. */
cudaError_t rcc_cuda_train_adamw_step(cudaStream_t stream, float *params, float *m, float *v,
                                      const float *grads, const uint8_t *decay, int64_t n,
                                      double lr, float b1, float b2, double eps, double shrink,
                                      double bc1, double bc2);
/* The sums over all parameters below run on up to RCC_CUDA_SUM_BLOCKS blocks, a number
 * fixed by n alone, each leaving a partial that one more block adds in a fixed order: the
 * result repeats exactly. `sums` (device) holds RCC_CUDA_SUM_SCRATCH doubles; the result
 * is sums[0]. */
enum { RCC_CUDA_SUM_BLOCKS = 256, RCC_CUDA_SUM_SCRATCH = RCC_CUDA_SUM_BLOCKS + 1 };
/* sums[0] = the regularization sum of rcc_train_distill_grads. */
cudaError_t rcc_cuda_train_distill_grads(cudaStream_t stream, float *g, const float *p,
                                         const float *start, const uint8_t *frozen,
                                         const uint8_t *pull, int64_t n, float inv, float pull_coef,
                                         double reg_weight, double *sums);
/* sums[0] = sum of g^2 in double. */
cudaError_t rcc_cuda_train_sum_squares(cudaStream_t stream, double *sums, const float *g,
                                       int64_t n);
cudaError_t rcc_cuda_train_scale(cudaStream_t stream, float *g, float s, int64_t n);

#ifdef __cplusplus
}
#endif
