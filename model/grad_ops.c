/* Forward and backward kernels of the CLIP ops for training (see grad_ops.h): plain loops
 * over host memory, OpenMP over rows (or column blocks for the reductions over rows), and
 * the CPU backend's GEMMs for every matmul. */
#include "model/grad_ops.h"

#include <math.h>
#include <string.h>

/* Below these many values a parallel region costs more than it saves (as cpu_ops.c). */
#define PAR_MIN ((int64_t)1 << 15)
/* Column block of the reductions over rows (dbias, dalpha, LayerNorm dw/db): each thread
 * owns whole columns, so no atomics and a fixed summation order (reproducible). */
#define COL_BLOCK 64

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
  if (P) memcpy(P, y, (size_t)N * m * sizeof *P);
  if (!L->alpha && !L->bias) return RCC_OK;
  const float *alpha = L->alpha, *bias = L->bias;
#pragma omp parallel for schedule(static) if ((int64_t)N * m >= PAR_MIN)
  for (int i = 0; i < N; i++) {
    float *row = y + (size_t)i * m;
    for (int o = 0; o < m; o++)
      row[o] = (alpha ? alpha[o] * row[o] : row[o]) + (bias ? bias[o] : 0.0f);
  }
  return RCC_OK;
}

/* d[o] += sum_i a[i,o] * (b ? b[i,o] : 1) over the rows of a (N,m). */
static void column_sums(float *d, const float *a, const float *b, int N, int m) {
  const int blocks = (m + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((int64_t)N * m >= PAR_MIN)
  for (int blk = 0; blk < blocks; blk++) {
    const int lo = blk * COL_BLOCK, hi = lo + COL_BLOCK < m ? lo + COL_BLOCK : m;
    float acc[COL_BLOCK] = {0};
    for (int i = 0; i < N; i++) {
      const float *ra = a + (size_t)i * m, *rb = b ? b + (size_t)i * m : NULL;
      for (int o = lo; o < hi; o++)
        acc[o - lo] += ra[o] * (rb ? rb[o] : 1.0f);
    }
    for (int o = lo; o < hi; o++)
      d[o] += acc[o - lo];
  }
}

rcc_status_t rcc_grad_linear_backward(rcc_backend_t be, float *dx, const rcc_grad_linear_grads_t *g,
                                      const float *dy, const float *x, const float *P,
                                      const float *z, int N, const rcc_grad_linear_t *L,
                                      float *scratch) {
  const int m = L->m, n = L->n, r = L->rank;
  if (g->dalpha && !P)
    return rcc_fail(RCC_ERR_ARG, "grad_ops.c: linear backward: dalpha needs the forward's P");
  if (g->dbias) column_sums(g->dbias, dy, NULL, N, m);
  if (g->dalpha) column_sums(g->dalpha, dy, P, N, m);
  /* gy (N,m) = dy diag(alpha): the gradient of x W^T + (x V^T) U^T */
  const float *gy = dy;
  if (L->alpha) {
    float *s = scratch;
    const float *alpha = L->alpha;
#pragma omp parallel for schedule(static) if ((int64_t)N * m >= PAR_MIN)
    for (int i = 0; i < N; i++)
      for (int o = 0; o < m; o++)
        s[(size_t)i * m + o] = dy[(size_t)i * m + o] * alpha[o];
    gy = s;
  }
  if (L->W && dx) RCC_TRY(rcc_gemm(be, false, false, N, n, m, 1.0f, gy, m, L->W, n, 1.0f, dx, n));
  if (g->dW) {
    RCC_TRY(rcc_gemm(be, true, false, m, n, N, 1.0f, gy, m, x, n, 1.0f, g->dW, n));
    if (L->mask) {
      const uint8_t *mask = L->mask;
      float *dW = g->dW;
#pragma omp parallel for schedule(static) if ((int64_t)m * n >= PAR_MIN)
      for (int64_t i = 0; i < (int64_t)m * n; i++)
        if (!mask[i]) dW[i] = 0.0f;
    }
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

void rcc_grad_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                const float *w, const float *b, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= PAR_MIN)
  for (int i = 0; i < N; i++) {
    const float *x = inp + (size_t)i * C;
    float *y = out + (size_t)i * C;
    double sum = 0.0;
    for (int j = 0; j < C; j++)
      sum += x[j];
    const double mu = sum / C;
    double sq = 0.0;
    for (int j = 0; j < C; j++)
      sq += (x[j] - mu) * (x[j] - mu);
    const float rs = (float)(1.0 / sqrt(sq / C + (double)eps)), muf = (float)mu;
    for (int j = 0; j < C; j++)
      y[j] = (x[j] - muf) * rs * w[j] + b[j];
    mean[i] = muf;
    rstd[i] = rs;
  }
}

/* With xhat = (x - mean) rstd and dn = dout * w:
 *   dx = rstd (dn - mean_j(dn) - xhat mean_j(dn xhat)),  dw = sum_i dout xhat,  db = sum_i dout. */
void rcc_grad_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C) {
  if (dinp) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= PAR_MIN)
    for (int i = 0; i < N; i++) {
      const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
      float *dx = dinp + (size_t)i * C;
      const float mu = mean[i], rs = rstd[i];
      double s1 = 0.0, s2 = 0.0;
      for (int j = 0; j < C; j++) {
        const float dn = dy[j] * w[j];
        s1 += dn;
        s2 += dn * (x[j] - mu) * rs;
      }
      const float m1 = (float)(s1 / C), m2 = (float)(s2 / C);
      for (int j = 0; j < C; j++)
        dx[j] += rs * (dy[j] * w[j] - m1 - (x[j] - mu) * rs * m2);
    }
  }
  if (!dw && !db) return;
  const int blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= PAR_MIN)
  for (int blk = 0; blk < blocks; blk++) {
    const int lo = blk * COL_BLOCK, hi = lo + COL_BLOCK < C ? lo + COL_BLOCK : C;
    float aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
    for (int i = 0; i < N; i++) {
      const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
      const float mu = mean[i], rs = rstd[i];
      for (int j = lo; j < hi; j++) {
        aw[j - lo] += dy[j] * (x[j] - mu) * rs;
        ab[j - lo] += dy[j];
      }
    }
    for (int j = lo; j < hi; j++) {
      if (dw) dw[j] += aw[j - lo];
      if (db) db[j] += ab[j - lo];
    }
  }
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
  const int64_t rows = (int64_t)B * H * T;
#pragma omp parallel for schedule(static) if (rows * T >= PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *a = att + r * T;
    float *d = datt + r * T;
    double dot = 0.0;
    for (int j = 0; j < T; j++)
      dot += (double)d[j] * a[j];
    const float dotf = (float)dot;
    for (int j = 0; j < T; j++)
      d[j] = a[j] * (d[j] - dotf);
  }
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

void rcc_grad_activation_forward(rcc_activation_t act, float *out, const float *inp, int64_t n) {
  const float inv_sqrt2 = 0.70710678118654752f, c = 0.79788456080286536f; /* sqrt(2/pi) */
  switch (act) {
  case RCC_ACT_GELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++)
      out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * inv_sqrt2));
    break;
  case RCC_ACT_GELU_TANH:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
      const float x = inp[i];
      out[i] = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
    }
    break;
  case RCC_ACT_QUICK_GELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
      const float z = 1.702f * inp[i];
      out[i] = inp[i] * (1.0f / (1.0f + expf(-z)));
    }
    break;
  case RCC_ACT_RELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++)
      out[i] = inp[i] < 0.0f ? 0.0f : inp[i];
    break;
  }
}

/* Derivatives: gelu 0.5 (1 + erf(x/sqrt2)) + x phi(x); gelu_tanh with u = c (x + k x^3):
 * 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) c (1 + 3k x^2); quick_gelu with s = sigmoid(1.702 x):
 * s + 1.702 x s (1 - s); relu: 1 for x > 0. */
void rcc_grad_activation_backward(rcc_activation_t act, float *dinp, const float *dout,
                                  const float *inp, int64_t n) {
  const float inv_sqrt2 = 0.70710678118654752f, inv_sqrt_2pi = 0.39894228040143268f;
  const float c = 0.79788456080286536f, k = 0.044715f;
  switch (act) {
  case RCC_ACT_GELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
      const float x = inp[i];
      const float d = 0.5f * (1.0f + erff(x * inv_sqrt2)) + x * inv_sqrt_2pi * expf(-0.5f * x * x);
      dinp[i] += d * dout[i];
    }
    break;
  case RCC_ACT_GELU_TANH:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
      const float x = inp[i], th = tanhf(c * (x + k * x * x * x));
      const float d =
          0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * c * (1.0f + 3.0f * k * x * x);
      dinp[i] += d * dout[i];
    }
    break;
  case RCC_ACT_QUICK_GELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN / 8)
    for (int64_t i = 0; i < n; i++) {
      const float x = inp[i], s = 1.0f / (1.0f + expf(-1.702f * x));
      dinp[i] += (s + 1.702f * x * s * (1.0f - s)) * dout[i];
    }
    break;
  case RCC_ACT_RELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++)
      dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
    break;
  }
}

/* ---------------------------------------------------------------- residual */

void rcc_grad_residual_forward(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++)
    out[i] = a[i] + b[i];
}

void rcc_grad_residual_backward(float *da, float *db, const float *dout, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    if (da) da[i] += dout[i];
    if (db) db[i] += dout[i];
  }
}

/* ---------------------------------------------------------------- embeddings */

rcc_status_t rcc_grad_patch_embed_forward(rcc_backend_t be, float *x, float *cols,
                                          const float *pixels, const float *Wp, const float *cls,
                                          const float *pos, int B, int C, int S, int p, int D) {
  const int g = S / p, Np = g * g, T = Np + 1, K = C * p * p;
  /* im2col: row (b, gy, gx) of cols holds the patch in the conv weight's (c, ky, kx) order */
#pragma omp parallel for schedule(static) if ((int64_t)B * Np * K >= PAR_MIN)
  for (int bp = 0; bp < B * Np; bp++) {
    const int b = bp / Np, gy = bp % Np / g, gx = bp % g;
    float *dst = cols + (size_t)bp * K;
    for (int ch = 0; ch < C; ch++)
      for (int ky = 0; ky < p; ky++)
        memcpy(dst + ((size_t)ch * p + ky) * p,
               pixels + (((size_t)b * C + ch) * S + (size_t)gy * p + ky) * S + (size_t)gx * p,
               (size_t)p * sizeof(float));
  }
  /* patch rows of image b land at rows b*T+1 .. b*T+Np of x */
  RCC_TRY(rcc_gemm_strided_batched(be, false, true, Np, D, K, 1.0f, cols, K, (int64_t)Np * K, Wp, K,
                                   0, 0.0f, x + D, D, (int64_t)T * D, B));
#pragma omp parallel for schedule(static) if ((int64_t)B * T * D >= PAR_MIN)
  for (int bt = 0; bt < B * T; bt++) {
    const int t = bt % T;
    float *row = x + (size_t)bt * D;
    const float *pr = pos + (size_t)t * D;
    for (int d = 0; d < D; d++)
      row[d] = (t == 0 ? cls[d] : row[d]) + pr[d];
  }
  return RCC_OK;
}

rcc_status_t rcc_grad_patch_embed_backward(rcc_backend_t be, float *dWp, float *dcls, float *dpos,
                                           const float *dx, const float *cols, int B, int T, int D,
                                           int K) {
  const int Np = T - 1;
  for (int b = 0; b < B; b++) {
    const float *dxb = dx + (size_t)b * T * D;
    for (int t = 0; t < T; t++)
      for (int d = 0; d < D; d++) {
        if (dpos) dpos[(size_t)t * D + d] += dxb[(size_t)t * D + d];
        if (dcls && t == 0) dcls[d] += dxb[d];
      }
    /* dWp (D,K) += dpatch_b^T (D, Np) cols_b (Np, K) */
    if (dWp)
      RCC_TRY(rcc_gemm(be, true, false, D, K, Np, 1.0f, dxb + D, D, cols + (size_t)b * Np * K, K,
                       1.0f, dWp, K));
  }
  return RCC_OK;
}

void rcc_grad_token_embed_forward(float *x, const int32_t *ids, const float *tok, const float *pos,
                                  int B, int T, int D) {
#pragma omp parallel for schedule(static) if ((int64_t)B * T * D >= PAR_MIN)
  for (int bt = 0; bt < B * T; bt++) {
    const float *tr = tok + (size_t)ids[bt] * D, *pr = pos + (size_t)(bt % T) * D;
    float *row = x + (size_t)bt * D;
    for (int d = 0; d < D; d++)
      row[d] = tr[d] + pr[d];
  }
}

void rcc_grad_token_embed_backward(float *dtok, float *dpos, const float *dx, const int32_t *ids,
                                   int B, int T, int D) {
  /* serial: two positions may hold the same token */
  for (int bt = 0; bt < B * T; bt++) {
    const float *g = dx + (size_t)bt * D;
    for (int d = 0; d < D; d++) {
      if (dtok) dtok[(size_t)ids[bt] * D + d] += g[d];
      if (dpos) dpos[(size_t)(bt % T) * D + d] += g[d];
    }
  }
}

/* ---------------------------------------------------------------- pooling */

void rcc_grad_pool_forward(float *out, const float *x, const int *rows, int B, int T, int D) {
  for (int b = 0; b < B; b++)
    memcpy(out + (size_t)b * D, x + ((size_t)b * T + rows[b]) * D, (size_t)D * sizeof *out);
}

void rcc_grad_pool_backward(float *dx, const float *dout, const int *rows, int B, int T, int D) {
  for (int b = 0; b < B; b++) {
    float *dst = dx + ((size_t)b * T + rows[b]) * D;
    for (int d = 0; d < D; d++)
      dst[d] += dout[(size_t)b * D + d];
  }
}

/* ---------------------------------------------------------------- loss helpers */

void rcc_grad_l2norm_forward(float *out, float *norm, const float *inp, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= PAR_MIN)
  for (int i = 0; i < N; i++) {
    const float *x = inp + (size_t)i * C;
    float *y = out + (size_t)i * C;
    double sq = 0.0;
    for (int j = 0; j < C; j++)
      sq += (double)x[j] * x[j];
    const float nrm = (float)sqrt(sq);
    norm[i] = nrm;
    for (int j = 0; j < C; j++)
      y[j] = nrm > 0.0f ? x[j] / nrm : 0.0f;
  }
}

void rcc_grad_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm,
                              int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= PAR_MIN)
  for (int i = 0; i < N; i++) {
    if (norm[i] == 0.0f) continue; /* a zero row has no direction: no gradient */
    const float *y = out + (size_t)i * C, *dy = dout + (size_t)i * C;
    float *dx = dinp + (size_t)i * C;
    double dot = 0.0;
    for (int j = 0; j < C; j++)
      dot += (double)y[j] * dy[j];
    const float dotf = (float)dot, inv = 1.0f / norm[i];
    for (int j = 0; j < C; j++)
      dx[j] += (dy[j] - y[j] * dotf) * inv;
  }
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
  if (dscale) {
    double s = 0.0;
    for (int64_t i = 0; i < (int64_t)N * M; i++)
      s += (double)dlogits[i] * logits[i];
    *dscale += (float)(s / scale);
  }
  return RCC_OK;
}
