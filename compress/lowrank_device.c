/* nullu methods svd, whitened and residual on a backend (twins of lowrank_svd.c,
 * lowrank_whitened.c and lowrank_residual.c). The SVD is always the exact float64 one
 * (rcc_backend_svd_f64, gesvd on cuSOLVER): no randomized path on the device. cuSOLVER's gesvd on
 * the ViT-B/32 shapes (768 x 768, 3072 x 768, 768 x 3072) is expected to be fast enough for one
 * layer at a time
 * -- to be measured on a GPU. Only the spectrum (k values), the row energies (m values) and
 * the factors cross to the host; the rank rule is rcc_rank_select, as on the host. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/device.h"

/* The truncated factorisation of dA (m, n) float64 on the backend (destroyed): the energy
 * rule on its spectrum, U = U_r Sigma_r and V = Vt_r, or V = Vt_r L^{-1} when dL (n, n,
 * lower triangular, upper triangle zero) is given. */
static rcc_status_t factor_on(rcc_dev_bufs_t *bufs, double *dA, int m, int n, const double *dL,
                              const rcc_rank_rule_t *rule, rcc_lowrank_t *out,
                              double *discarded_energy) {
  rcc_backend_t be = bufs->be;
  const int k = m < n ? m : n;
  double *h = malloc(((size_t)m * k + (size_t)m + (size_t)k) * sizeof *h);
  float *Uf = NULL, *Vf = NULL;
  double *dU = rcc_dev_alloc(bufs, (size_t)m * k * sizeof *dU);
  double *dS = rcc_dev_alloc(bufs, (size_t)m * sizeof *dS); /* k <= m values */
  double *dVt = rcc_dev_alloc(bufs, (size_t)k * n * sizeof *dVt);
  float *dVf = rcc_dev_alloc(bufs, (size_t)k * n * sizeof *dVf);
  if (!h)
    return rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_device.c: host buffers for %d x %d", m, n);
  double *U = h, *S = h + (size_t)m * k, *rows = S + k;
  rcc_status_t st = (dU && dS && dVt && dVf) ? RCC_OK : RCC_ERR_NOMEM; /* alloc said why */
  /* ||A||_F^2 before the SVD destroys A; dS holds the row energies meanwhile. */
  if (st == RCC_OK) st = rcc_backend_row_dots_f64(be, dS, dA, dA, m, n);
  if (st == RCC_OK) st = rcc_backend_download(be, rows, dS, (size_t)m * sizeof *rows);
  double energy = 0.0;
  for (int i = 0; st == RCC_OK && i < m; i++)
    energy += rows[i];
  if (st == RCC_OK) st = rcc_backend_svd_f64(be, m, n, dA, dU, dS, dVt);
  if (st == RCC_OK) st = rcc_backend_download(be, S, dS, (size_t)k * sizeof *S);
  int r = 0;
  if (st == RCC_OK) {
    r = rcc_rank_select(S, k, energy, rule);
    if (discarded_energy) {
      double tail = 0.0;
      for (int j = r; j < k; j++)
        tail += S[j] * S[j];
      *discarded_energy = tail;
    }
  }
  /* V (r, n) <- Vt_r L^{-1} by a triangular solve, as the host does. */
  if (st == RCC_OK && dL)
    st = rcc_backend_trsm_f64(be, true, RCC_TRIANGLE_LOWER, false, r, n, dL, n, dVt, n);
  if (st == RCC_OK) st = rcc_backend_f64_to_f32(be, dVf, dVt, (int64_t)r * n);
  if (st == RCC_OK &&
      /* + 1: rank 0 (a zero residual) must not read as out of memory from malloc(0) */
      (!(Uf = malloc(((size_t)m * r + 1) * sizeof *Uf)) ||
       !(Vf = malloc(((size_t)r * n + 1) * sizeof *Vf))))
    st = rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_device.c: factors of rank %d for %d x %d", r, m,
                  n);
  if (st == RCC_OK) st = rcc_backend_download(be, Vf, dVf, (size_t)r * n * sizeof *Vf);
  if (st == RCC_OK) st = rcc_backend_download(be, U, dU, (size_t)m * k * sizeof *U);
  if (st == RCC_OK) {
    for (size_t i = 0; i < (size_t)m; i++)
      for (int j = 0; j < r; j++)
        Uf[i * r + j] = (float)(U[i * k + j] * S[j]);
    *out = (rcc_lowrank_t){.m = m, .n = n, .rank = r, .U = Uf, .V = Vf};
  } else {
    free(Uf);
    free(Vf);
  }
  free(h);
  return st;
}

/* *dA (m, n) float64 on the backend, from the host float W. */
static rcc_status_t upload_as_double(rcc_dev_bufs_t *bufs, const float *W, int m, int n,
                                     double **dA) {
  const size_t count = (size_t)m * n;
  float *dW = rcc_dev_alloc(bufs, count * sizeof *dW);
  *dA = rcc_dev_alloc(bufs, count * sizeof **dA);
  if (!dW || !*dA) return RCC_ERR_NOMEM; /* rcc_backend_alloc has said why */
  RCC_TRY(rcc_backend_upload(bufs->be, dW, W, count * sizeof *W));
  return rcc_backend_f32_to_f64(bufs->be, *dA, dW, (int64_t)count);
}

/* *dA (m, n) float64 on the backend, a copy of the host A. */
static rcc_status_t upload_doubles(rcc_dev_bufs_t *bufs, const double *A, int m, int n,
                                   double **dA) {
  const size_t count = (size_t)m * n;
  if (!(*dA = rcc_dev_alloc(bufs, count * sizeof **dA))) return RCC_ERR_NOMEM;
  return rcc_backend_upload(bufs->be, *dA, A, count * sizeof *A);
}

static rcc_status_t check_args(rcc_backend_t be, const float *W, int m, int n,
                               const rcc_rank_rule_t *rule, const rcc_lowrank_t *out,
                               const char *fn) {
  if (!be || !W || !out)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_device.c: %s: be, W or out is NULL", fn);
  if (m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_device.c: %s of a %d x %d matrix", fn, m, n);
  return rcc_rank_rule_check(rule);
}

rcc_status_t rcc_lowrank_svd_on(rcc_backend_t be, const float *W, int m, int n,
                                const rcc_rank_rule_t *rule, rcc_lowrank_t *out,
                                double *discarded_energy) {
  RCC_TRY(check_args(be, W, m, n, rule, out, "rcc_lowrank_svd_on"));
  memset(out, 0, sizeof *out);
  rcc_dev_bufs_t bufs = {.be = be};
  double *dA = NULL;
  rcc_status_t st = upload_as_double(&bufs, W, m, n, &dA);
  if (st == RCC_OK) st = factor_on(&bufs, dA, m, n, NULL, rule, out, discarded_energy);
  rcc_dev_release(&bufs);
  return st;
}

/* L (n, n) on the backend: the lower Cholesky factor of H + damp * mean(diag H) * I, upper
 * triangle zero (what rcc_backend_cholesky_f64 leaves), with the host twin's messages. */
static rcc_status_t damped_cholesky_on(rcc_dev_bufs_t *bufs, const double *H, int n, double damp,
                                       double **dL) {
  const size_t nn = (size_t)n * n;
  /* The damped copy is made on the host: n^2 additions against the n^3 factorization. */
  double *Hd = malloc(nn * sizeof *Hd);
  if (!Hd) return rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_device.c: copy of H (%d x %d)", n, n);
  rcc_status_t st = rcc_damped_copy(H, n, damp, Hd);
  if (st == RCC_OK && !(*dL = rcc_dev_alloc(bufs, nn * sizeof **dL))) st = RCC_ERR_NOMEM;
  if (st == RCC_OK) st = rcc_backend_upload(bufs->be, *dL, Hd, nn * sizeof *Hd);
  free(Hd);
  if (st != RCC_OK) return st;
  st = rcc_backend_cholesky_f64(bufs->be, n, *dL, RCC_TRIANGLE_LOWER);
  if (st == RCC_ERR_NUMERIC)
    return rcc_fail_context(st, "compress/lowrank_device.c: H + %g * mean(diag H) * I; raise damp",
                            damp);
  return st;
}

/* The whitened factorisation of the float W (A_d NULL) or of the float64 A_d (m, n). */
static rcc_status_t whitened_on(rcc_backend_t be, const float *W, const double *A_d, int m, int n,
                                const double *H, double damp, const rcc_rank_rule_t *rule,
                                rcc_lowrank_t *out) {
  if (!H) return rcc_fail(RCC_ERR_ARG, "compress/lowrank_device.c: H is NULL");
  if (!(damp >= 0.0) || !isfinite(damp))
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_device.c: damp %g", damp);
  memset(out, 0, sizeof *out);
  rcc_dev_bufs_t bufs = {.be = be};
  double *dL = NULL, *dAL = NULL;
  rcc_status_t st = damped_cholesky_on(&bufs, H, n, damp, &dL);
  double *dA = NULL;
  if (st == RCC_OK)
    st = W ? upload_as_double(&bufs, W, m, n, &dA) : upload_doubles(&bufs, A_d, m, n, &dA);
  if (st == RCC_OK && !(dAL = rcc_dev_alloc(&bufs, (size_t)m * n * sizeof *dAL)))
    st = RCC_ERR_NOMEM;
  /* A L with the full square L: its upper triangle is zero, and a GEMM into a separate
   * buffer is what every backend has (the host uses an in-place TRMM). */
  if (st == RCC_OK)
    st = rcc_backend_gemm_f64(be, false, false, m, n, n, 1.0, dA, n, dL, n, 0.0, dAL, n);
  if (st == RCC_OK) st = factor_on(&bufs, dAL, m, n, dL, rule, out, NULL);
  rcc_dev_release(&bufs);
  return st;
}

rcc_status_t rcc_lowrank_whitened_on(rcc_backend_t be, const float *W, int m, int n,
                                     const double *H, double damp, const rcc_rank_rule_t *rule,
                                     rcc_lowrank_t *out) {
  RCC_TRY(check_args(be, W, m, n, rule, out, "rcc_lowrank_whitened_on"));
  return whitened_on(be, W, NULL, m, n, H, damp, rule, out);
}

rcc_status_t rcc_lowrank_residual_on(rcc_backend_t be, const float *W, const float *S, int m, int n,
                                     const double *H, double damp, const rcc_rank_rule_t *rule,
                                     rcc_lowrank_t *out) {
  if (!S) return rcc_fail(RCC_ERR_ARG, "compress/lowrank_device.c: S is NULL");
  RCC_TRY(check_args(be, W, m, n, rule, out, "rcc_lowrank_residual_on"));
  /* R = W - S in float64 on the host: as many bytes to upload as W and S in float32, and
   * the difference is then the host twin's exactly. */
  const size_t count = (size_t)m * n;
  double *R = malloc(count * sizeof *R);
  if (!R) return rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_device.c: residual of %d x %d", m, n);
  for (size_t i = 0; i < count; i++)
    R[i] = (double)W[i] - (double)S[i];
  rcc_status_t st;
  if (H) {
    st = whitened_on(be, NULL, R, m, n, H, damp, rule, out);
  } else {
    memset(out, 0, sizeof *out);
    rcc_dev_bufs_t bufs = {.be = be};
    double *dA = NULL;
    st = upload_doubles(&bufs, R, m, n, &dA);
    if (st == RCC_OK) st = factor_on(&bufs, dA, m, n, NULL, rule, out, NULL);
    rcc_dev_release(&bufs);
  }
  free(R);
  return st;
}
