/* Distillation loss and its gradient (see distill_loss.h). Small (B x C logits, C x P class
 * embeddings): plain loops, sums in double, float32 in and out. */
#include "compress/distill_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/grad_ops.h"

/* Cache layout: U (R, P) normalized features, M (C, P) their class means, the norms of
 * E (R) and of M (C), then the backward's scratch dU (R, P) and dM (C, P);
 * R = C * n_templates. */
size_t rcc_distill_classes_cache_floats(int C, int n_templates, int P) {
  const size_t R = (size_t)C * n_templates;
  return 2 * (R * P + (size_t)C * P) + R + (size_t)C;
}

rcc_status_t rcc_distill_classes_forward(rcc_backend_t be, const float *E, int C, int n_templates,
                                         int P, float *cache, float *K) {
  const int R = C * n_templates;
  float *U = cache, *M = U + (size_t)R * P, *norm_e = M + (size_t)C * P, *norm_m = norm_e + R;
  RCC_TRY(rcc_grad_l2norm_forward(be, U, norm_e, E, R, P));
  for (int c = 0; c < C; c++)
    for (int j = 0; j < P; j++) {
      double s = 0.0;
      for (int t = 0; t < n_templates; t++)
        s += U[((size_t)c * n_templates + t) * P + j];
      M[(size_t)c * P + j] = (float)(s / n_templates);
    }
  return rcc_grad_l2norm_forward(be, K, norm_m, M, C, P);
}

rcc_status_t rcc_distill_classes_backward(rcc_backend_t be, const float *dK, float *cache,
                                          const float *K, int C, int n_templates, int P,
                                          float *dE) {
  const int R = C * n_templates;
  const float *U = cache, *norm_e = U + (size_t)R * P + (size_t)C * P, *norm_m = norm_e + R;
  float *dU = cache + (size_t)R * P + (size_t)C * P + (size_t)R + (size_t)C;
  float *dM = dU + (size_t)R * P;
  memset(dM, 0, (size_t)C * P * sizeof *dM);
  memset(dE, 0, (size_t)R * P * sizeof *dE);
  /* through K = M / |M|, then the mean gives every template dM / n_templates, then through
   * U = E / |E| */
  RCC_TRY(rcc_grad_l2norm_backward(be, dM, dK, K, norm_m, C, P));
  for (int c = 0; c < C; c++)
    for (int t = 0; t < n_templates; t++)
      for (int j = 0; j < P; j++)
        dU[((size_t)c * n_templates + t) * P + j] = dM[(size_t)c * P + j] / (float)n_templates;
  return rcc_grad_l2norm_backward(be, dE, dU, U, norm_e, R, P);
}

rcc_status_t rcc_distill_loss(rcc_backend_t be, const rcc_distill_loss_config_t *cfg,
                              const float *img_s, const float *img_t, int B, double image_weight,
                              const float *K_s, const float *K_t, int C, double class_weight,
                              int P, double *loss, float *d_img, float *d_K) {
  const size_t BP = (size_t)B * P, BC = (size_t)B * C;
  /* + 1: a rank whose share of the batch is empty still adds the class term */
  float *buf = malloc((3 * BP + 3 * BC + 2 * (size_t)B + 1) * sizeof *buf);
  if (!buf) return rcc_fail(RCC_ERR_NOMEM, "distillation loss: out of memory for %d images", B);
  float *u_s = buf, *u_t = u_s + BP, *du = u_t + BP, *logit_s = du + BP, *logit_t = logit_s + BC;
  float *dlogit = logit_t + BC, *norm_s = dlogit + BC, *norm_t = norm_s + B;
  const double kd = cfg->kd_weight, emb = 1.0 - cfg->kd_weight, T = cfg->temperature;
  rcc_status_t st = rcc_grad_l2norm_forward(be, u_s, norm_s, img_s, B, P);
  if (st == RCC_OK) st = rcc_grad_l2norm_forward(be, u_t, norm_t, img_t, B, P);
  if (st == RCC_OK) st = rcc_grad_logits_forward(be, logit_s, u_s, K_s, cfg->logit_scale, B, C, P);
  if (st == RCC_OK) st = rcc_grad_logits_forward(be, logit_t, u_t, K_t, cfg->logit_scale, B, C, P);
  if (st != RCC_OK) {
    free(buf);
    return st;
  }
  /* KD: T^2 KL(p_t || p_s) per image; d/d logit_s = T (p_s - p_t). */
  double total = 0.0;
  for (int i = 0; i < B; i++) {
    const float *ls = logit_s + (size_t)i * C, *lt = logit_t + (size_t)i * C;
    double max_s = -INFINITY, max_t = -INFINITY, zs = 0.0, zt = 0.0;
    for (int c = 0; c < C; c++) {
      max_s = fmax(max_s, ls[c] / T);
      max_t = fmax(max_t, lt[c] / T);
    }
    for (int c = 0; c < C; c++) {
      zs += exp(ls[c] / T - max_s);
      zt += exp(lt[c] / T - max_t);
    }
    double kl = 0.0;
    for (int c = 0; c < C; c++) {
      const double log_ps = ls[c] / T - max_s - log(zs), log_pt = lt[c] / T - max_t - log(zt);
      const double pt = exp(log_pt);
      kl += pt * (log_pt - log_ps);
      dlogit[(size_t)i * C + c] = (float)(kd * image_weight * T * (exp(log_ps) - pt));
    }
    total += kd * image_weight * T * T * kl;
  }
  memset(du, 0, BP * sizeof *du);
  memset(d_K, 0, (size_t)C * P * sizeof *d_K);
  st = rcc_grad_logits_backward(be, du, d_K, NULL, dlogit, logit_s, u_s, K_s, cfg->logit_scale, B,
                                C, P);
  /* Image embeddings: cosine on the normalized ones (through du), or MSE on the projected
   * ones (straight into d_img, added after the normalization's backward). */
  memset(d_img, 0, BP * sizeof *d_img);
  for (int i = 0; st == RCC_OK && i < B; i++) {
    const size_t o = (size_t)i * P;
    double cos_st = 0.0, sq = 0.0;
    for (int j = 0; j < P; j++) {
      cos_st += (double)u_s[o + j] * u_t[o + j];
      sq += ((double)img_s[o + j] - img_t[o + j]) * ((double)img_s[o + j] - img_t[o + j]);
    }
    if (cfg->embedding_loss == RCC_EMBEDDING_LOSS_COSINE) {
      total += emb * image_weight * (1.0 - cos_st);
      for (int j = 0; j < P; j++)
        du[o + j] -= (float)(emb * image_weight) * u_t[o + j];
    } else {
      total += emb * image_weight * sq / P;
      for (int j = 0; j < P; j++)
        d_img[o + j] += (float)(emb * image_weight * 2.0 / P) * (img_s[o + j] - img_t[o + j]);
    }
  }
  if (st == RCC_OK) st = rcc_grad_l2norm_backward(be, d_img, du, u_s, norm_s, B, P);
  /* Class embeddings: mean over classes of 1 - cos. */
  for (int c = 0; st == RCC_OK && c < C; c++) {
    double cos_c = 0.0;
    for (int j = 0; j < P; j++)
      cos_c += (double)K_s[(size_t)c * P + j] * K_t[(size_t)c * P + j];
    total += emb * class_weight * (1.0 - cos_c) / C;
    for (int j = 0; j < P; j++)
      d_K[(size_t)c * P + j] -= (float)(emb * class_weight / C) * K_t[(size_t)c * P + j];
  }
  free(buf);
  *loss = total;
  return st;
}
