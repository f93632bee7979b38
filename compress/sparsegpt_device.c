/* dare method sparsegpt on a backend, the twin of prune_sparsegpt.c (its header tells the
 * algorithm). The O(n^3) factor and the O(m n B) sweeps and lazy-batch GEMMs run on the
 * backend; the O(m n) and O(n^2) preparations (dead inputs, damping, the transposes) and
 * the unstructured block selection run on the host:
 *  - the factor: chol(H) -> H^-1 -> upper chol(H^-1) through the backend's Cholesky ops,
 *    the reference's three steps (the host's cheaper route needs a triangular inverse and
 *    a flip that the backend does not have); the factor is unique, so only rounding differs;
 *  - W lives transposed on the backend, Wt (n, m): a block of columns is then one
 *    contiguous range, and the sweep kernel's rows are coalesced (rcc_backend_obs_sweep_f64);
 *  - unstructured selection: one threshold over a block of m * B float64 saliencies with
 *    the host's tie order. The backend's selections rank float32 scores, whose rounding
 *    could reorder near ties, so the block comes to the host (m B doubles, against the
 *    m n B flops of the GEMM that follows) and rcc_mask_lowest picks as the host twin does.
 *    N:M groups are chosen inside the sweep on the backend, in float64. */
#include <stdlib.h>
#include <string.h>

#include "compress/device.h"

static const char *const WHERE = "sparsegpt_device.c: rcc_prune_sparsegpt_on";

/* Hd (n, n): H with dead inputs (H_jj == 0) set to 1 and damp_percent * mean(diag H) added
 * to the diagonal, in the host twin's order of sums; dead (n) flags those inputs. */
static void damp_hessian(const double *H, int n, double damp_percent, double *Hd, uint8_t *dead) {
  memcpy(Hd, H, (size_t)n * n * sizeof *Hd);
  double mean_diag = 0.0;
  for (int j = 0; j < n; j++) {
    double *d = Hd + (size_t)j * n + j;
    dead[j] = *d == 0.0;
    if (dead[j]) *d = 1.0;
    mean_diag += *d;
  }
  const double damp = damp_percent * mean_diag / n;
  for (int j = 0; j < n; j++)
    Hd[(size_t)j * n + j] += damp;
}

/* dU (n, n) on the backend: the upper factor U of (Hd)^-1 = U^T U, lower triangle zero. */
static rcc_status_t inverse_factor_on(rcc_backend_t be, double *dU, int n, double damp_percent) {
  rcc_status_t st = rcc_backend_cholesky_f64(be, n, dU, RCC_TRIANGLE_LOWER);
  if (st == RCC_OK) st = rcc_backend_cholesky_inverse_f64(be, n, dU, RCC_TRIANGLE_LOWER);
  if (st == RCC_OK) st = rcc_backend_cholesky_f64(be, n, dU, RCC_TRIANGLE_UPPER);
  if (st == RCC_ERR_NUMERIC)
    return rcc_fail_context(st, "%s: H + %g * mean(diag H) * I is not positive definite", WHERE,
                            damp_percent);
  return st;
}

/* The host-side buffers of one call. */
typedef struct {
  double *Wt;      /* (n, m) the weights, transposed */
  uint8_t *maskt;  /* (n, m) the mask, transposed */
  double *U;       /* (n, n) the factor, for its diagonal (unstructured only) */
  double *blk;     /* (B, m) one block of Wt (unstructured only) */
  double *score;   /* (m, B) */
  double *scratch; /* (m, B) */
  uint8_t *bmask;  /* (m, B) */
  uint8_t *dead;   /* (n) */
} host_bufs_t;

static void host_free(host_bufs_t *h) {
  free(h->Wt);
  free(h->maskt);
  free(h->U);
  free(h->blk);
  free(h->score);
  free(h->scratch);
  free(h->bmask);
  free(h->dead);
}

/* The unstructured mask of block b0 (cols columns) into dMaskt: the host twin's saliencies
 * in its order (row-major over the block, rows of W first) and its selection. */
static rcc_status_t select_block(rcc_backend_t be, host_bufs_t *h, const double *dWt,
                                 uint8_t *dMaskt, int m, int n, int b0, int cols, double sparsity) {
  const size_t count = (size_t)m * cols;
  RCC_TRY(rcc_backend_download(be, h->blk, dWt + (size_t)b0 * m, count * sizeof *h->blk));
  for (int r = 0; r < m; r++)
    for (int j = 0; j < cols; j++) {
      const double w = h->blk[(size_t)j * m + r], d = h->U[(size_t)(b0 + j) * n + b0 + j];
      h->score[(size_t)r * cols + j] = w * w / (d * d);
    }
  rcc_mask_lowest(h->bmask, h->score, (int64_t)count, rcc_prune_count(sparsity, (int64_t)count),
                  h->scratch);
  uint8_t *mt = h->maskt + (size_t)b0 * m;
  for (int r = 0; r < m; r++)
    for (int j = 0; j < cols; j++)
      mt[(size_t)j * m + r] = h->bmask[(size_t)r * cols + j];
  return rcc_backend_upload(be, dMaskt + (size_t)b0 * m, mt, count);
}

rcc_status_t rcc_prune_sparsegpt_on(rcc_backend_t be, float *W, uint8_t *mask, int m, int n,
                                    const double *H, double sparsity, rcc_nm_t nm, int block_size,
                                    double damp_percent) {
  if (!be) return rcc_fail(RCC_ERR_ARG, "%s: NULL backend", WHERE);
  RCC_TRY(rcc_sparsegpt_check(W, mask, m, n, H, sparsity, nm, block_size, damp_percent, WHERE));

  const int B = block_size < n ? block_size : n;
  const size_t mn = (size_t)m * n, nn = (size_t)n * n, mb = (size_t)m * B;
  const bool unstructured = nm.n == 0;
  host_bufs_t h = {
      .Wt = malloc(mn * sizeof *h.Wt),
      .maskt = malloc(mn),
      .U = malloc(nn * sizeof *h.U), /* first the damped H, then the factor */
      .blk = unstructured ? malloc(mb * sizeof *h.blk) : NULL,
      .score = unstructured ? malloc(mb * sizeof *h.score) : NULL,
      .scratch = unstructured ? malloc(mb * sizeof *h.scratch) : NULL,
      .bmask = unstructured ? malloc(mb) : NULL,
      .dead = malloc((size_t)n),
  };
  rcc_dev_bufs_t bufs = {.be = be};
  rcc_status_t st = RCC_OK;
  if (!h.Wt || !h.maskt || !h.U || !h.dead ||
      (unstructured && (!h.blk || !h.score || !h.scratch || !h.bmask))) {
    st = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory (%d x %d, H %d x %d)", WHERE, m, n, n, n);
    goto done;
  }
  double *dWt = rcc_dev_alloc(&bufs, mn * sizeof *dWt);
  double *dU = rcc_dev_alloc(&bufs, nn * sizeof *dU);
  double *dErr = rcc_dev_alloc(&bufs, mb * sizeof *dErr); /* (B, m) one block's errors */
  uint8_t *dMaskt = rcc_dev_alloc(&bufs, mn);
  if (!dWt || !dU || !dErr || !dMaskt) {
    st = RCC_ERR_NOMEM; /* rcc_backend_alloc has said why */
    goto done;
  }
  damp_hessian(H, n, damp_percent, h.U, h.dead);
  /* Weights of dead inputs never see a non-zero input: zeroed, hence pruned first. */
  for (int j = 0; j < n; j++)
    for (int r = 0; r < m; r++)
      h.Wt[(size_t)j * m + r] = h.dead[j] ? 0.0 : (double)W[(size_t)r * n + j];
  st = rcc_backend_upload(be, dU, h.U, nn * sizeof *dU);
  if (st == RCC_OK) st = rcc_backend_upload(be, dWt, h.Wt, mn * sizeof *dWt);
  if (st == RCC_OK) st = inverse_factor_on(be, dU, n, damp_percent);
  if (st == RCC_OK && unstructured) st = rcc_backend_download(be, h.U, dU, nn * sizeof *h.U);

  for (int b0 = 0; b0 < n && st == RCC_OK; b0 += B) {
    const int cols = n - b0 < B ? n - b0 : B, b1 = b0 + cols;
    if (unstructured) st = select_block(be, &h, dWt, dMaskt, m, n, b0, cols, sparsity);
    if (st == RCC_OK)
      st = rcc_backend_obs_sweep_f64(be, dWt + (size_t)b0 * m, m, dMaskt + (size_t)b0 * m, dErr,
                                     dU + (size_t)b0 * n + b0, n, m, cols, nm.n, nm.m);
    /* Later columns, transposed: Wt[b1:] -= Hinv[b0:b1, b1:]^T (n - b1, cols) Err^T (cols, m). */
    if (st == RCC_OK && b1 < n)
      st = rcc_backend_gemm_f64(be, true, false, n - b1, m, cols, -1.0, dU + (size_t)b0 * n + b1, n,
                                dErr, m, 1.0, dWt + (size_t)b1 * m, m);
  }
  if (st == RCC_OK) st = rcc_backend_download(be, h.Wt, dWt, mn * sizeof *h.Wt);
  if (st == RCC_OK) st = rcc_backend_download(be, h.maskt, dMaskt, mn);
  if (st == RCC_OK)
    for (int r = 0; r < m; r++)
      for (int j = 0; j < n; j++) {
        const size_t t = (size_t)j * m + r, i = (size_t)r * n + j;
        mask[i] = h.maskt[t];
        W[i] = mask[i] ? (float)h.Wt[t] : 0.0f;
      }

done:
  rcc_dev_release(&bufs);
  host_free(&h);
  return st;
}
