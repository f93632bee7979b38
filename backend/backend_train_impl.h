/* Private: the table of training kernels behind backend_train.h, one per backend
 * (rcc_backend_ops_t.train). backend_train.c checks every argument first, so an
 * implementation may assume valid shapes, sizes non-zero and the pointers it needs
 * non-NULL; optional outputs (P, alpha, bias, b, dinp/dw/db, dcls/dpos, dtok/dpos) arrive
 * as NULL when not wanted. Only backend/ includes this. */
#pragma once
#include "backend/backend_impl.h"
#include "backend/backend_train.h"

typedef struct rcc_backend_train_ops {
  rcc_status_t (*linear_epilogue)(rcc_backend_t be, float *y, float *P, const float *alpha,
                                  const float *bias, int N, int m);
  rcc_status_t (*column_sums)(rcc_backend_t be, float *d, const float *a, const float *b, int N,
                              int m);
  rcc_status_t (*scale_columns)(rcc_backend_t be, float *out, const float *in, const float *alpha,
                                int N, int m);
  rcc_status_t (*layernorm_forward)(rcc_backend_t be, float *out, float *mean, float *rstd,
                                    const float *inp, const float *w, const float *b, int N, int C,
                                    float eps);
  rcc_status_t (*layernorm_backward)(rcc_backend_t be, float *dinp, float *dw, float *db,
                                     const float *dout, const float *inp, const float *w,
                                     const float *mean, const float *rstd, int N, int C);
  rcc_status_t (*softmax_backward)(rcc_backend_t be, float *datt, const float *att, int64_t rows,
                                   int L);
  rcc_status_t (*activation_forward)(rcc_backend_t be, rcc_activation_t act, float *out,
                                     const float *inp, int64_t n);
  rcc_status_t (*activation_backward)(rcc_backend_t be, rcc_activation_t act, float *dinp,
                                      const float *dout, const float *inp, int64_t n);
  rcc_status_t (*im2col)(rcc_backend_t be, float *cols, const float *pixels, int B, int C, int S,
                         int p);
  rcc_status_t (*patch_rows_forward)(rcc_backend_t be, float *x, const float *cls, const float *pos,
                                     int B, int T, int D);
  rcc_status_t (*patch_rows_backward)(rcc_backend_t be, float *dcls, float *dpos, const float *dx,
                                      int B, int T, int D);
  rcc_status_t (*token_embed_forward)(rcc_backend_t be, float *x, const int32_t *ids,
                                      const float *tok, const float *pos, int B, int T, int D);
  rcc_status_t (*token_embed_backward)(rcc_backend_t be, float *dtok, float *dpos, const float *dx,
                                       const int32_t *ids, int B, int T, int D);
  rcc_status_t (*pool_forward)(rcc_backend_t be, float *out, const float *x, const int *rows, int B,
                               int T, int D);
  rcc_status_t (*pool_backward)(rcc_backend_t be, float *dx, const float *dout, const int *rows,
                                int B, int T, int D);
  rcc_status_t (*l2norm_forward)(rcc_backend_t be, float *out, float *norm, const float *inp, int N,
                                 int C);
  rcc_status_t (*l2norm_backward)(rcc_backend_t be, float *dinp, const float *dout,
                                  const float *out, const float *norm, int N, int C);
  rcc_status_t (*logit_scale_backward)(rcc_backend_t be, float *dscale, const float *dlogits,
                                       const float *logits, float scale, int64_t count);
  rcc_status_t (*group_mean_forward)(rcc_backend_t be, float *out, const float *inp, int G, int n,
                                     int C);
  rcc_status_t (*group_mean_backward)(rcc_backend_t be, float *dinp, const float *dout, int G,
                                      int n, int C);
  rcc_status_t (*kd_loss)(rcc_backend_t be, float *dlogits_s, const float *logits_s,
                          const float *logits_t, int N, int M, double T, double coef, double *loss);
  rcc_status_t (*embedding_loss)(rcc_backend_t be, rcc_train_embed_t kind, float *da,
                                 const float *a, const float *b, int N, int C, double weight,
                                 double count, double *loss);
  rcc_status_t (*fill)(rcc_backend_t be, float *x, float value, int64_t n);
  rcc_status_t (*copy)(rcc_backend_t be, float *dst, const float *src, int64_t n);
  rcc_status_t (*gather)(rcc_backend_t be, float *packed, const float *x, const int64_t *idx,
                         int64_t n);
  rcc_status_t (*scatter)(rcc_backend_t be, float *x, const float *packed, const int64_t *idx,
                          int64_t n);
  rcc_status_t (*adamw_step)(rcc_backend_t be, float *params, float *m, float *v,
                             const float *grads, const uint8_t *decay, int64_t n,
                             const rcc_train_adamw_t *h);
  rcc_status_t (*distill_grads)(rcc_backend_t be, float *g, const float *p, const float *start,
                                const uint8_t *frozen, const uint8_t *pull, int64_t n, float inv,
                                float pull_coef, double reg_weight, double *reg);
  rcc_status_t (*clip_grad_norm)(rcc_backend_t be, float *g, int64_t n, double max_norm,
                                 double *norm);
} rcc_backend_train_ops_t;
