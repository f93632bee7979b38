/* The optimizer of the alphaedit `distill` method: AdamW (Loshchilov & Hutter 2019) with
 * PyTorch's torch.optim.AdamW semantics, a linear warm-up + cosine learning-rate schedule,
 * and global gradient-norm clipping. One flat float32 parameter array and one gradient
 * array of the same layout (what rcc_clip_train_params/grads give). */
#pragma once
#include <stdint.h>

#include "common/status.h"

typedef struct {
  double beta1, beta2, eps; /* 0.9, 0.999, 1e-8 as PyTorch */
  double weight_decay;      /* decoupled: p -= lr * weight_decay * p, where decay[i] is 1 */
} rcc_adamw_config_t;

typedef struct {
  rcc_adamw_config_t cfg;
  int64_t n, step; /* step: updates made so far */
  float *m, *v;    /* first and second moment estimates (n) */
} rcc_adamw_t;

rcc_status_t rcc_adamw_init(rcc_adamw_t *opt, int64_t n, const rcc_adamw_config_t *cfg);
void rcc_adamw_free(rcc_adamw_t *opt);
/* One update of params (n) from grads (n) at learning rate lr:
 *   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
 *   p -= lr wd p  (decay[i] != 0 only; NULL decays every parameter),
 *   p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). */
void rcc_adamw_step(rcc_adamw_t *opt, float *params, const float *grads, double lr,
                    const uint8_t *decay);

/* Learning rate at update `step` (0-based) of `total`, as transformers'
 * get_cosine_schedule_with_warmup: base * step / warmup during the first `warmup` steps
 * (so step 0 runs at 0), then a half cosine from base down to 0 at `total`. */
double rcc_lr_warmup_cosine(double base, int64_t step, int64_t warmup, int64_t total);

/* Scales grads so that their global L2 norm is at most max_norm (max_norm <= 0: no
 * clipping); returns the norm before clipping, as torch.nn.utils.clip_grad_norm_ does. */
double rcc_clip_grad_norm(float *grads, int64_t n, double max_norm);
