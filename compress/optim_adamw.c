/* AdamW, the warm-up + cosine schedule and gradient clipping (see optim.h). Moments are
 * float32 like PyTorch's for float32 parameters; the bias corrections and the norm are
 * computed in double. */
#include <math.h>
#include <stdlib.h>

#include "compress/optim.h"

rcc_status_t rcc_adamw_init(rcc_adamw_t *opt, int64_t n, const rcc_adamw_config_t *cfg) {
  *opt = (rcc_adamw_t){.cfg = *cfg, .n = n};
  if (n < 0) return rcc_fail(RCC_ERR_ARG, "compress/optim_adamw.c: %lld parameters", (long long)n);
  opt->m = calloc((size_t)(n > 0 ? n : 1), sizeof *opt->m);
  opt->v = calloc((size_t)(n > 0 ? n : 1), sizeof *opt->v);
  if (!opt->m || !opt->v) {
    rcc_adamw_free(opt);
    return rcc_fail(RCC_ERR_NOMEM, "compress/optim_adamw.c: optimizer state for %lld parameters",
                    (long long)n);
  }
  return RCC_OK;
}

void rcc_adamw_free(rcc_adamw_t *opt) {
  free(opt->m);
  free(opt->v);
  opt->m = opt->v = NULL;
}

void rcc_adamw_step(rcc_adamw_t *opt, float *params, const float *grads, double lr,
                    const uint8_t *decay) {
  const rcc_adamw_config_t *c = &opt->cfg;
  opt->step++;
  const double bc1 = 1.0 - pow(c->beta1, (double)opt->step);
  const double bc2 = 1.0 - pow(c->beta2, (double)opt->step);
  const float b1 = (float)c->beta1, b2 = (float)c->beta2;
  const double shrink = 1.0 - lr * c->weight_decay;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < opt->n; i++) {
    const float g = grads[i];
    opt->m[i] = b1 * opt->m[i] + (1.0f - b1) * g;
    opt->v[i] = b2 * opt->v[i] + (1.0f - b2) * g * g;
    double p = params[i];
    if (!decay || decay[i]) p *= shrink;
    const double m_hat = opt->m[i] / bc1, v_hat = opt->v[i] / bc2;
    params[i] = (float)(p - lr * m_hat / (sqrt(v_hat) + c->eps));
  }
}

double rcc_lr_warmup_cosine(double base, int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return base * (double)step / (double)warmup;
  const double progress = (double)(step - warmup) / (double)(total - warmup > 1 ? total - warmup : 1);
  return fmax(0.0, 0.5 * base * (1.0 + cos(M_PI * progress)));
}

double rcc_clip_grad_norm(float *grads, int64_t n, double max_norm) {
  double sq = 0.0;
#pragma omp parallel for reduction(+ : sq) schedule(static)
  for (int64_t i = 0; i < n; i++)
    sq += (double)grads[i] * grads[i];
  const double norm = sqrt(sq);
  if (max_norm > 0.0 && norm > max_norm) {
    /* the same factor as PyTorch: max_norm / (norm + 1e-6) */
    const float s = (float)(max_norm / (norm + 1e-6));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
      grads[i] *= s;
  }
  return norm;
}
