/* Forward and backward of every op of the CLIP forward, for training (distillation):
 * float32 in the backend's memory, one function per op in the style of llm.c's CPU
 * reference. A forward writes what its backward needs (LayerNorm statistics, softmax
 * probabilities, the pre-scale output of a linear layer); a backward ACCUMULATES (+=) into
 * every gradient it is given (inputs and parameters alike) and skips the ones passed as
 * NULL. Shapes in comments: N rows (tokens, B*T), C channels, B batch, T sequence,
 * H heads, D model width, m/n out/in features of a linear layer, r its rank. Every matmul
 * goes through rcc_gemm / rcc_gemm_strided_batched, everything else through the backend's
 * training kernels (backend/backend_train.h); index arrays (mask, ids, rows) are in the
 * backend's memory too. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "common/status.h"

/* ---------------------------------------------------------------- linear layer
 * y (N,m) = diag(alpha) (x W^T + (x V^T) U^T) + b, i.e. W_eff = diag(alpha) (W + U V):
 * a dense layer (W only), a sparse one (W = S stored densely, zeros where mask is 0),
 * a low-rank one (U V only) or S + U V; alpha NULL means 1, bias NULL means 0. */
typedef struct {
  int m, n, rank;
  const float *W;      /* (m,n) dense weight or sparse part S, or NULL */
  const uint8_t *mask; /* (m,n) 1 = kept entry of S, or NULL (S dense) */
  const float *U, *V;  /* (m,r), (r,n) when rank > 0 */
  const float *alpha;  /* (m) or NULL */
  const float *bias;   /* (m) or NULL */
} rcc_grad_linear_t;

/* Gradient destinations of one linear layer; NULL = that part does not train. dW is
 * masked: entries where mask is 0 are set to exactly 0 (the mask is frozen). */
typedef struct {
  float *dW, *dU, *dV, *dalpha, *dbias;
} rcc_grad_linear_grads_t;

/* y (N,m) as above. P (N,m) receives x W^T + (x V^T) U^T (before alpha and bias): the
 * backward needs it for dalpha; NULL when alpha does not train. z (N,r) receives x V^T
 * (required when rank > 0). y must not alias x. */
rcc_status_t rcc_grad_linear_forward(rcc_backend_t be, float *y, float *P, float *z, const float *x,
                                     int N, const rcc_grad_linear_t *L);
/* Given dy (N,m) and the forward's x (N,n), P, z: dx (N,n) += dy W_eff (NULL: skipped),
 * and the parameter gradients of `g`. scratch holds N*(m+r) floats. */
rcc_status_t rcc_grad_linear_backward(rcc_backend_t be, float *dx, const rcc_grad_linear_grads_t *g,
                                      const float *dy, const float *x, const float *P,
                                      const float *z, int N, const rcc_grad_linear_t *L,
                                      float *scratch);
/* Floats of scratch rcc_grad_linear_backward needs. */
int64_t rcc_grad_linear_scratch(const rcc_grad_linear_t *L, int N);

/* ---------------------------------------------------------------- LayerNorm
 * out (N,C) = (inp - mean) * rstd * w + b per row, biased variance, statistics in double
 * as the inference kernel (backend/cpu/cpu_ops.c); mean, rstd (N) kept for the backward. */
rcc_status_t rcc_grad_layernorm_forward(rcc_backend_t be, float *out, float *mean, float *rstd,
                                        const float *inp, const float *w, const float *b, int N,
                                        int C, float eps);
/* dinp (N,C) += d/dinp, dw, db (C) += (each may be NULL). */
rcc_status_t rcc_grad_layernorm_backward(rcc_backend_t be, float *dinp, float *dw, float *db,
                                         const float *dout, const float *inp, const float *w,
                                         const float *mean, const float *rstd, int N, int C);

/* ---------------------------------------------------------------- attention
 * q, k, v, ctx (B*T, D) hold H heads of D/H columns each (HF's layout before the head
 * split). att (B,H,T,T) = softmax(q_h k_h^T / sqrt(D/H)) with the causal mask (row t sees
 * keys 0..t) when `causal`, and key_valid (B,T) (0 = padding key, may be NULL); masked
 * probabilities are exactly 0. ctx_h = att_h v_h. */
rcc_status_t rcc_grad_attention_forward(rcc_backend_t be, float *ctx, float *att, const float *q,
                                        const float *k, const float *v, int B, int T, int D, int H,
                                        bool causal, const uint8_t *key_valid);
/* dq, dk, dv (B*T, D) += from dctx (B*T, D) and the forward's att, q, k, v. The masks need
 * not be passed again: masked probabilities are 0, so their gradient is 0. datt is scratch
 * of B*H*T*T floats. */
rcc_status_t rcc_grad_attention_backward(rcc_backend_t be, float *dq, float *dk, float *dv,
                                         float *datt, const float *dctx, const float *att,
                                         const float *q, const float *k, const float *v, int B,
                                         int T, int D, int H);

/* ---------------------------------------------------------------- activations
 * out (n) = act(inp), the same float32 formulas as the inference kernels (quick_gelu,
 * gelu (erf), gelu_tanh, relu); out may equal inp. */
rcc_status_t rcc_grad_activation_forward(rcc_backend_t be, rcc_activation_t act, float *out,
                                         const float *inp, int64_t n);
/* dinp (n) += act'(inp) * dout. */
rcc_status_t rcc_grad_activation_backward(rcc_backend_t be, rcc_activation_t act, float *dinp,
                                          const float *dout, const float *inp, int64_t n);

/* ---------------------------------------------------------------- residual
 * out (n) = a + b (out may alias a or b); backward: da += dout, db += dout (each may be NULL;
 * when the residual stream is updated in place its gradient passes through unchanged, and
 * only the branch's da needs this call). */
rcc_status_t rcc_grad_residual_forward(rcc_backend_t be, float *out, const float *a, const float *b,
                                       int64_t n);
rcc_status_t rcc_grad_residual_backward(rcc_backend_t be, float *da, float *db, const float *dout,
                                        int64_t n);

/* ---------------------------------------------------------------- embeddings
 * Vision: pixels (B,C,S,S) -> x (B,T,D), T = 1 + (S/p)^2: row 0 of each image is the class
 * embedding cls (D), row 1+i the patch i (row-major grid) through the conv weight
 * Wp (D, C*p*p) (no bias), every row plus its position pos (T,D). cols (B*(T-1), C*p*p)
 * receives the im2col matrix (kept for the backward of Wp). */
rcc_status_t rcc_grad_patch_embed_forward(rcc_backend_t be, float *x, float *cols,
                                          const float *pixels, const float *Wp, const float *cls,
                                          const float *pos, int B, int C, int S, int p, int D);
/* dWp (D, C*p*p), dcls (D), dpos (T,D) += (each may be NULL). The gradient of the pixels
 * is not computed: nothing below the patch embedding trains. CLIP distillation keeps all
 * embeddings frozen, so rcc_clip_train does not call this; it is here so that every op of
 * the forward has a checked backward. */
rcc_status_t rcc_grad_patch_embed_backward(rcc_backend_t be, float *dWp, float *dcls, float *dpos,
                                           const float *dx, const float *cols, int B, int T, int D,
                                           int K);
/* Text: x (B*T, D) = tok[ids] + pos[t]; ids (B,T) must be in [0, vocab). */
rcc_status_t rcc_grad_token_embed_forward(rcc_backend_t be, float *x, const int32_t *ids,
                                          const float *tok, const float *pos, int B, int T, int D);
/* dtok (vocab, D), dpos (T, D) += (each may be NULL); frozen in distillation, like above. */
rcc_status_t rcc_grad_token_embed_backward(rcc_backend_t be, float *dtok, float *dpos,
                                           const float *dx, const int32_t *ids, int B, int T,
                                           int D);

/* ---------------------------------------------------------------- pooling
 * out (B,D) = row rows[b] of sequence b of x (B*T, D): the class token (row 0) of the
 * vision tower, the EOS token of the text tower. Backward: dx (B*T,D) += scatter of dout. */
rcc_status_t rcc_grad_pool_forward(rcc_backend_t be, float *out, const float *x, const int *rows,
                                   int B, int T, int D);
rcc_status_t rcc_grad_pool_backward(rcc_backend_t be, float *dx, const float *dout, const int *rows,
                                    int B, int T, int D);

/* ---------------------------------------------------------------- loss helpers
 * out (N,C) = inp / ||inp|| per row (rows of norm 0 stay 0), norm (N) kept. Backward:
 * dinp += (dout - out (out . dout)) / norm. */
rcc_status_t rcc_grad_l2norm_forward(rcc_backend_t be, float *out, float *norm, const float *inp,
                                     int N, int C);
rcc_status_t rcc_grad_l2norm_backward(rcc_backend_t be, float *dinp, const float *dout,
                                      const float *out, const float *norm, int N, int C);
/* logits (N,M) = scale * a (N,P) b (M,P)^T, CLIP's logits_per_image for normalized a, b. */
rcc_status_t rcc_grad_logits_forward(rcc_backend_t be, float *logits, const float *a,
                                     const float *b, float scale, int N, int M, int P);
/* da (N,P), db (M,P) += (NULL: skipped); dscale (1) += sum(dlogits * logits) / scale when
 * non-NULL (logits: the forward's output). */
rcc_status_t rcc_grad_logits_backward(rcc_backend_t be, float *da, float *db, float *dscale,
                                      const float *dlogits, const float *logits, const float *a,
                                      const float *b, float scale, int N, int M, int P);
