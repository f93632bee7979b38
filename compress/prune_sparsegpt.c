/* SparseGPT (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately
 * Pruned in One-Shot"), following its reference implementation's algorithm in double:
 * Hinv = upper Cholesky factor of (H + damping)^-1 (by one Cholesky and one triangular
 * inverse, see inverse_factor); columns in blocks; a block's mask from
 * the OBS saliency W^2 / diag(Hinv)^2; inside the block each pruned weight's error is
 * spread over the row's later columns of the block (OBS update, row by row: rows are
 * independent, which is what lets them run in parallel), then the block's errors update
 * all later columns at once with one dgemm (the "lazy batch" update). */
#include <cblas.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

#include "compress/prune.h"
#include "compress/blas_threads.h"

static const char *const WHERE = "prune_sparsegpt.c: rcc_prune_sparsegpt";

/* Reverses a flat array: on an (n, n) matrix that is J A J, J the exchange matrix. */
static void reverse(double *a, int64_t count) {
  for (int64_t i = 0, j = count - 1; i < j; i++, j--) {
    const double t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/* Hinv (n, n) holds H on entry and, on return, the row-major upper Cholesky factor U of
 * H^-1 (H^-1 = U^T U) in its upper triangle; the strict lower triangle is left over and
 * never read. Dead inputs (H_jj == 0) get H_jj = 1 and their column of Wd (m, n) is zeroed,
 * as the reference does, so that H is invertible and those weights, which never see a
 * non-zero input, are dropped.
 *
 * The reference computes U as chol(H) -> H^-1 -> upper chol(H^-1) (4/3 n^3 flops); the
 * same U costs half: with J H J = M M^T (lower Cholesky factor M), H = R R^T for the upper
 * R = J M J, so H^-1 = R^-T R^-1 and U = R^-1 = J M^-1 J (upper, positive diagonal, hence
 * the unique factor). LAPACK is called column-major on the row-major array with 'U':
 * column-major upper is row-major lower, so nothing is transposed. */
static rcc_status_t inverse_factor(double *Hinv, double *Wd, int m, int n, double damp_percent) {
  double mean_diag = 0.0;
  for (int j = 0; j < n; j++) {
    double *d = Hinv + (int64_t)j * n + j;
    if (*d == 0.0) {
      *d = 1.0;
      for (int r = 0; r < m; r++)
        Wd[(int64_t)r * n + j] = 0.0;
    }
    mean_diag += *d;
  }
  const double damp = damp_percent * mean_diag / n;
  for (int j = 0; j < n; j++)
    Hinv[(int64_t)j * n + j] += damp;
  reverse(Hinv, (int64_t)n * n);                                       /* J H J */
  lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', n, Hinv, n); /* row-major M */
  if (info != 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "%s: H + %g I is not positive definite (dpotrf info %d, damping %g)", WHERE,
                    damp, (int)info, damp_percent);
  info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'U', 'N', n, Hinv, n); /* row-major M^-1 */
  if (info != 0)
    return rcc_fail(RCC_ERR_NUMERIC, "%s: inverting the Cholesky factor failed (dtrtri info %d)",
                    WHERE, (int)info);
  reverse(Hinv, (int64_t)n * n); /* U = J M^-1 J */
  return RCC_OK;
}

/* OBS sweep of one row over the block's `cols` columns starting at column b0.
 * w: the row's block (cols), mk: its mask (cols; given when unstructured, chosen here
 * group by group for N:M), err: (w - q) / d per column (cols), Hinv row-major (n, n). */
static void sweep_row(double *w, uint8_t *mk, double *err, const double *Hinv, int n, int b0,
                      int cols, rcc_nm_t nm) {
  for (int i = 0; i < cols; i++) {
    const double *h = Hinv + (int64_t)(b0 + i) * n + b0; /* row b0+i of Hinv, from b0 */
    if (nm.n > 0 && i % nm.m == 0) {
      /* The group's scores use the weights as updated by the columns before it. */
      double score[RCC_NM_MAX_M];
      for (int j = 0; j < nm.m; j++) {
        const double d = Hinv[(int64_t)(b0 + i + j) * n + b0 + i + j];
        score[j] = w[i + j] * w[i + j] / (d * d);
      }
      rcc_mask_nm(mk + i, score, nm.m, nm);
    }
    if (mk[i]) {
      err[i] = 0.0; /* q = w: nothing to compensate */
      continue;
    }
    const double e = w[i] / h[i];
    err[i] = e;
    w[i] = 0.0;
    for (int j = i + 1; j < cols; j++)
      w[j] -= e * h[j];
  }
}

rcc_status_t rcc_sparsegpt_check(const float *W, const uint8_t *mask, int m, int n, const double *H,
                                 double sparsity, rcc_nm_t nm, int block_size, double damp_percent,
                                 const char *where) {
  if (!W || !mask || !H || m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "%s: need W, mask, H and m, n >= 1 (got %d x %d)", where, m, n);
  RCC_TRY(rcc_sparsity_check(sparsity, where));
  RCC_TRY(rcc_nm_check(nm, n, where));
  if (block_size < 1 || (nm.n > 0 && block_size % nm.m != 0))
    return rcc_fail(RCC_ERR_ARG, "%s: block size %d must be >= 1 and a multiple of M = %d", where,
                    block_size, nm.m);
  if (!(damp_percent >= 0.0))
    return rcc_fail(RCC_ERR_ARG, "%s: damping %g is negative or NaN", where, damp_percent);
  RCC_TRY(rcc_check_finite_f32(W, (int64_t)m * n, where));
  RCC_TRY(rcc_check_finite_f64(H, (int64_t)n * n, where));
  return RCC_OK;
}

rcc_status_t rcc_prune_sparsegpt(float *W, uint8_t *mask, int m, int n, const double *H,
                                 double sparsity, rcc_nm_t nm, int block_size,
                                 double damp_percent) {
  RCC_TRY(rcc_sparsegpt_check(W, mask, m, n, H, sparsity, nm, block_size, damp_percent, WHERE));

  const int B = block_size < n ? block_size : n;
  const size_t mn = (size_t)m * n, mb = (size_t)m * B;
  double *Wd = malloc(mn * sizeof *Wd);                /* (m, n) weights being pruned */
  double *Hinv = malloc((size_t)n * n * sizeof *Hinv); /* (n, n) */
  double *err = malloc(mb * sizeof *err);              /* (m, B) block errors */
  double *score = malloc(mb * sizeof *score);          /* (m, B) block saliencies */
  double *scratch = malloc(mb * sizeof *scratch);      /* (m, B) for the selection */
  uint8_t *bmask = malloc(mb);                         /* (m, B) block mask */
  rcc_status_t st = RCC_OK;
  if (!Wd || !Hinv || !err || !score || !scratch || !bmask) {
    st = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory (%d x %d, H %d x %d)", WHERE, m, n, n, n);
    goto done;
  }
  for (size_t i = 0; i < mn; i++)
    Wd[i] = (double)W[i];
  memcpy(Hinv, H, (size_t)n * n * sizeof *Hinv);
  int blas = rcc_blas_threads_widen();
  st = inverse_factor(Hinv, Wd, m, n, damp_percent);
  rcc_blas_threads_restore(blas);
  if (st != RCC_OK) goto done;

  for (int b0 = 0; b0 < n; b0 += B) {
    const int cols = n - b0 < B ? n - b0 : B, b1 = b0 + cols;
    if (nm.n == 0) {
      /* One threshold over the whole block, all rows: the lowest fraction is pruned. */
      for (int r = 0; r < m; r++)
        for (int j = 0; j < cols; j++) {
          const double w = Wd[(int64_t)r * n + b0 + j];
          const double d = Hinv[(int64_t)(b0 + j) * n + b0 + j];
          score[(int64_t)r * cols + j] = w * w / (d * d);
        }
      rcc_mask_lowest(bmask, score, (int64_t)m * cols, rcc_prune_count(sparsity, (int64_t)m * cols),
                      scratch);
    }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < m; r++)
      sweep_row(Wd + (int64_t)r * n + b0, bmask + (int64_t)r * cols, err + (int64_t)r * cols, Hinv,
                n, b0, cols, nm);
    for (int r = 0; r < m; r++)
      memcpy(mask + (int64_t)r * n + b0, bmask + (int64_t)r * cols, (size_t)cols);
    /* Later columns: W[:, b1:] -= Err (m, cols) @ Hinv[b0:b1, b1:] (cols, n - b1). */
    if (b1 < n) {
      blas = rcc_blas_threads_widen();
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n - b1, cols, -1.0, err, cols,
                  Hinv + (int64_t)b0 * n + b1, n, 1.0, Wd + b1, n);
      rcc_blas_threads_restore(blas);
    }
  }
  for (size_t i = 0; i < mn; i++)
    W[i] = mask[i] ? (float)Wd[i] : 0.0f;

done:
  free(Wd);
  free(Hinv);
  free(err);
  free(score);
  free(scratch);
  free(bmask);
  return st;
}
