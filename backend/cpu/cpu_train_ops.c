/* The training kernels of the CPU backend (backend_train.h): plain loops over host memory,
 * OpenMP over rows, or over column blocks for the reductions over rows. These loops are the
 * reference every other backend is tested against, and the arithmetic and its order are
 * what distillation runs were published with: a change here moves their numbers (the
 * tests/runs/test_distill*.sh runs compare byte for byte). */
#include <math.h>
#include <string.h>

#include "backend/backend_train_impl.h"

/* Below these many values a parallel region costs more than it saves (as cpu_ops.c). */
#define PAR_MIN ((int64_t)1 << 15)
/* Column block of the reductions over rows (dbias, dalpha, LayerNorm dw/db): each thread
 * owns whole columns, so no atomics and a fixed summation order (reproducible). */
#define COL_BLOCK 64

/* ---- linear layer ---- */

static rcc_status_t cpu_linear_epilogue(rcc_backend_t be, float *y, float *P, const float *alpha,
                                        const float *bias, int N, int m) {
  if (P) memcpy(P, y, (size_t)N * m * sizeof *P);
  if (!alpha && !bias) return RCC_OK;
#pragma omp parallel for schedule(static) if ((int64_t)N * m >= PAR_MIN)
  for (int i = 0; i < N; i++) {
    float *row = y + (size_t)i * m;
    for (int o = 0; o < m; o++)
      row[o] = (alpha ? alpha[o] * row[o] : row[o]) + (bias ? bias[o] : 0.0f);
  }
  return RCC_OK;
}

static rcc_status_t cpu_column_sums(rcc_backend_t be, float *d, const float *a, const float *b,
                                    int N, int m) {
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
  return RCC_OK;
}

static rcc_status_t cpu_scale_columns(rcc_backend_t be, float *out, const float *in,
                                      const float *alpha, int N, int m) {
#pragma omp parallel for schedule(static) if ((int64_t)N * m >= PAR_MIN)
  for (int i = 0; i < N; i++)
    for (int o = 0; o < m; o++)
      out[(size_t)i * m + o] = in[(size_t)i * m + o] * alpha[o];
  return RCC_OK;
}

/* ---- LayerNorm ---- */

static rcc_status_t cpu_layernorm_forward(rcc_backend_t be, float *out, float *mean, float *rstd,
                                          const float *inp, const float *w, const float *b, int N,
                                          int C, float eps) {
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
  return RCC_OK;
}

/* With xhat = (x - mean) rstd and dn = dout * w:
 *   dx = rstd (dn - mean_j(dn) - xhat mean_j(dn xhat)),  dw = sum_i dout xhat,  db = sum_i dout. */
static rcc_status_t cpu_layernorm_backward(rcc_backend_t be, float *dinp, float *dw, float *db,
                                           const float *dout, const float *inp, const float *w,
                                           const float *mean, const float *rstd, int N, int C) {
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
  if (!dw && !db) return RCC_OK;
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
  return RCC_OK;
}

/* ---- attention ---- */

static rcc_status_t cpu_softmax_backward(rcc_backend_t be, float *datt, const float *att,
                                         int64_t rows, int T) {
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
  return RCC_OK;
}

/* ---- activations ---- */

static rcc_status_t cpu_activation_forward(rcc_backend_t be, rcc_activation_t act, float *out,
                                           const float *inp, int64_t n) {
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
  return RCC_OK;
}

/* Derivatives: gelu 0.5 (1 + erf(x/sqrt2)) + x phi(x); gelu_tanh with u = c (x + k x^3):
 * 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) c (1 + 3k x^2); quick_gelu with s = sigmoid(1.702 x):
 * s + 1.702 x s (1 - s); relu: 1 for x > 0. */
static rcc_status_t cpu_activation_backward(rcc_backend_t be, rcc_activation_t act, float *dinp,
                                            const float *dout, const float *inp, int64_t n) {
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
  return RCC_OK;
}

/* ---- embeddings ---- */

static rcc_status_t cpu_im2col(rcc_backend_t be, float *cols, const float *pixels, int B, int C,
                               int S, int p) {
  const int g = S / p, Np = g * g, K = C * p * p;
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
  return RCC_OK;
}

static rcc_status_t cpu_patch_rows_forward(rcc_backend_t be, float *x, const float *cls,
                                           const float *pos, int B, int T, int D) {
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

static rcc_status_t cpu_patch_rows_backward(rcc_backend_t be, float *dcls, float *dpos,
                                            const float *dx, int B, int T, int D) {
  for (int b = 0; b < B; b++) {
    const float *dxb = dx + (size_t)b * T * D;
    for (int t = 0; t < T; t++)
      for (int d = 0; d < D; d++) {
        if (dpos) dpos[(size_t)t * D + d] += dxb[(size_t)t * D + d];
        if (dcls && t == 0) dcls[d] += dxb[d];
      }
  }
  return RCC_OK;
}

static rcc_status_t cpu_token_embed_forward(rcc_backend_t be, float *x, const int32_t *ids,
                                            const float *tok, const float *pos, int B, int T,
                                            int D) {
#pragma omp parallel for schedule(static) if ((int64_t)B * T * D >= PAR_MIN)
  for (int bt = 0; bt < B * T; bt++) {
    const float *tr = tok + (size_t)ids[bt] * D, *pr = pos + (size_t)(bt % T) * D;
    float *row = x + (size_t)bt * D;
    for (int d = 0; d < D; d++)
      row[d] = tr[d] + pr[d];
  }
  return RCC_OK;
}

static rcc_status_t cpu_token_embed_backward(rcc_backend_t be, float *dtok, float *dpos,
                                             const float *dx, const int32_t *ids, int B, int T,
                                             int D) {
  /* serial: two positions may hold the same token */
  for (int bt = 0; bt < B * T; bt++) {
    const float *g = dx + (size_t)bt * D;
    for (int d = 0; d < D; d++) {
      if (dtok) dtok[(size_t)ids[bt] * D + d] += g[d];
      if (dpos) dpos[(size_t)(bt % T) * D + d] += g[d];
    }
  }
  return RCC_OK;
}

/* ---- pooling ---- */

static rcc_status_t cpu_pool_forward(rcc_backend_t be, float *out, const float *x, const int *rows,
                                     int B, int T, int D) {
  for (int b = 0; b < B; b++)
    memcpy(out + (size_t)b * D, x + ((size_t)b * T + rows[b]) * D, (size_t)D * sizeof *out);
  return RCC_OK;
}

static rcc_status_t cpu_pool_backward(rcc_backend_t be, float *dx, const float *dout,
                                      const int *rows, int B, int T, int D) {
  for (int b = 0; b < B; b++) {
    float *dst = dx + ((size_t)b * T + rows[b]) * D;
    for (int d = 0; d < D; d++)
      dst[d] += dout[(size_t)b * D + d];
  }
  return RCC_OK;
}

/* ---- loss helpers ---- */

static rcc_status_t cpu_l2norm_forward(rcc_backend_t be, float *out, float *norm, const float *inp,
                                       int N, int C) {
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
  return RCC_OK;
}

static rcc_status_t cpu_l2norm_backward(rcc_backend_t be, float *dinp, const float *dout,
                                        const float *out, const float *norm, int N, int C) {
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
  return RCC_OK;
}

static rcc_status_t cpu_logit_scale_backward(rcc_backend_t be, float *dscale, const float *dlogits,
                                             const float *logits, float scale, int64_t count) {
  double s = 0.0;
  for (int64_t i = 0; i < count; i++)
    s += (double)dlogits[i] * logits[i];
  *dscale += (float)(s / scale);
  return RCC_OK;
}

/* ---- distillation loss ----
 * compress/distill_loss.c's loops as they were before they moved here, expression for
 * expression and sequential: the loss a distillation run reports stays the same number. */

static rcc_status_t cpu_group_mean_forward(rcc_backend_t be, float *out, const float *inp, int G,
                                           int n, int C) {
  for (int g = 0; g < G; g++)
    for (int j = 0; j < C; j++) {
      double s = 0.0;
      for (int t = 0; t < n; t++)
        s += inp[((size_t)g * n + t) * C + j];
      out[(size_t)g * C + j] = (float)(s / n);
    }
  return RCC_OK;
}

static rcc_status_t cpu_group_mean_backward(rcc_backend_t be, float *dinp, const float *dout, int G,
                                            int n, int C) {
  for (int g = 0; g < G; g++)
    for (int t = 0; t < n; t++)
      for (int j = 0; j < C; j++)
        dinp[((size_t)g * n + t) * C + j] += dout[(size_t)g * C + j] / (float)n;
  return RCC_OK;
}

static rcc_status_t cpu_kd_loss(rcc_backend_t be, float *dlogits_s, const float *logits_s,
                                const float *logits_t, int N, int M, double T, double coef,
                                double *loss) {
  double total = *loss;
  for (int i = 0; i < N; i++) {
    const float *ls = logits_s + (size_t)i * M, *lt = logits_t + (size_t)i * M;
    double max_s = -INFINITY, max_t = -INFINITY, zs = 0.0, zt = 0.0;
    for (int c = 0; c < M; c++) {
      max_s = fmax(max_s, ls[c] / T);
      max_t = fmax(max_t, lt[c] / T);
    }
    for (int c = 0; c < M; c++) {
      zs += exp(ls[c] / T - max_s);
      zt += exp(lt[c] / T - max_t);
    }
    double kl = 0.0;
    for (int c = 0; c < M; c++) {
      const double log_ps = ls[c] / T - max_s - log(zs), log_pt = lt[c] / T - max_t - log(zt);
      const double pt = exp(log_pt);
      kl += pt * (log_pt - log_ps);
      dlogits_s[(size_t)i * M + c] = (float)(coef * T * (exp(log_ps) - pt));
    }
    total += coef * T * T * kl;
  }
  *loss = total;
  return RCC_OK;
}

static rcc_status_t cpu_embedding_loss(rcc_backend_t be, rcc_train_embed_t kind, float *da,
                                       const float *a, const float *b, int N, int C, double weight,
                                       double count, double *loss) {
  double total = *loss;
  for (int i = 0; i < N; i++) {
    const size_t o = (size_t)i * C;
    if (kind == RCC_TRAIN_EMBED_COSINE) {
      double dot = 0.0;
      for (int j = 0; j < C; j++)
        dot += (double)a[o + j] * b[o + j];
      total += weight * (1.0 - dot) / count;
      for (int j = 0; j < C; j++)
        da[o + j] -= (float)(weight / count) * b[o + j];
    } else {
      double sq = 0.0;
      for (int j = 0; j < C; j++)
        sq += ((double)a[o + j] - b[o + j]) * ((double)a[o + j] - b[o + j]);
      total += weight * sq / C / count;
      for (int j = 0; j < C; j++)
        da[o + j] += (float)(weight * 2.0 / C / count) * (a[o + j] - b[o + j]);
    }
  }
  *loss = total;
  return RCC_OK;
}

/* ---- buffers and the optimizer step ---- */

static rcc_status_t cpu_fill(rcc_backend_t be, float *x, float value, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    x[i] = value;
  return RCC_OK;
}

static rcc_status_t cpu_copy(rcc_backend_t be, float *dst, const float *src, int64_t n) {
  memcpy(dst, src, (size_t)n * sizeof *dst);
  return RCC_OK;
}

static rcc_status_t cpu_gather(rcc_backend_t be, float *packed, const float *x, const int64_t *idx,
                               int64_t n) {
  for (int64_t k = 0; k < n; k++)
    packed[k] = x[idx[k]];
  return RCC_OK;
}

static rcc_status_t cpu_scatter(rcc_backend_t be, float *x, const float *packed, const int64_t *idx,
                                int64_t n) {
  for (int64_t k = 0; k < n; k++)
    x[idx[k]] = packed[k];
  return RCC_OK;
}

/* compress/optim_adamw.c's rcc_adamw_step, expression for expression: distillation runs on
 * the cpu backend must keep their published numbers. */
static rcc_status_t cpu_adamw_step(rcc_backend_t be, float *params, float *m, float *v,
                                   const float *grads, const uint8_t *decay, int64_t n,
                                   const rcc_train_adamw_t *h) {
  const double bc1 = 1.0 - pow(h->beta1, (double)h->step);
  const double bc2 = 1.0 - pow(h->beta2, (double)h->step);
  const float b1 = (float)h->beta1, b2 = (float)h->beta2;
  const double shrink = 1.0 - h->lr * h->weight_decay, lr = h->lr, eps = h->eps;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float g = grads[i];
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    double p = params[i];
    if (!decay || decay[i]) p *= shrink;
    const double m_hat = m[i] / bc1, v_hat = v[i] / bc2;
    params[i] = (float)(p - lr * m_hat / (sqrt(v_hat) + eps));
  }
  return RCC_OK;
}

/* Sequential, as runner/distill.c summed the pull's regularization before it moved here. */
static rcc_status_t cpu_distill_grads(rcc_backend_t be, float *g, const float *p,
                                      const float *start, const uint8_t *frozen,
                                      const uint8_t *pull, int64_t n, float inv, float pull_coef,
                                      double reg_weight, double *reg) {
  double r = 0.0;
  for (int64_t i = 0; i < n; i++) {
    g[i] = frozen[i] ? 0.0f : g[i] * inv;
    if (pull[i]) {
      const float dev = p[i] - start[i];
      g[i] += pull_coef * dev;
      r += reg_weight * (double)dev * dev;
    }
  }
  *reg = r;
  return RCC_OK;
}

/* compress/optim_adamw.c's rcc_clip_grad_norm, the same loops and OpenMP reductions. */
static rcc_status_t cpu_clip_grad_norm(rcc_backend_t be, float *g, int64_t n, double max_norm,
                                       double *norm) {
  double sq = 0.0;
#pragma omp parallel for reduction(+ : sq) schedule(static)
  for (int64_t i = 0; i < n; i++)
    sq += (double)g[i] * g[i];
  *norm = sqrt(sq);
  if (max_norm > 0.0 && *norm > max_norm) {
    const float s = (float)(max_norm / (*norm + 1e-6));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
      g[i] *= s;
  }
  return RCC_OK;
}

const rcc_backend_train_ops_t rcc_cpu_train_ops = {
    .linear_epilogue = cpu_linear_epilogue,
    .column_sums = cpu_column_sums,
    .scale_columns = cpu_scale_columns,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .softmax_backward = cpu_softmax_backward,
    .activation_forward = cpu_activation_forward,
    .activation_backward = cpu_activation_backward,
    .im2col = cpu_im2col,
    .patch_rows_forward = cpu_patch_rows_forward,
    .patch_rows_backward = cpu_patch_rows_backward,
    .token_embed_forward = cpu_token_embed_forward,
    .token_embed_backward = cpu_token_embed_backward,
    .pool_forward = cpu_pool_forward,
    .pool_backward = cpu_pool_backward,
    .l2norm_forward = cpu_l2norm_forward,
    .l2norm_backward = cpu_l2norm_backward,
    .logit_scale_backward = cpu_logit_scale_backward,
    .group_mean_forward = cpu_group_mean_forward,
    .group_mean_backward = cpu_group_mean_backward,
    .kd_loss = cpu_kd_loss,
    .embedding_loss = cpu_embedding_loss,
    .fill = cpu_fill,
    .copy = cpu_copy,
    .gather = cpu_gather,
    .scatter = cpu_scatter,
    .adamw_step = cpu_adamw_step,
    .distill_grads = cpu_distill_grads,
    .clip_grad_norm = cpu_clip_grad_norm,
};
