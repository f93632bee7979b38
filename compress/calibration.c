/* Accumulates H = X^T X per input site with a float64 rank-k update per batch, in the
 * backend's memory (rcc_backend_gram_f64), so that activations never leave the GPU. */
#include "compress/calibration.h"

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

static bool on_host(const rcc_calib_t *c) { return rcc_backend_kind(c->be) == RCC_BACKEND_CPU; }

/* The accumulator of site s in backend memory, starting from the zeros of H[s]. */
static rcc_status_t device_copy(rcc_calib_t *c, int s) {
  if (on_host(c)) {
    c->H_dev[s] = c->H[s];
    return RCC_OK;
  }
  const size_t bytes = (size_t)c->site_dim[s] * c->site_dim[s] * sizeof(double);
  if (!(c->H_dev[s] = rcc_backend_alloc(c->be, bytes)))
    return rcc_fail_context(RCC_ERR_NOMEM, "calibration matrix");
  return rcc_backend_upload(c->be, c->H_dev[s], c->H[s], bytes);
}

/* Frees the backend copies (nothing to free on the CPU, where they are H itself). */
static void release_device(rcc_calib_t *c) {
  for (int s = 0; c->H_dev && s < c->n_sites; s++) {
    if (c->H_dev[s] && !on_host(c)) rcc_backend_release(c->be, c->H_dev[s]);
    c->H_dev[s] = NULL;
  }
}

rcc_status_t rcc_calib_init(rcc_calib_t *c, rcc_clip_model_t *m, rcc_backend_t be,
                            const bool *selected) {
  const int n = rcc_clip_num_linears(m);
  *c = (rcc_calib_t){.n_linears = n, .be = be};
  c->site = malloc((size_t)n * sizeof *c->site);
  c->site_dim = calloc((size_t)n, sizeof *c->site_dim);
  c->H = calloc((size_t)n, sizeof *c->H);
  c->H_dev = calloc((size_t)n, sizeof *c->H_dev);
  c->rows = calloc((size_t)n, sizeof *c->rows);
  char(*keys)[160] = calloc((size_t)n, sizeof *keys);
  if (!c->site || !c->site_dim || !c->H || !c->H_dev || !c->rows || !keys) {
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
      rcc_status_t st =
          c->H[s]
              ? device_copy(c, s)
              : rcc_fail(RCC_ERR_NOMEM, "out of memory for a %dx%d calibration matrix", dim, dim);
      if (st != RCC_OK) {
        free(keys);
        rcc_calib_free(c);
        return st;
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
  release_device(c);
  for (int s = 0; c->H && s < c->n_sites; s++)
    free(c->H[s]);
  free(c->H);
  free(c->H_dev);
  free(c->site);
  free(c->site_dim);
  free(c->rows);
  if (c->scratch) rcc_backend_release(c->be, c->scratch);
  *c = (rcc_calib_t){0};
}

/* Scratch for n doubles in backend memory, kept across batches. */
static rcc_status_t grow_scratch(rcc_calib_t *c, size_t n) {
  if (n <= c->scratch_doubles) return RCC_OK;
  if (c->scratch) rcc_backend_release(c->be, c->scratch);
  c->scratch_doubles = 0;
  if (!(c->scratch = rcc_backend_alloc(c->be, n * sizeof(double))))
    return rcc_fail_context(RCC_ERR_NOMEM, "calibration scratch of %zu doubles", n);
  c->scratch_doubles = n;
  return RCC_OK;
}

static rcc_status_t hook(void *ctx, const rcc_linear_t *lin, const float *x, int N) {
  rcc_calib_t *c = ctx;
  int s = c->site[lin->index];
  if (s < 0) return RCC_OK;
  /* q, k and v arrive with the same x in a row: count it once, at the first of them. */
  if (lin->index > 0 && c->site[lin->index - 1] == s) return RCC_OK;
  const int d = c->site_dim[s];
  RCC_TRY(grow_scratch(c, (size_t)N * d));
  RCC_TRY(rcc_backend_gram_f64(c->be, c->H_dev[s], x, N, d, c->scratch));
  c->rows[s] += N;
  return RCC_OK;
}

void rcc_calib_attach(rcc_calib_t *c, rcc_clip_model_t *m) { rcc_clip_set_input_hook(m, hook, c); }
void rcc_calib_detach(rcc_clip_model_t *m) { rcc_clip_set_input_hook(m, NULL, NULL); }

rcc_status_t rcc_calib_finalize(rcc_calib_t *c, const rcc_comm_backend_t *comm) {
  for (int s = 0; s < c->n_sites; s++) {
    const int d = c->site_dim[s];
    const size_t dd = (size_t)d * d;
    if (comm) {
      RCC_TRY(rcc_comm_backend_allreduce(comm, c->H_dev[s], dd, RCC_DT_F64, RCC_OP_SUM));
      RCC_TRY(rcc_comm_allreduce(comm->host, &c->rows[s], 1, RCC_DT_I64, RCC_OP_SUM));
    }
    if (!on_host(c))
      RCC_TRY(rcc_backend_download(c->be, c->H[s], c->H_dev[s], dd * sizeof(double)));
    double *H = c->H[s];
    for (int i = 0; i < d; i++)
      for (int j = 0; j < i; j++)
        H[(size_t)i * d + j] = H[(size_t)j * d + i];
  }
  release_device(c);
  return RCC_OK;
}

const double *rcc_calib_H(const rcc_calib_t *c, int i, int *dim, int64_t *rows) {
  if (i < 0 || i >= c->n_linears || c->site[i] < 0) return NULL;
  int s = c->site[i];
  if (dim) *dim = c->site_dim[s];
  if (rows) *rows = c->rows[s];
  return c->H[s];
}
