/* Distillation loss and its gradient (see distill_loss.h) as a sequence of backend ops: the
 * GEMMs of the logits, the training kernels of backend_train.h for the rest (normalization,
 * the template mean, KD, the embedding terms). Only the loss itself comes back to the host. */
#include "compress/distill_loss.h"

#include "backend/backend_train.h"
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
  RCC_TRY(rcc_train_group_mean_forward(be, M, U, C, n_templates, P));
  return rcc_grad_l2norm_forward(be, K, norm_m, M, C, P);
}

rcc_status_t rcc_distill_classes_backward(rcc_backend_t be, const float *dK, float *cache,
                                          const float *K, int C, int n_templates, int P,
                                          float *dE) {
  const int R = C * n_templates;
  const float *U = cache, *norm_e = U + (size_t)R * P + (size_t)C * P, *norm_m = norm_e + R;
  float *dU = cache + (size_t)R * P + (size_t)C * P + (size_t)R + (size_t)C;
  float *dM = dU + (size_t)R * P;
  RCC_TRY(rcc_train_fill(be, dM, 0.0f, (int64_t)C * P));
  RCC_TRY(rcc_train_fill(be, dU, 0.0f, (int64_t)R * P));
  RCC_TRY(rcc_train_fill(be, dE, 0.0f, (int64_t)R * P));
  /* through K = M / |M|, then the mean gives every template dM / n_templates, then through
   * U = E / |E| */
  RCC_TRY(rcc_grad_l2norm_backward(be, dM, dK, K, norm_m, C, P));
  RCC_TRY(rcc_train_group_mean_backward(be, dU, dM, C, n_templates, P));
  return rcc_grad_l2norm_backward(be, dE, dU, U, norm_e, R, P);
}

/* The terms in the order they were always summed (KD per image, the image embeddings, the
 * class embeddings), each op adding to the same running total, so that on the cpu backend
 * the loss is the number one loop over all of them gave. */
static rcc_status_t loss_terms(rcc_backend_t be, const rcc_distill_loss_config_t *cfg, float *buf,
                               const float *img_s, const float *img_t, int B, double image_weight,
                               const float *K_s, const float *K_t, int C, double class_weight,
                               int P, double *loss, float *d_img, float *d_K) {
  const size_t BP = (size_t)B * P, BC = (size_t)B * C;
  float *u_s = buf, *u_t = u_s + BP, *du = u_t + BP, *logit_s = du + BP, *logit_t = logit_s + BC;
  float *dlogit = logit_t + BC, *norm_s = dlogit + BC, *norm_t = norm_s + B;
  const double kd = cfg->kd_weight, emb = 1.0 - cfg->kd_weight;
  RCC_TRY(rcc_grad_l2norm_forward(be, u_s, norm_s, img_s, B, P));
  RCC_TRY(rcc_grad_l2norm_forward(be, u_t, norm_t, img_t, B, P));
  RCC_TRY(rcc_grad_logits_forward(be, logit_s, u_s, K_s, cfg->logit_scale, B, C, P));
  RCC_TRY(rcc_grad_logits_forward(be, logit_t, u_t, K_t, cfg->logit_scale, B, C, P));
  /* KD: T^2 KL(p_t || p_s) per image; d/d logit_s = T (p_s - p_t). */
  RCC_TRY(rcc_train_kd_loss(be, dlogit, logit_s, logit_t, B, C, cfg->temperature, kd * image_weight,
                            loss));
  RCC_TRY(rcc_train_fill(be, du, 0.0f, (int64_t)BP));
  RCC_TRY(rcc_train_fill(be, d_K, 0.0f, (int64_t)C * P));
  RCC_TRY(rcc_grad_logits_backward(be, du, d_K, NULL, dlogit, logit_s, u_s, K_s, cfg->logit_scale,
                                   B, C, P));
  /* Image embeddings: cosine on the normalized ones (through du), or MSE on the projected
   * ones (straight into d_img, added before the normalization's backward). */
  RCC_TRY(rcc_train_fill(be, d_img, 0.0f, (int64_t)BP));
  if (cfg->embedding_loss == RCC_EMBEDDING_LOSS_COSINE)
    RCC_TRY(rcc_train_embedding_loss(be, RCC_TRAIN_EMBED_COSINE, du, u_s, u_t, B, P,
                                     emb * image_weight, 1.0, loss));
  else
    RCC_TRY(rcc_train_embedding_loss(be, RCC_TRAIN_EMBED_MSE, d_img, img_s, img_t, B, P,
                                     emb * image_weight, 1.0, loss));
  RCC_TRY(rcc_grad_l2norm_backward(be, d_img, du, u_s, norm_s, B, P));
  /* Class embeddings: mean over classes of 1 - cos. */
  return rcc_train_embedding_loss(be, RCC_TRAIN_EMBED_COSINE, d_K, K_s, K_t, C, P,
                                  emb * class_weight, (double)C, loss);
}

rcc_status_t rcc_distill_loss(rcc_backend_t be, const rcc_distill_loss_config_t *cfg,
                              const float *img_s, const float *img_t, int B, double image_weight,
                              const float *K_s, const float *K_t, int C, double class_weight, int P,
                              double *loss, float *d_img, float *d_K) {
  const size_t BP = (size_t)B * P, BC = (size_t)B * C;
  /* + 1: a rank whose share of the batch is empty still adds the class term */
  float *buf = rcc_backend_alloc(be, (3 * BP + 3 * BC + 2 * (size_t)B + 1) * sizeof *buf);
  if (!buf) return rcc_fail_context(RCC_ERR_NOMEM, "distillation loss: scratch for %d images", B);
  double total = 0.0;
  const rcc_status_t st = loss_terms(be, cfg, buf, img_s, img_t, B, image_weight, K_s, K_t, C,
                                     class_weight, P, &total, d_img, d_K);
  rcc_backend_release(be, buf);
  *loss = total;
  return st;
}
