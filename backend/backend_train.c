/* The public training kernels (backend_train.h): every argument checked once here, as
 * backend.c does for the inference ops, then forwarded to the backend's training table
 * (backend_train_impl.h). Empty shapes return RCC_OK without reaching the backend. */
#include "backend/backend_train_impl.h"

/* A handle whose backend has training kernels. */
#define CHECK_BE(fn)                                                                               \
  do {                                                                                             \
    if (!be) return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: NULL backend", fn);                \
    if (!be->ops->train)                                                                           \
      return rcc_fail(RCC_ERR_UNSUPPORTED, "backend_train.c: %s: backend %s has no training ops",  \
                      fn, be->description);                                                        \
  } while (0)
#define CHECK_PTR(fn, p)                                                                           \
  do {                                                                                             \
    if (!(p)) return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: %s is NULL", fn, #p);             \
  } while (0)
/* At least one of two optional outputs: a call that computes nothing is a caller's bug. */
#define CHECK_ANY(fn, p, q)                                                                        \
  do {                                                                                             \
    if (!(p) && !(q))                                                                              \
      return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: %s and %s are both NULL", fn, #p, #q);    \
  } while (0)
#define CHECK_SHAPE2(fn, a, b)                                                                     \
  do {                                                                                             \
    if ((a) < 0 || (b) < 0)                                                                        \
      return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: negative shape (%d, %d)", fn, (a), (b));  \
  } while (0)
#define CHECK_SHAPE3(fn, a, b, c)                                                                  \
  do {                                                                                             \
    if ((a) < 0 || (b) < 0 || (c) < 0)                                                             \
      return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: negative shape (%d, %d, %d)", fn, (a),    \
                      (b), (c));                                                                   \
  } while (0)
#define CHECK_COUNT(fn, n)                                                                         \
  do {                                                                                             \
    if ((n) < 0)                                                                                   \
      return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: negative count %lld", fn,                 \
                      (long long)(n));                                                             \
  } while (0)
#define CHECK_ACT(fn, act)                                                                         \
  do {                                                                                             \
    if ((act) != RCC_ACT_GELU && (act) != RCC_ACT_GELU_TANH && (act) != RCC_ACT_QUICK_GELU &&      \
        (act) != RCC_ACT_RELU)                                                                     \
      return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: unknown activation %d", fn, (int)(act));  \
  } while (0)

/* ---- linear layer ---- */

rcc_status_t rcc_train_linear_epilogue(rcc_backend_t be, float *y, float *P, const float *alpha,
                                       const float *bias, int N, int m) {
  static const char fn[] = "rcc_train_linear_epilogue";
  CHECK_BE(fn);
  CHECK_SHAPE2(fn, N, m);
  if (N == 0 || m == 0 || (!P && !alpha && !bias)) return RCC_OK;
  CHECK_PTR(fn, y);
  return be->ops->train->linear_epilogue(be, y, P, alpha, bias, N, m);
}

rcc_status_t rcc_train_column_sums(rcc_backend_t be, float *d, const float *a, const float *b,
                                   int N, int m) {
  static const char fn[] = "rcc_train_column_sums";
  CHECK_BE(fn);
  CHECK_SHAPE2(fn, N, m);
  if (N == 0 || m == 0) return RCC_OK;
  CHECK_PTR(fn, d);
  CHECK_PTR(fn, a);
  return be->ops->train->column_sums(be, d, a, b, N, m);
}

rcc_status_t rcc_train_scale_columns(rcc_backend_t be, float *out, const float *in,
                                     const float *alpha, int N, int m) {
  static const char fn[] = "rcc_train_scale_columns";
  CHECK_BE(fn);
  CHECK_SHAPE2(fn, N, m);
  if (N == 0 || m == 0) return RCC_OK;
  CHECK_PTR(fn, out);
  CHECK_PTR(fn, in);
  CHECK_PTR(fn, alpha);
  return be->ops->train->scale_columns(be, out, in, alpha, N, m);
}

/* ---- LayerNorm ---- */

rcc_status_t rcc_train_layernorm_forward(rcc_backend_t be, float *out, float *mean, float *rstd,
                                         const float *inp, const float *w, const float *b, int N,
                                         int C, float eps) {
  static const char fn[] = "rcc_train_layernorm_forward";
  CHECK_BE(fn);
  CHECK_SHAPE2(fn, N, C);
  if (!(eps >= 0.0f))
    return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: eps %g must be >= 0", fn, (double)eps);
  if (N == 0 || C == 0) return RCC_OK;
  CHECK_PTR(fn, out);
  CHECK_PTR(fn, mean);
  CHECK_PTR(fn, rstd);
  CHECK_PTR(fn, inp);
  CHECK_PTR(fn, w);
  CHECK_PTR(fn, b);
  return be->ops->train->layernorm_forward(be, out, mean, rstd, inp, w, b, N, C, eps);
}

rcc_status_t rcc_train_layernorm_backward(rcc_backend_t be, float *dinp, float *dw, float *db,
                                          const float *dout, const float *inp, const float *w,
                                          const float *mean, const float *rstd, int N, int C) {
  static const char fn[] = "rcc_train_layernorm_backward";
  CHECK_BE(fn);
  CHECK_SHAPE2(fn, N, C);
  if (!dinp && !dw && !db)
    return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: dinp, dw and db are all NULL", fn);
  if (N == 0 || C == 0) return RCC_OK;
  CHECK_PTR(fn, dout);
  CHECK_PTR(fn, inp);
  CHECK_PTR(fn, mean);
  CHECK_PTR(fn, rstd);
  if (dinp) CHECK_PTR(fn, w);
  return be->ops->train->layernorm_backward(be, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}

/* ---- attention ---- */

rcc_status_t rcc_train_softmax_backward(rcc_backend_t be, float *datt, const float *att,
                                        int64_t rows, int L) {
  static const char fn[] = "rcc_train_softmax_backward";
  CHECK_BE(fn);
  CHECK_COUNT(fn, rows);
  CHECK_COUNT(fn, L);
  if (rows == 0 || L == 0) return RCC_OK;
  CHECK_PTR(fn, datt);
  CHECK_PTR(fn, att);
  return be->ops->train->softmax_backward(be, datt, att, rows, L);
}

/* ---- activations ---- */

rcc_status_t rcc_train_activation_forward(rcc_backend_t be, rcc_activation_t act, float *out,
                                          const float *inp, int64_t n) {
  static const char fn[] = "rcc_train_activation_forward";
  CHECK_BE(fn);
  CHECK_ACT(fn, act);
  CHECK_COUNT(fn, n);
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, out);
  CHECK_PTR(fn, inp);
  return be->ops->train->activation_forward(be, act, out, inp, n);
}

rcc_status_t rcc_train_activation_backward(rcc_backend_t be, rcc_activation_t act, float *dinp,
                                           const float *dout, const float *inp, int64_t n) {
  static const char fn[] = "rcc_train_activation_backward";
  CHECK_BE(fn);
  CHECK_ACT(fn, act);
  CHECK_COUNT(fn, n);
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, dinp);
  CHECK_PTR(fn, dout);
  CHECK_PTR(fn, inp);
  return be->ops->train->activation_backward(be, act, dinp, dout, inp, n);
}

/* ---- embeddings ---- */

rcc_status_t rcc_train_im2col(rcc_backend_t be, float *cols, const float *pixels, int B, int C,
                              int S, int p) {
  static const char fn[] = "rcc_train_im2col";
  CHECK_BE(fn);
  CHECK_SHAPE3(fn, B, C, S);
  if (p <= 0 || S % p != 0)
    return rcc_fail(RCC_ERR_ARG,
                    "backend_train.c: %s: patch size %d must be positive and divide "
                    "the image size %d",
                    fn, p, S);
  if (B == 0 || C == 0 || S == 0) return RCC_OK;
  CHECK_PTR(fn, cols);
  CHECK_PTR(fn, pixels);
  return be->ops->train->im2col(be, cols, pixels, B, C, S, p);
}

rcc_status_t rcc_train_patch_rows_forward(rcc_backend_t be, float *x, const float *cls,
                                          const float *pos, int B, int T, int D) {
  static const char fn[] = "rcc_train_patch_rows_forward";
  CHECK_BE(fn);
  CHECK_SHAPE3(fn, B, T, D);
  if (B == 0 || T == 0 || D == 0) return RCC_OK;
  CHECK_PTR(fn, x);
  CHECK_PTR(fn, cls);
  CHECK_PTR(fn, pos);
  return be->ops->train->patch_rows_forward(be, x, cls, pos, B, T, D);
}

rcc_status_t rcc_train_patch_rows_backward(rcc_backend_t be, float *dcls, float *dpos,
                                           const float *dx, int B, int T, int D) {
  static const char fn[] = "rcc_train_patch_rows_backward";
  CHECK_BE(fn);
  CHECK_SHAPE3(fn, B, T, D);
  CHECK_ANY(fn, dcls, dpos);
  if (B == 0 || T == 0 || D == 0) return RCC_OK;
  CHECK_PTR(fn, dx);
  return be->ops->train->patch_rows_backward(be, dcls, dpos, dx, B, T, D);
}

rcc_status_t rcc_train_token_embed_forward(rcc_backend_t be, float *x, const int32_t *ids,
                                           const float *tok, const float *pos, int B, int T,
                                           int D) {
  static const char fn[] = "rcc_train_token_embed_forward";
  CHECK_BE(fn);
  CHECK_SHAPE3(fn, B, T, D);
  if (B == 0 || T == 0 || D == 0) return RCC_OK;
  CHECK_PTR(fn, x);
  CHECK_PTR(fn, ids);
  CHECK_PTR(fn, tok);
  CHECK_PTR(fn, pos);
  return be->ops->train->token_embed_forward(be, x, ids, tok, pos, B, T, D);
}

rcc_status_t rcc_train_token_embed_backward(rcc_backend_t be, float *dtok, float *dpos,
                                            const float *dx, const int32_t *ids, int B, int T,
                                            int D) {
  static const char fn[] = "rcc_train_token_embed_backward";
  CHECK_BE(fn);
  CHECK_SHAPE3(fn, B, T, D);
  CHECK_ANY(fn, dtok, dpos);
  if (B == 0 || T == 0 || D == 0) return RCC_OK;
  CHECK_PTR(fn, dx);
  CHECK_PTR(fn, ids);
  return be->ops->train->token_embed_backward(be, dtok, dpos, dx, ids, B, T, D);
}

/* ---- pooling ---- */

rcc_status_t rcc_train_pool_forward(rcc_backend_t be, float *out, const float *x, const int *rows,
                                    int B, int T, int D) {
  static const char fn[] = "rcc_train_pool_forward";
  CHECK_BE(fn);
  CHECK_SHAPE3(fn, B, T, D);
  if (B == 0 || D == 0) return RCC_OK;
  if (T == 0) return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: empty sequences", fn);
  CHECK_PTR(fn, out);
  CHECK_PTR(fn, x);
  CHECK_PTR(fn, rows);
  return be->ops->train->pool_forward(be, out, x, rows, B, T, D);
}

rcc_status_t rcc_train_pool_backward(rcc_backend_t be, float *dx, const float *dout,
                                     const int *rows, int B, int T, int D) {
  static const char fn[] = "rcc_train_pool_backward";
  CHECK_BE(fn);
  CHECK_SHAPE3(fn, B, T, D);
  if (B == 0 || D == 0) return RCC_OK;
  if (T == 0) return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: empty sequences", fn);
  CHECK_PTR(fn, dx);
  CHECK_PTR(fn, dout);
  CHECK_PTR(fn, rows);
  return be->ops->train->pool_backward(be, dx, dout, rows, B, T, D);
}

/* ---- loss helpers ---- */

rcc_status_t rcc_train_l2norm_forward(rcc_backend_t be, float *out, float *norm, const float *inp,
                                      int N, int C) {
  static const char fn[] = "rcc_train_l2norm_forward";
  CHECK_BE(fn);
  CHECK_SHAPE2(fn, N, C);
  if (N == 0) return RCC_OK;
  CHECK_PTR(fn, norm);
  CHECK_PTR(fn, out);
  CHECK_PTR(fn, inp);
  return be->ops->train->l2norm_forward(be, out, norm, inp, N, C);
}

rcc_status_t rcc_train_l2norm_backward(rcc_backend_t be, float *dinp, const float *dout,
                                       const float *out, const float *norm, int N, int C) {
  static const char fn[] = "rcc_train_l2norm_backward";
  CHECK_BE(fn);
  CHECK_SHAPE2(fn, N, C);
  if (N == 0 || C == 0) return RCC_OK;
  CHECK_PTR(fn, dinp);
  CHECK_PTR(fn, dout);
  CHECK_PTR(fn, out);
  CHECK_PTR(fn, norm);
  return be->ops->train->l2norm_backward(be, dinp, dout, out, norm, N, C);
}

rcc_status_t rcc_train_logit_scale_backward(rcc_backend_t be, float *dscale, const float *dlogits,
                                            const float *logits, float scale, int64_t count) {
  static const char fn[] = "rcc_train_logit_scale_backward";
  CHECK_BE(fn);
  CHECK_COUNT(fn, count);
  if (scale == 0.0f) return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: scale is 0", fn);
  CHECK_PTR(fn, dscale);
  if (count == 0) return RCC_OK;
  CHECK_PTR(fn, dlogits);
  CHECK_PTR(fn, logits);
  return be->ops->train->logit_scale_backward(be, dscale, dlogits, logits, scale, count);
}

/* ---- distillation loss ---- */

rcc_status_t rcc_train_group_mean_forward(rcc_backend_t be, float *out, const float *inp, int G,
                                          int n, int C) {
  static const char fn[] = "rcc_train_group_mean_forward";
  CHECK_BE(fn);
  CHECK_SHAPE3(fn, G, n, C);
  if (G == 0 || C == 0) return RCC_OK;
  if (n == 0) return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: empty groups", fn);
  CHECK_PTR(fn, out);
  CHECK_PTR(fn, inp);
  return be->ops->train->group_mean_forward(be, out, inp, G, n, C);
}

rcc_status_t rcc_train_group_mean_backward(rcc_backend_t be, float *dinp, const float *dout, int G,
                                           int n, int C) {
  static const char fn[] = "rcc_train_group_mean_backward";
  CHECK_BE(fn);
  CHECK_SHAPE3(fn, G, n, C);
  if (G == 0 || n == 0 || C == 0) return RCC_OK;
  CHECK_PTR(fn, dinp);
  CHECK_PTR(fn, dout);
  return be->ops->train->group_mean_backward(be, dinp, dout, G, n, C);
}

rcc_status_t rcc_train_kd_loss(rcc_backend_t be, float *dlogits_s, const float *logits_s,
                               const float *logits_t, int N, int M, double T, double coef,
                               double *loss) {
  static const char fn[] = "rcc_train_kd_loss";
  CHECK_BE(fn);
  CHECK_SHAPE2(fn, N, M);
  CHECK_PTR(fn, loss);
  if (!(T > 0.0))
    return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: temperature %g must be > 0", fn, T);
  if (N == 0) return RCC_OK;
  if (M == 0) return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: no classes", fn);
  CHECK_PTR(fn, dlogits_s);
  CHECK_PTR(fn, logits_s);
  CHECK_PTR(fn, logits_t);
  return be->ops->train->kd_loss(be, dlogits_s, logits_s, logits_t, N, M, T, coef, loss);
}

rcc_status_t rcc_train_embedding_loss(rcc_backend_t be, rcc_train_embed_t kind, float *da,
                                      const float *a, const float *b, int N, int C, double weight,
                                      double count, double *loss) {
  static const char fn[] = "rcc_train_embedding_loss";
  CHECK_BE(fn);
  CHECK_SHAPE2(fn, N, C);
  CHECK_PTR(fn, loss);
  if (kind != RCC_TRAIN_EMBED_COSINE && kind != RCC_TRAIN_EMBED_MSE)
    return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: unknown kind %d", fn, (int)kind);
  if (!(count > 0.0))
    return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: count %g must be > 0", fn, count);
  if (N == 0) return RCC_OK;
  if (C == 0) return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: empty rows", fn);
  CHECK_PTR(fn, da);
  CHECK_PTR(fn, a);
  CHECK_PTR(fn, b);
  return be->ops->train->embedding_loss(be, kind, da, a, b, N, C, weight, count, loss);
}

/* ---- buffers and the optimizer step ---- */

rcc_status_t rcc_train_fill(rcc_backend_t be, float *x, float value, int64_t n) {
  static const char fn[] = "rcc_train_fill";
  CHECK_BE(fn);
  CHECK_COUNT(fn, n);
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, x);
  return be->ops->train->fill(be, x, value, n);
}

rcc_status_t rcc_train_copy(rcc_backend_t be, float *dst, const float *src, int64_t n) {
  static const char fn[] = "rcc_train_copy";
  CHECK_BE(fn);
  CHECK_COUNT(fn, n);
  if (n == 0 || dst == src) return RCC_OK;
  CHECK_PTR(fn, dst);
  CHECK_PTR(fn, src);
  return be->ops->train->copy(be, dst, src, n);
}

rcc_status_t rcc_train_gather(rcc_backend_t be, float *packed, const float *x, const int64_t *idx,
                              int64_t n) {
  static const char fn[] = "rcc_train_gather";
  CHECK_BE(fn);
  CHECK_COUNT(fn, n);
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, packed);
  CHECK_PTR(fn, x);
  CHECK_PTR(fn, idx);
  return be->ops->train->gather(be, packed, x, idx, n);
}

rcc_status_t rcc_train_scatter(rcc_backend_t be, float *x, const float *packed, const int64_t *idx,
                               int64_t n) {
  static const char fn[] = "rcc_train_scatter";
  CHECK_BE(fn);
  CHECK_COUNT(fn, n);
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, x);
  CHECK_PTR(fn, packed);
  CHECK_PTR(fn, idx);
  return be->ops->train->scatter(be, x, packed, idx, n);
}

rcc_status_t rcc_train_adamw_step(rcc_backend_t be, float *params, float *m, float *v,
                                  const float *grads, const uint8_t *decay, int64_t n,
                                  const rcc_train_adamw_t *h) {
  static const char fn[] = "rcc_train_adamw_step";
  CHECK_BE(fn);
  CHECK_COUNT(fn, n);
  CHECK_PTR(fn, h);
  if (h->step < 1)
    return rcc_fail(RCC_ERR_ARG, "backend_train.c: %s: step %lld must be >= 1", fn,
                    (long long)h->step);
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, params);
  CHECK_PTR(fn, m);
  CHECK_PTR(fn, v);
  CHECK_PTR(fn, grads);
  return be->ops->train->adamw_step(be, params, m, v, grads, decay, n, h);
}

rcc_status_t rcc_train_distill_grads(rcc_backend_t be, float *g, const float *p, const float *start,
                                     const uint8_t *frozen, const uint8_t *pull, int64_t n,
                                     float inv, float pull_coef, double reg_weight, double *reg) {
  static const char fn[] = "rcc_train_distill_grads";
  CHECK_BE(fn);
  CHECK_COUNT(fn, n);
  CHECK_PTR(fn, reg);
  *reg = 0.0;
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, g);
  CHECK_PTR(fn, p);
  CHECK_PTR(fn, start);
  CHECK_PTR(fn, frozen);
  CHECK_PTR(fn, pull);
  return be->ops->train->distill_grads(be, g, p, start, frozen, pull, n, inv, pull_coef, reg_weight,
                                       reg);
}

rcc_status_t rcc_train_clip_grad_norm(rcc_backend_t be, float *g, int64_t n, double max_norm,
                                      double *norm) {
  static const char fn[] = "rcc_train_clip_grad_norm";
  CHECK_BE(fn);
  CHECK_COUNT(fn, n);
  CHECK_PTR(fn, norm);
  *norm = 0.0;
  if (n == 0) return RCC_OK;
  CHECK_PTR(fn, g);
  return be->ops->train->clip_grad_norm(be, g, n, max_norm, norm);
}
