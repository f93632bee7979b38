/* Accumulates H = X^T X per input site with a float64 rank-k update (dsyrk) per batch. */
#include "compress/calibration.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "…self_attn.q_proj" / k_proj / v_proj read one input: they share a site key. */
static void site_key(const char *name, char *key, size_t cap) {
  snprintf(key, cap, "%s", name);
  char *p = strstr(key, "self_attn.");
  if (p && (!strcmp(p, "self_attn.q_proj") || !strcmp(p, "self_attn.k_proj") ||
            !strcmp(p, "self_attn.v_proj")))
    strcpy(p, "self_attn.qkv");
}

rcc_status_t rcc_calib_init(rcc_calib_t *c, rcc_clip_model_t *m, rcc_backend_t be,
                            const bool *selected) {
  const int n = rcc_clip_num_linears(m);
  *c = (rcc_calib_t){.n_linears = n, .be = be};
  c->site = malloc((size_t)n * sizeof *c->site);
  c->site_dim = calloc((size_t)n, sizeof *c->site_dim);
  c->H = calloc((size_t)n, sizeof *c->H);
  c->rows = calloc((size_t)n, sizeof *c->rows);
  char(*keys)[160] = calloc((size_t)n, sizeof *keys);
  if (!c->site || !c->site_dim || !c->H || !c->rows || !keys) {
    free(keys);
    rcc_calib_free(c);
    return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    c->site[i] = -1;
    site_key(rcc_clip_linear(m, i)->name, keys[i], sizeof keys[i]);
  }
  /* A site is collected when any layer reading it is selected. */
  for (int i = 0; i < n; i++) {
    if (!selected[i]) continue;
    int s = -1;
    for (int j = 0; j < i && s < 0; j++)
      if (c->site[j] >= 0 && !strcmp(keys[j], keys[i])) s = c->site[j];
    if (s < 0) {
      s = c->n_sites++;
      int dim = rcc_clip_linear(m, i)->in_features;
      c->site_dim[s] = dim;
      c->H[s] = calloc((size_t)dim * dim, sizeof(double));
      if (!c->H[s]) {
        free(keys);
        rcc_calib_free(c);
        return rcc_fail(RCC_ERR_NOMEM, "out of memory for a %dx%d calibration matrix", dim, dim);
      }
    }
    c->site[i] = s;
  }
  /* Siblings of a selected layer share its site even when not selected themselves. */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n && c->site[i] < 0; j++)
      if (c->site[j] >= 0 && !strcmp(keys[j], keys[i])) c->site[i] = c->site[j];
  free(keys);
  return RCC_OK;
}

void rcc_calib_free(rcc_calib_t *c) {
  for (int s = 0; c->H && s < c->n_sites; s++)
    free(c->H[s]);
  free(c->H);
  free(c->site);
  free(c->site_dim);
  free(c->rows);
  free(c->staging);
  free(c->xd);
  *c = (rcc_calib_t){0};
}

static rcc_status_t grow(void **buf, size_t *cap, size_t bytes) {
  if (bytes <= *cap) return RCC_OK;
  void *p = realloc(*buf, bytes);
  if (!p) return rcc_fail(RCC_ERR_NOMEM, "out of memory for calibration (%zu bytes)", bytes);
  *buf = p;
  *cap = bytes;
  return RCC_OK;
}

static rcc_status_t hook(void *ctx, const rcc_linear_t *lin, const float *x, int N) {
  rcc_calib_t *c = ctx;
  int s = c->site[lin->index];
  if (s < 0) return RCC_OK;
  /* q, k and v arrive with the same x in a row: count it once, at the first of them. */
  if (lin->index > 0 && c->site[lin->index - 1] == s) return RCC_OK;
  const int d = c->site_dim[s];
  const size_t n = (size_t)N * d;
  const float *host = x;
  if (rcc_backend_kind(c->be) != RCC_BACKEND_CPU) {
    RCC_TRY(grow((void **)&c->staging, &c->staging_cap, n * sizeof(float)));
    RCC_TRY(rcc_backend_download(c->be, c->staging, x, n * sizeof(float)));
    host = c->staging;
  }
  RCC_TRY(grow((void **)&c->xd, &c->xd_cap, n * sizeof(double)));
  for (size_t i = 0; i < n; i++)
    c->xd[i] = host[i];
  /* H (upper) += X^T X, X (N, d) */
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, N, 1.0, c->xd, d, 1.0, c->H[s], d);
  c->rows[s] += N;
  return RCC_OK;
}

void rcc_calib_attach(rcc_calib_t *c, rcc_clip_model_t *m) { rcc_clip_set_input_hook(m, hook, c); }
void rcc_calib_detach(rcc_clip_model_t *m) { rcc_clip_set_input_hook(m, NULL, NULL); }

rcc_status_t rcc_calib_finalize(rcc_calib_t *c, rcc_comm_t comm) {
  for (int s = 0; s < c->n_sites; s++) {
    const int d = c->site_dim[s];
    if (comm) {
      RCC_TRY(rcc_comm_allreduce(comm, c->H[s], (size_t)d * d, RCC_DT_F64, RCC_OP_SUM));
      RCC_TRY(rcc_comm_allreduce(comm, &c->rows[s], 1, RCC_DT_I64, RCC_OP_SUM));
    }
    double *H = c->H[s];
    for (int i = 0; i < d; i++)
      for (int j = 0; j < i; j++)
        H[(size_t)i * d + j] = H[(size_t)j * d + i];
  }
  return RCC_OK;
}

const double *rcc_calib_H(const rcc_calib_t *c, int i, int *dim, int64_t *rows) {
  if (i < 0 || i >= c->n_linears || c->site[i] < 0) return NULL;
  int s = c->site[i];
  if (dim) *dim = c->site_dim[s];
  if (rows) *rows = c->rows[s];
  return c->H[s];
}
