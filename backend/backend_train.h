/* Training kernels of the compute backend: the non-GEMM parts of the forward and backward
 * ops of model/grad_ops.h (distillation), one function per op, so that training runs on
 * any backend. Pointers are in the backend's memory (backend.h), float32 unless said
 * otherwise; integer index arrays (token ids, pooled rows) and masks too. Functions named
 * *_backward ACCUMULATE (+=) into their gradients, as grad_ops.h documents; everything else
 * overwrites its outputs. Shapes use grad_ops.h's letters: N rows, C channels, B batch,
 * T sequence, D model width, m out features.
 *
 * Reductions are deterministic on every backend (a fixed summation order for a given
 * shape, no atomics), so that a run repeats exactly. The CPU backend is the reference;
 * the CUDA backend agrees with it to rounding (tests/gpu/test_backend_cuda_train.c).
 *
 * The element-wise parts of training that backend.h already has are not repeated here:
 * the residual add is rcc_add, the mask of a sparse weight gradient rcc_backend_apply_mask.
 * Every function returns RCC_OK or an error recorded with rcc_fail(). */
#pragma once
#include <stdint.h>

#include "backend/backend.h"
#include "common/status.h"

/* ---- linear layer ---- */

/* The epilogue of y (N,m) = diag(alpha) (x W_eff^T) + bias: P (N,m), when non-NULL,
 * receives y as it is (the pre-scale product the dalpha backward needs), then
 * y = alpha[o] * y + bias[o] (alpha NULL means 1, bias NULL means 0). */
rcc_status_t rcc_train_linear_epilogue(rcc_backend_t be, float *y, float *P, const float *alpha,
                                       const float *bias, int N, int m);
/* d (m) += sum over rows i of a (N,m) of a[i,o] * (b ? b[i,o] : 1): dbias (b NULL) and
 * dalpha (b = P). */
rcc_status_t rcc_train_column_sums(rcc_backend_t be, float *d, const float *a, const float *b,
                                   int N, int m);
/* out (N,m) = in (N,m) * alpha (m) per column. out may equal in. */
rcc_status_t rcc_train_scale_columns(rcc_backend_t be, float *out, const float *in,
                                     const float *alpha, int N, int m);

/* ---- LayerNorm ---- */

/* out (N,C) = (inp - mean) * rstd * w + b per row, biased variance, statistics in double;
 * mean, rstd (N) overwritten with the float statistics the output used. */
rcc_status_t rcc_train_layernorm_forward(rcc_backend_t be, float *out, float *mean, float *rstd,
                                         const float *inp, const float *w, const float *b, int N,
                                         int C, float eps);
/* dinp (N,C), dw (C), db (C) += (each may be NULL, not all three). */
rcc_status_t rcc_train_layernorm_backward(rcc_backend_t be, float *dinp, float *dw, float *db,
                                          const float *dout, const float *inp, const float *w,
                                          const float *mean, const float *rstd, int N, int C);

/* ---- attention ---- */

/* The softmax backward of each row of att (rows, L), in place in datt (rows, L):
 * datt = att * (datt - sum_j datt[j] att[j]), the dot in double. OVERWRITES datt (it holds
 * d att on entry and d scores on return). */
rcc_status_t rcc_train_softmax_backward(rcc_backend_t be, float *datt, const float *att,
                                        int64_t rows, int L);

/* ---- activations ---- */

/* out (n) = act(inp); out may equal inp. */
rcc_status_t rcc_train_activation_forward(rcc_backend_t be, rcc_activation_t act, float *out,
                                          const float *inp, int64_t n);
/* dinp (n) += act'(inp) * dout. */
rcc_status_t rcc_train_activation_backward(rcc_backend_t be, rcc_activation_t act, float *dinp,
                                           const float *dout, const float *inp, int64_t n);

/* ---- embeddings ---- */

/* cols (B*(S/p)^2, C*p*p) = im2col of pixels (B,C,S,S): row (b, gy, gx) (row-major grid of
 * patches) holds the p x p patch in the conv weight's (c, ky, kx) order. S % p == 0. */
rcc_status_t rcc_train_im2col(rcc_backend_t be, float *cols, const float *pixels, int B, int C,
                              int S, int p);
/* x (B,T,D): row 0 of each image = cls (D), the other rows kept (the patch products), then
 * every row += pos (T,D). */
rcc_status_t rcc_train_patch_rows_forward(rcc_backend_t be, float *x, const float *cls,
                                          const float *pos, int B, int T, int D);
/* dpos (T,D) += sum over images of dx (B,T,D), dcls (D) += sum of the rows 0 (each may be
 * NULL, not both). Images are added in order. */
rcc_status_t rcc_train_patch_rows_backward(rcc_backend_t be, float *dcls, float *dpos,
                                           const float *dx, int B, int T, int D);
/* x (B*T,D) = tok[ids] + pos[t]; ids (B,T) int32 in [0, vocab) (not checked: they are in
 * the backend's memory). */
rcc_status_t rcc_train_token_embed_forward(rcc_backend_t be, float *x, const int32_t *ids,
                                           const float *tok, const float *pos, int B, int T, int D);
/* dtok (vocab,D), dpos (T,D) += (each may be NULL, not both). Positions are added in order
 * (two may hold the same token). */
rcc_status_t rcc_train_token_embed_backward(rcc_backend_t be, float *dtok, float *dpos,
                                            const float *dx, const int32_t *ids, int B, int T,
                                            int D);

/* ---- pooling ---- */

/* out (B,D) = row rows[b] of sequence b of x (B*T,D); rows (B) int in [0, T) (not
 * checked). Backward: dx (B*T,D) += the scatter of dout (B,D). */
rcc_status_t rcc_train_pool_forward(rcc_backend_t be, float *out, const float *x, const int *rows,
                                    int B, int T, int D);
rcc_status_t rcc_train_pool_backward(rcc_backend_t be, float *dx, const float *dout,
                                     const int *rows, int B, int T, int D);

/* ---- loss helpers ---- */

/* out (N,C) = inp / ||inp|| per row (rows of norm 0 become 0), norm (N) overwritten; the
 * squares summed in double. */
rcc_status_t rcc_train_l2norm_forward(rcc_backend_t be, float *out, float *norm, const float *inp,
                                      int N, int C);
/* dinp (N,C) += (dout - out (out . dout)) / norm per row (rows of norm 0 get nothing). */
rcc_status_t rcc_train_l2norm_backward(rcc_backend_t be, float *dinp, const float *dout,
                                       const float *out, const float *norm, int N, int C);
/* dscale (1) += sum(dlogits * logits) / scale over count values, the sum in double: the
 * gradient of a logit scale from the logits it scaled. scale must not be 0. */
rcc_status_t rcc_train_logit_scale_backward(rcc_backend_t be, float *dscale, const float *dlogits,
                                            const float *logits, float scale, int64_t count);

/* ---- distillation loss (compress/distill_loss.c) ----
 * The scalar terms come back to the host: each op ADDS its terms to *loss (host), row after
 * row, so that on the cpu backend a chain of calls sums exactly as one loop over every term
 * would; a device sums its rows in a fixed tree and adds the total (equal to rounding). */

/* out (G,C) = the mean of each group of n consecutive rows of inp (G*n, C), summed in
 * double: CLIP's prompt ensemble (n templates per class). Backward: dinp (G*n, C) +=
 * dout (G,C) / n, to every row of the group. */
rcc_status_t rcc_train_group_mean_forward(rcc_backend_t be, float *out, const float *inp, int G,
                                          int n, int C);
rcc_status_t rcc_train_group_mean_backward(rcc_backend_t be, float *dinp, const float *dout, int G,
                                           int n, int C);
/* Hinton's distillation term of student and teacher logits (N,M) at temperature T > 0, per
 * row p = softmax(logits / T) in double: *loss += coef T^2 KL(p_t || p_s), and
 * dlogits_s (N,M) = coef T (p_s - p_t) (OVERWRITTEN: the gradient of that term). */
rcc_status_t rcc_train_kd_loss(rcc_backend_t be, float *dlogits_s, const float *logits_s,
                               const float *logits_t, int N, int M, double T, double coef,
                               double *loss);
/* How rcc_train_embedding_loss compares two rows. */
typedef enum { RCC_TRAIN_EMBED_COSINE, RCC_TRAIN_EMBED_MSE } rcc_train_embed_t;
/* Agreement of the rows of a (N,C) with those of b, every row weighted by weight / count
 * (count: the rows a mean is over, 1 for a sum), dots in double:
 *   COSINE (a, b normalized): *loss += weight (1 - a.b) / count;
 *                             da -= (float)(weight / count) b;
 *   MSE:  *loss += weight |a - b|^2 / C / count; da += (float)(weight 2 / C / count) (a - b).
 * count > 0. */
rcc_status_t rcc_train_embedding_loss(rcc_backend_t be, rcc_train_embed_t kind, float *da,
                                      const float *a, const float *b, int N, int C, double weight,
                                      double count, double *loss);

/* ---- buffers and the optimizer step ---- */

/* x (n) = value. What clip_train.c uses to clear gradients and backward temporaries (a
 * host memset cannot reach device memory). */
rcc_status_t rcc_train_fill(rcc_backend_t be, float *x, float value, int64_t n);
/* dst (n) = src (n); the two must not overlap. */
rcc_status_t rcc_train_copy(rcc_backend_t be, float *dst, const float *src, int64_t n);
/* packed (n) = x[idx[k]] for k < n, and its inverse x[idx[k]] = packed (n) (other entries
 * of x untouched): the entries of a gradient that travel in an all-reduce, without the
 * frozen ones. idx (n, backend memory) holds distinct positions. */
rcc_status_t rcc_train_gather(rcc_backend_t be, float *packed, const float *x, const int64_t *idx,
                              int64_t n);
rcc_status_t rcc_train_scatter(rcc_backend_t be, float *x, const float *packed, const int64_t *idx,
                               int64_t n);

/* One AdamW update (compress/optim.h, whose rcc_adamw_step it reproduces to the bit: the
 * moments in float, the bias corrections and the update in double). step is the 1-based
 * update number the bias corrections use. */
typedef struct {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;
} rcc_train_adamw_t;
/* params, m, v (n) updated from grads (n); decay (n) uint8 or NULL (every entry decays). */
rcc_status_t rcc_train_adamw_step(rcc_backend_t be, float *params, float *m, float *v,
                                  const float *grads, const uint8_t *decay, int64_t n,
                                  const rcc_train_adamw_t *h);

/* Distillation's gradient before clipping (runner/distill.c), per entry i of n:
 *   g = frozen[i] ? 0 : g * inv;  if pull[i]: g += pull_coef * (p - start),
 * and *reg (host) = sum over pulled entries of reg_weight * (p - start)^2 in double.
 * frozen and pull are uint8 (n). */
rcc_status_t rcc_train_distill_grads(rcc_backend_t be, float *g, const float *p, const float *start,
                                     const uint8_t *frozen, const uint8_t *pull, int64_t n,
                                     float inv, float pull_coef, double reg_weight, double *reg);
/* *norm (host) = the L2 norm of g (n), the squares summed in double; when max_norm > 0 and
 * the norm exceeds it, g *= (float)(max_norm / (norm + 1e-6)) (compress/optim.h's
 * rcc_clip_grad_norm). */
rcc_status_t rcc_train_clip_grad_norm(rcc_backend_t be, float *g, int64_t n, double max_norm,
                                      double *norm);
