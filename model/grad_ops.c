/* Forward and backward of the CLIP ops for training (see grad_ops.h): every matmul through
 * rcc_gemm, everything else through the backend's training kernels (backend_train.h), so
 * that the same code trains on any backend. */
#include "model/grad_ops.h"

#include <math.h>

#include "backend/backend_train.h"

/* ---------------------------------------------------------------- linear */

int64_t rcc_grad_linear_scratch(const rcc_grad_linear_t *L, int N) {
  return (int64_t)N * (L->m + L->rank);
}

rcc_status_t rcc_grad_linear_forward(rcc_backend_t be, float *y, float *P, float *z, const float *x,
                                     int N, const rcc_grad_linear_t *L) {
  const int m = L->m, n = L->n, r = L->rank;
  if (!L->W && r == 0)
    return rcc_fail(RCC_ERR_ARG, "grad_ops.c: linear forward: layer has neither W nor U V");
  if (r > 0 && !z) return rcc_fail(RCC_ERR_ARG, "grad_ops.c: linear forward: z is required");
  float beta = 0.0f;
  if (L->W) {
    RCC_TRY(rcc_gemm(be, false, true, N, m, n, 1.0f, x, n, L->W, n, 0.0f, y, m));
    beta = 1.0f;
  }
  if (r > 0) {
    RCC_TRY(rcc_gemm(be, false, true, N, r, n, 1.0f, x, n, L->V, n, 0.0f, z, r));
    RCC_TRY(rcc_gemm(be, false, true, N, m, r, 1.0f, z, r, L->U, r, beta, y, m));
  }
  return rcc_train_linear_epilogue(be, y, P, L->alpha, L->bias, N, m);
}

rcc_status_t rcc_grad_linear_backward(rcc_backend_t be, float *dx, const rcc_grad_linear_grads_t *g,
                                      const float *dy, const float *x, const float *P,
                                      const float *z, int N, const rcc_grad_linear_t *L,
                                      float *scratch) {
  const int m = L->m, n = L->n, r = L->rank;
  if (g->dalpha && !P)
    return rcc_fail(RCC_ERR_ARG, "grad_ops.c: linear backward: dalpha needs the forward's P");
  if (g->dbias) RCC_TRY(rcc_train_column_sums(be, g->dbias, dy, NULL, N, m));
  if (g->dalpha) RCC_TRY(rcc_train_column_sums(be, g->dalpha, dy, P, N, m));
  /* gy (N,m) = dy diag(alpha): the gradient of x W^T + (x V^T) U^T */
  const float *gy = dy;
  if (L->alpha) {
    RCC_TRY(rcc_train_scale_columns(be, scratch, dy, L->alpha, N, m));
    gy = scratch;
  }
  if (L->W && dx) RCC_TRY(rcc_gemm(be, false, false, N, n, m, 1.0f, gy, m, L->W, n, 1.0f, dx, n));
  if (g->dW) {
    RCC_TRY(rcc_gemm(be, true, false, m, n, N, 1.0f, gy, m, x, n, 1.0f, g->dW, n));
    if (L->mask) RCC_TRY(rcc_backend_apply_mask(be, g->dW, L->mask, (int64_t)m * n));
  }
  if (r > 0 && (dx || g->dV)) {
    /* t (N,r) = gy U: the gradient of z = x V^T */
    float *t = scratch + (size_t)N * m;
    RCC_TRY(rcc_gemm(be, false, false, N, r, m, 1.0f, gy, m, L->U, r, 0.0f, t, r));
    if (dx) RCC_TRY(rcc_gemm(be, false, false, N, n, r, 1.0f, t, r, L->V, n, 1.0f, dx, n));
    if (g->dV) RCC_TRY(rcc_gemm(be, true, false, r, n, N, 1.0f, t, r, x, n, 1.0f, g->dV, n));
  }
  if (r > 0 && g->dU)
    RCC_TRY(rcc_gemm(be, true, false, m, r, N, 1.0f, gy, m, z, r, 1.0f, g->dU, r));
  return RCC_OK;
}

/* ---------------------------------------------------------------- LayerNorm */

rcc_status_t rcc_grad_layernorm_forward(rcc_backend_t be, float *out, float *mean, float *rstd,
                                        const float *inp, const float *w, const float *b, int N,
                                        int C, float eps) {
  return rcc_train_layernorm_forward(be, out, mean, rstd, inp, w, b, N, C, eps);
}

rcc_status_t rcc_grad_layernorm_backward(rcc_backend_t be, float *dinp, float *dw, float *db,
                                         const float *dout, const float *inp, const float *w,
                                         const float *mean, const float *rstd, int N, int C) {
  if (!dinp && !dw && !db) return RCC_OK;
  return rcc_train_layernorm_backward(be, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}

/* ---------------------------------------------------------------- attention */

rcc_status_t rcc_grad_attention_forward(rcc_backend_t be, float *ctx, float *att, const float *q,
                                        const float *k, const float *v, int B, int T, int D, int H,
                                        bool causal, const uint8_t *key_valid) {
  const int hd = D / H;
  const float scale = 1.0f / sqrtf((float)hd);
  const int64_t TT = (int64_t)T * T;
  for (int b = 0; b < B; b++) {
    const size_t off = (size_t)b * T * D;
    /* att_h (T,T) = scale q_h (T,hd) k_h^T, head h at column h*hd of q and k */
    RCC_TRY(rcc_gemm_strided_batched(be, false, true, T, T, hd, scale, q + off, D, hd, k + off, D,
                                     hd, 0.0f, att + b * H * TT, T, TT, H));
  }
  /* key_valid row r / (H*T) is the sequence of score row r */
  RCC_TRY(rcc_softmax(be, att, B * H * T, T, 1.0f, causal ? T : 0, key_valid, H * T));
  for (int b = 0; b < B; b++) {
    const size_t off = (size_t)b * T * D;
    RCC_TRY(rcc_gemm_strided_batched(be, false, false, T, hd, T, 1.0f, att + b * H * TT, T, TT,
                                     v + off, D, hd, 0.0f, ctx + off, D, hd, H));
  }
  return RCC_OK;
}

/* Per sequence b and head h, with A = att_h and G = dctx_h:
 *   dv += A^T G;  dA = G v^T;  dS = A * (dA - rowsum(dA * A));  dq += scale dS k;
 *   dk += scale dS^T q. */
rcc_status_t rcc_grad_attention_backward(rcc_backend_t be, float *dq, float *dk, float *dv,
                                         float *datt, const float *dctx, const float *att,
                                         const float *q, const float *k, const float *v, int B,
                                         int T, int D, int H) {
  const int hd = D / H;
  const float scale = 1.0f / sqrtf((float)hd);
  const int64_t TT = (int64_t)T * T;
  for (int b = 0; b < B; b++) {
    const size_t off = (size_t)b * T * D;
    const float *A = att + b * H * TT;
    RCC_TRY(rcc_gemm_strided_batched(be, false, true, T, T, hd, 1.0f, dctx + off, D, hd, v + off, D,
                                     hd, 0.0f, datt + b * H * TT, T, TT, H));
    RCC_TRY(rcc_gemm_strided_batched(be, true, false, T, hd, T, 1.0f, A, T, TT, dctx + off, D, hd,
                                     1.0f, dv + off, D, hd, H));
  }
  RCC_TRY(rcc_train_softmax_backward(be, datt, att, (int64_t)B * H * T, T));
  for (int b = 0; b < B; b++) {
    const size_t off = (size_t)b * T * D;
    const float *dS = datt + b * H * TT;
    RCC_TRY(rcc_gemm_strided_batched(be, false, false, T, hd, T, scale, dS, T, TT, k + off, D, hd,
                                     1.0f, dq + off, D, hd, H));
    RCC_TRY(rcc_gemm_strided_batched(be, true, false, T, hd, T, scale, dS, T, TT, q + off, D, hd,
                                     1.0f, dk + off, D, hd, H));
  }
  return RCC_OK;
}

/* ---------------------------------------------------------------- activations */

rcc_status_t rcc_grad_activation_forward(rcc_backend_t be, rcc_activation_t act, float *out,
                                         const float *inp, int64_t n) {
  return rcc_train_activation_forward(be, act, out, inp, n);
}

rcc_status_t rcc_grad_activation_backward(rcc_backend_t be, rcc_activation_t act, float *dinp,
                                          const float *dout, const float *inp, int64_t n) {
  return rcc_train_activation_backward(be, act, dinp, dout, inp, n);
}

/* ---------------------------------------------------------------- residual */

rcc_status_t rcc_grad_residual_forward(rcc_backend_t be, float *out, const float *a, const float *b,
                                       int64_t n) {
  return rcc_add(be, out, a, b, n);
}

rcc_status_t rcc_grad_residual_backward(rcc_backend_t be, float *da, float *db, const float *dout,
                                        int64_t n) {
  if (da) RCC_TRY(rcc_add(be, da, da, dout, n));
  if (db) RCC_TRY(rcc_add(be, db, db, dout, n));
  return RCC_OK;
}

/* ---------------------------------------------------------------- embeddings */

rcc_status_t rcc_grad_patch_embed_forward(rcc_backend_t be, float *x, float *cols,
                                          const float *pixels, const float *Wp, const float *cls,
                                          const float *pos, int B, int C, int S, int p, int D) {
  if (p <= 0 || S % p != 0)
    return rcc_fail(RCC_ERR_ARG, "grad_ops.c: patch embedding: patch %d does not divide image %d",
                    p, S);
  const int g = S / p, Np = g * g, T = Np + 1, K = C * p * p;
  RCC_TRY(rcc_train_im2col(be, cols, pixels, B, C, S, p));
  /* patch rows of image b land at rows b*T+1 .. b*T+Np of x */
  RCC_TRY(rcc_gemm_strided_batched(be, false, true, Np, D, K, 1.0f, cols, K, (int64_t)Np * K, Wp, K,
                                   0, 0.0f, x + D, D, (int64_t)T * D, B));
  return rcc_train_patch_rows_forward(be, x, cls, pos, B, T, D);
}

rcc_status_t rcc_grad_patch_embed_backward(rcc_backend_t be, float *dWp, float *dcls, float *dpos,
                                           const float *dx, const float *cols, int B, int T, int D,
                                           int K) {
  const int Np = T - 1;
  if (dcls || dpos) RCC_TRY(rcc_train_patch_rows_backward(be, dcls, dpos, dx, B, T, D));
  /* dWp (D,K) += dpatch_b^T (D, Np) cols_b (Np, K) */
  for (int b = 0; dWp && b < B; b++)
    RCC_TRY(rcc_gemm(be, true, false, D, K, Np, 1.0f, dx + (size_t)b * T * D + D, D,
                     cols + (size_t)b * Np * K, K, 1.0f, dWp, K));
  return RCC_OK;
}

rcc_status_t rcc_grad_token_embed_forward(rcc_backend_t be, float *x, const int32_t *ids,
                                          const float *tok, const float *pos, int B, int T, int D) {
  return rcc_train_token_embed_forward(be, x, ids, tok, pos, B, T, D);
}

rcc_status_t rcc_grad_token_embed_backward(rcc_backend_t be, float *dtok, float *dpos,
                                           const float *dx, const int32_t *ids, int B, int T,
                                           int D) {
  if (!dtok && !dpos) return RCC_OK;
  return rcc_train_token_embed_backward(be, dtok, dpos, dx, ids, B, T, D);
}

/* ---------------------------------------------------------------- pooling */

rcc_status_t rcc_grad_pool_forward(rcc_backend_t be, float *out, const float *x, const int *rows,
                                   int B, int T, int D) {
  return rcc_train_pool_forward(be, out, x, rows, B, T, D);
}

rcc_status_t rcc_grad_pool_backward(rcc_backend_t be, float *dx, const float *dout, const int *rows,
                                    int B, int T, int D) {
  return rcc_train_pool_backward(be, dx, dout, rows, B, T, D);
}

/* ---------------------------------------------------------------- loss helpers */

rcc_status_t rcc_grad_l2norm_forward(rcc_backend_t be, float *out, float *norm, const float *inp,
                                     int N, int C) {
  return rcc_train_l2norm_forward(be, out, norm, inp, N, C);
}

rcc_status_t rcc_grad_l2norm_backward(rcc_backend_t be, float *dinp, const float *dout,
                                      const float *out, const float *norm, int N, int C) {
  return rcc_train_l2norm_backward(be, dinp, dout, out, norm, N, C);
}

rcc_status_t rcc_grad_logits_forward(rcc_backend_t be, float *logits, const float *a,
                                     const float *b, float scale, int N, int M, int P) {
  return rcc_gemm(be, false, true, N, M, P, scale, a, P, b, P, 0.0f, logits, M);
}

rcc_status_t rcc_grad_logits_backward(rcc_backend_t be, float *da, float *db, float *dscale,
                                      const float *dlogits, const float *logits, const float *a,
                                      const float *b, float scale, int N, int M, int P) {
  if (da) RCC_TRY(rcc_gemm(be, false, false, N, P, M, scale, dlogits, M, b, P, 1.0f, da, P));
  if (db) RCC_TRY(rcc_gemm(be, true, false, M, P, N, scale, dlogits, M, a, P, 1.0f, db, P));
  if (dscale)
    RCC_TRY(rcc_train_logit_scale_backward(be, dscale, dlogits, logits, scale, (int64_t)N * M));
  return RCC_OK;
}
