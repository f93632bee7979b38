/* The loss of alphaedit `distill`: the compressed CLIP (student) learns to give the zero-shot
 * logits and the embeddings of the original (teacher) on training images.
 *
 *   loss = kd_weight * KD + (1 - kd_weight) * EMB (+ the caller's pull of alpha to its start)
 *   KD   = mean over images of T^2 KL(p_t || p_s), p = softmax(logits / T) over the classes,
 *          logits = logit_scale * <image embedding, class embedding> (both normalized): Hinton's
 *          distillation loss, the usual direction (teacher as the target distribution) and
 *          scaling (T^2 keeps the gradient size independent of T);
 *   EMB  = mean over images of 1 - cos(student, teacher) (cosine), or of the mean squared
 *          difference of the projected embeddings (mse), plus the mean over classes of
 *          1 - cos between student and teacher class embeddings.
 * Class embeddings are CLIP's prompt ensembles: per class, the text features of every
 * template, each normalized, averaged, normalized again (as eval/zeroshot.c computes them).
 *
 * Data-parallel use: every rank evaluates its share of the global batch with
 * image_weight = 1 / global batch, and the class term with class_weight = 1 / ranks, so that
 * the gradients summed over ranks are those of the loss of the whole batch.
 *
 * Every array is in the backend's memory (backend.h) and every step runs there: on a GPU
 * only the loss, a double, comes back to the host. On the cpu backend the arithmetic, and
 * so the loss and the gradients to the bit, are those of the host loops this once was. */
#pragma once
#include "backend/backend.h"
#include "common/status.h"
#include "jobs/job.h"

typedef struct {
  double kd_weight, temperature;
  rcc_embedding_loss_t embedding_loss;
  float logit_scale; /* exp(logit_scale) of the teacher, used for both */
} rcc_distill_loss_config_t;

/* Floats of the cache the prompt ensemble keeps between forward and backward. */
size_t rcc_distill_classes_cache_floats(int C, int n_templates, int P);
/* The prompt ensemble: E (C * n_templates, P) text features, class-major -> K (C, P).
 * cache: rcc_distill_classes_cache_floats(...) floats, kept for the backward. */
rcc_status_t rcc_distill_classes_forward(rcc_backend_t be, const float *E, int C, int n_templates,
                                         int P, float *cache, float *K);
/* dE (C * n_templates, P) = d loss / dE from dK (C, P) (overwritten, not accumulated);
 * cache and K as the forward left them. */
rcc_status_t rcc_distill_classes_backward(rcc_backend_t be, const float *dK, float *cache,
                                          const float *K, int C, int n_templates, int P, float *dE);

/* img_s, img_t (B, P): student and teacher image features (projected, not normalized);
 * K_s, K_t (C, P): class embeddings (normalized). Returns in *loss this rank's share and
 * writes d_img (B, P) and d_K (C, P) (overwritten). */
rcc_status_t rcc_distill_loss(rcc_backend_t be, const rcc_distill_loss_config_t *cfg,
                              const float *img_s, const float *img_t, int B, double image_weight,
                              const float *K_s, const float *K_t, int C, double class_weight, int P,
                              double *loss, float *d_img, float *d_K);
