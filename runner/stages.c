/* Stage application per layer. Each stage reads the layer as the previous stages left it
 * (W_eff = diag(alpha) (S + U V)) and writes a new factored form:
 *   dare      prunes W_eff into a sparse S (any low-rank part is folded into what it prunes);
 *   nullu     svd/whitened replace the layer by U V of W_eff; residual keeps a sparse S and
 *             fits U V to what pruning removed, W0 - S (OATS);
 *   alphaedit keeps S and U V and fits alpha so that diag(alpha) (S + U V) x matches the
 *             original W0 x on the calibration data. */
#include "runner/stages.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/alpha.h"
#include "compress/device.h"
#include "compress/lowrank.h"
#include "compress/prune.h"

void rcc_stage_soften(const rcc_stage_t *stage, int level, rcc_stage_t *out) {
  *out = *stage;
  double a = ldexp(1.0, -level); /* aggressiveness factor: 1, 1/2, 1/4, ... */
  switch (stage->kind) {
  case RCC_STAGE_DARE: {
    rcc_dare_config_t *c = &out->config.dare;
    if (c->pattern_m > 0) {
      /* keep n of m: move n half way towards m per level (2:4 -> 3:4 -> 4:4) */
      for (int l = 0; l < level; l++)
        c->pattern_n += (c->pattern_m - c->pattern_n + 1) / 2;
    } else {
      c->target_sparsity *= a;
    }
    break;
  }
  case RCC_STAGE_NULLU: {
    rcc_nullu_config_t *c = &out->config.nullu;
    c->energy_threshold = 1.0 - (1.0 - c->energy_threshold) * a;
    c->rank_reduction_ratio = fmin(1.0, c->rank_reduction_ratio / a);
    break;
  }
  case RCC_STAGE_ALPHAEDIT:
    /* a larger ridge keeps alpha closer to 1, i.e. closer to the previous stage's layer */
    out->config.alphaedit.regularization = stage->config.alphaedit.regularization / a;
    break;
  }
}

bool rcc_stage_needs_calibration(const rcc_stage_t *stage) {
  switch (stage->kind) {
  case RCC_STAGE_DARE:
    return stage->config.dare.method == RCC_DARE_METHOD_WANDA ||
           stage->config.dare.method == RCC_DARE_METHOD_SPARSEGPT;
  case RCC_STAGE_NULLU: return stage->config.nullu.method != RCC_NULLU_METHOD_SVD;
  case RCC_STAGE_ALPHAEDIT: return true;
  }
  return false;
}

/* ---- dare ---- */

static rcc_status_t apply_dare(const rcc_dare_config_t *c, const rcc_layer_input_t *in,
                               rcc_backend_t be, const rcc_factored_t *cur, rcc_factored_t *out) {
  const int m = in->m, n = in->n;
  const size_t mn = (size_t)m * n;
  *out = (rcc_factored_t){.m = m, .n = n};
  out->S = malloc(mn * sizeof *out->S);
  out->mask = malloc(mn);
  if (!out->S || !out->mask) {
    rcc_factored_free(out);
    return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", in->name);
  }
  rcc_factored_dense(cur, out->S);
  /* Entries an earlier dare stage pruned stay pruned. */
  for (size_t i = 0; i < mn; i++)
    out->mask[i] = cur->mask ? cur->mask[i] : 1;
  const rcc_nm_t nm = {c->pattern_n, c->pattern_m};
  const double *H = in->H;
  double *col_sq = NULL;
  rcc_status_t st = RCC_OK;
  switch (c->method) {
  case RCC_DARE_METHOD_MAGNITUDE:
    if (c->scope == RCC_SCOPE_GLOBAL) {
      st = be ? rcc_prune_threshold_on(be, out->S, out->mask, (int64_t)mn, in->global_threshold)
              : rcc_prune_threshold(out->S, out->mask, (int64_t)mn, in->global_threshold);
      break;
    }
    for (int it = 1; it <= c->num_iterations && st == RCC_OK; it++) {
      double s =
          nm.m ? 0.0
               : rcc_schedule_sparsity(c->schedule, c->target_sparsity, it, c->num_iterations);
      st = be ? rcc_prune_magnitude_on(be, out->S, out->mask, m, n, s, nm, c->rescale)
              : rcc_prune_magnitude(out->S, out->mask, m, n, s, nm, c->rescale);
    }
    break;
  case RCC_DARE_METHOD_DARE:
    st = rcc_prune_dare(out->S, in->W_base, out->mask, m, n, c->target_sparsity, in->seed);
    /* DARE drops deltas, not weights: the layer is W_base + a sparse delta, dense on its own.
     * Stored without the base, it is counted as dense (the honest count). */
    free(out->mask);
    out->mask = NULL;
    break;
  case RCC_DARE_METHOD_WANDA:
    if (!(col_sq = malloc((size_t)n * sizeof *col_sq))) {
      st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
      break;
    }
    for (int j = 0; j < n; j++)
      col_sq[j] = H[(size_t)j * n + j];
    st = be ? rcc_prune_wanda_on(be, out->S, out->mask, m, n, col_sq, c->target_sparsity, nm)
            : rcc_prune_wanda(out->S, out->mask, m, n, col_sq, c->target_sparsity, nm);
    break;
  case RCC_DARE_METHOD_SPARSEGPT:
    st = be ? rcc_prune_sparsegpt_on(be, out->S, out->mask, m, n, H, c->target_sparsity, nm,
                                     c->block_size, c->damp_percent)
            : rcc_prune_sparsegpt(out->S, out->mask, m, n, H, c->target_sparsity, nm, c->block_size,
                                  c->damp_percent);
    break;
  }
  free(col_sq);
  if (st != RCC_OK) {
    rcc_factored_free(out);
    return rcc_fail_context(st, "%s", in->name);
  }
  return RCC_OK;
}

/* ---- nullu ---- */

static rcc_status_t apply_nullu(const rcc_nullu_config_t *c, const rcc_layer_input_t *in,
                                rcc_backend_t be, const rcc_factored_t *cur, rcc_factored_t *out) {
  const int m = in->m, n = in->n;
  const size_t mn = (size_t)m * n;
  const rcc_rank_rule_t rule = {c->energy_threshold, c->rank_reduction_ratio, c->min_rank};
  rcc_lowrank_t lr = {0};
  rcc_status_t st;
  *out = (rcc_factored_t){.m = m, .n = n};
  if (c->method == RCC_NULLU_METHOD_RESIDUAL && cur->S && cur->mask) {
    /* sparse + low rank: keep S, fit U V to what pruning removed from the original */
    st = be ? rcc_lowrank_residual_on(be, in->W0, cur->S, m, n, in->H, c->damp_percent, &rule, &lr)
            : rcc_lowrank_residual(in->W0, cur->S, m, n, in->H, c->damp_percent, &rule, &lr);
    if (st == RCC_OK && (!(out->S = malloc(mn * sizeof *out->S)) || !(out->mask = malloc(mn))))
      st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
    if (st == RCC_OK) {
      memcpy(out->S, cur->S, mn * sizeof *out->S);
      memcpy(out->mask, cur->mask, mn);
    }
  } else {
    float *W = malloc(mn * sizeof *W);
    if (!W) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    rcc_factored_dense(cur, W);
    const bool plain =
        c->method == RCC_NULLU_METHOD_SVD || (c->method == RCC_NULLU_METHOD_RESIDUAL && !in->H);
    if (plain)
      st = be ? rcc_lowrank_svd_on(be, W, m, n, &rule, &lr, NULL)
              : rcc_lowrank_svd(W, m, n, &rule, &lr, NULL);
    else
      st = be ? rcc_lowrank_whitened_on(be, W, m, n, in->H, c->damp_percent, &rule, &lr)
              : rcc_lowrank_whitened(W, m, n, in->H, c->damp_percent, &rule, &lr);
    free(W);
  }
  if (st != RCC_OK) {
    rcc_lowrank_free(&lr);
    rcc_factored_free(out);
    return rcc_fail_context(st, "%s", in->name);
  }
  /* A factorisation that stores as much as the layer it replaces saves nothing and only
   * loses accuracy: cap the rank where it stops paying, and keep the layer as it was when
   * not even rank 1 pays. */
  const int64_t budget = out->S ? (int64_t)mn - rcc_factored_nnz(out) : rcc_factored_params(cur);
  const int64_t per_rank = (int64_t)m + n;
  const int cap = budget > 0 ? (int)((budget - 1) / per_rank) : 0;
  if (cap < 1) {
    rcc_lowrank_free(&lr);
    rcc_factored_free(out);
    return rcc_factored_copy(out, cur);
  }
  if (lr.rank > cap) rcc_lowrank_truncate(&lr, cap);
  out->rank = lr.rank;
  out->U = lr.U;
  out->V = lr.V;
  return RCC_OK;
}

/* ---- alphaedit ---- */

static rcc_status_t apply_alphaedit(const rcc_alphaedit_config_t *c, const rcc_layer_input_t *in,
                                    rcc_backend_t be, const rcc_factored_t *cur,
                                    rcc_factored_t *out) {
  const int m = in->m, n = in->n;
  RCC_TRY(rcc_factored_copy(out, cur));
  free(out->alpha);
  out->alpha = NULL;
  float *W_hat = malloc((size_t)m * n * sizeof *W_hat);
  float *alpha = malloc((size_t)m * sizeof *alpha);
  double *P = NULL;
  rcc_status_t st = (W_hat && alpha) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  if (st == RCC_OK) rcc_factored_dense(out, W_hat); /* S + U V, without the old alpha */
  if (st == RCC_OK && c->null_space && be) {
    int null_dim;
    st = rcc_alpha_null_space_on(be, in->W0, W_hat, m, n, in->H, c->null_space_energy,
                                 c->regularization, alpha, &null_dim);
  } else if (st == RCC_OK && c->null_space) {
    int null_dim;
    if (!(P = malloc((size_t)n * n * sizeof *P))) st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
    if (st == RCC_OK) st = rcc_null_space_projector(in->H, n, c->null_space_energy, P, &null_dim);
    if (st == RCC_OK)
      st =
          rcc_alpha_closed_form_null_space(in->W0, W_hat, m, n, in->H, P, c->regularization, alpha);
  } else if (st == RCC_OK) {
    st = be ? rcc_alpha_closed_form_on(be, in->W0, W_hat, m, n, in->H, c->regularization, alpha)
            : rcc_alpha_closed_form(in->W0, W_hat, m, n, in->H, c->regularization, alpha);
  }
  free(W_hat);
  free(P);
  if (st != RCC_OK) {
    free(alpha);
    rcc_factored_free(out);
    return rcc_fail_context(st, "%s", in->name);
  }
  out->alpha = alpha;
  return RCC_OK;
}

rcc_status_t rcc_stage_apply(const rcc_stage_t *stage, const rcc_layer_input_t *in,
                             const rcc_factored_t *cur, rcc_factored_t *out) {
  if (rcc_stage_needs_calibration(stage) && !in->H)
    return rcc_fail(RCC_ERR_ARG, "%s: stage needs calibration statistics", in->name);
  /* The device path (compress/device.h) where the backend asks for it; else the host path,
   * whose results are the published ones. */
  const rcc_backend_t be = in->be && rcc_backend_device_path(in->be) ? in->be : NULL;
  rcc_status_t st;
  switch (stage->kind) {
  case RCC_STAGE_DARE: st = apply_dare(&stage->config.dare, in, be, cur, out); break;
  case RCC_STAGE_NULLU: st = apply_nullu(&stage->config.nullu, in, be, cur, out); break;
  case RCC_STAGE_ALPHAEDIT: st = apply_alphaedit(&stage->config.alphaedit, in, be, cur, out); break;
  default: st = rcc_fail(RCC_ERR_ARG, "unknown stage kind"); break;
  }
  return st;
}
