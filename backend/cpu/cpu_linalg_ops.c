/* CPU float64 linear algebra for the stages on a backend (backend.h, last section): the
 * reference the CUDA versions are tested against. GEMM and the triangular solve are
 * OpenBLAS's row-major CBLAS; the conversions, row dots and pruning scores are plain
 * loops, OpenMP over rows once a matrix is large enough to pay for the thread team. */
#include <cblas.h>
#include <math.h>

#include "backend/cpu/cpu_compress_ops.h"

/* Below this many values a parallel region costs more than it saves (as in cpu_ops.c). */
#define PAR_MIN_VALUES ((int64_t)1 << 16)

rcc_status_t rcc_cpu_gemm_f64(rcc_backend_t be, bool ta, bool tb, int M, int N, int K, double alpha,
                              const double *A, int lda, const double *B, int ldb, double beta,
                              double *C, int ldc) {
  (void)be;
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
  return RCC_OK;
}

rcc_status_t rcc_cpu_trsm_f64(rcc_backend_t be, bool right, rcc_triangle_t tri, bool trans, int M,
                              int N, const double *T, int ldt, double *B, int ldb) {
  (void)be;
  cblas_dtrsm(CblasRowMajor, right ? CblasRight : CblasLeft,
              tri == RCC_TRIANGLE_LOWER ? CblasLower : CblasUpper,
              trans ? CblasTrans : CblasNoTrans, CblasNonUnit, M, N, 1.0, T, ldt, B, ldb);
  return RCC_OK;
}

rcc_status_t rcc_cpu_f32_to_f64(rcc_backend_t be, double *out, const float *in, int64_t count) {
  (void)be;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN_VALUES)
  for (int64_t i = 0; i < count; i++)
    out[i] = (double)in[i];
  return RCC_OK;
}

rcc_status_t rcc_cpu_f64_to_f32(rcc_backend_t be, float *out, const double *in, int64_t count) {
  (void)be;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN_VALUES)
  for (int64_t i = 0; i < count; i++)
    out[i] = (float)in[i];
  return RCC_OK;
}

rcc_status_t rcc_cpu_row_dots_f64(rcc_backend_t be, double *out, const double *A, const double *B,
                                  int m, int n) {
  (void)be;
#pragma omp parallel for schedule(static) if ((int64_t)m * n >= PAR_MIN_VALUES)
  for (int i = 0; i < m; i++) {
    const double *a = A + (size_t)i * n, *b = B + (size_t)i * n;
    double s = 0.0;
    for (int j = 0; j < n; j++)
      s += a[j] * b[j];
    out[i] = s;
  }
  return RCC_OK;
}

rcc_status_t rcc_cpu_prune_scores(rcc_backend_t be, float *scores, const float *W,
                                  const double *col_scale, const uint8_t *mask, int m, int n) {
  (void)be;
  const int64_t count = (int64_t)m * n;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN_VALUES)
  for (int64_t i = 0; i < count; i++) {
    const double c = col_scale ? col_scale[i % n] : 1.0;
    scores[i] = (mask && !mask[i]) ? -1.0f : (float)(fabs((double)W[i]) * c);
  }
  return RCC_OK;
}

/* Column by column over the block, rows innermost: the layout keeps a column's rows
 * contiguous, and each weight still sees its updates in the host loop's order. */
rcc_status_t rcc_cpu_obs_sweep_f64(rcc_backend_t be, double *Wt, int ldw, uint8_t *maskt,
                                   double *errt, const double *Hinv, int ldh, int m, int cols,
                                   int nm_n, int nm_m) {
  (void)be;
  for (int i = 0; i < cols; i++) {
    const double *h = Hinv + (size_t)i * ldh; /* row i of the block, read from column i */
    double *w = Wt + (size_t)i * ldw, *err = errt + (size_t)i * m;
    uint8_t *mk = maskt + (size_t)i * m;
    if (nm_n > 0 && i % nm_m == 0) {
#pragma omp parallel for schedule(static) if ((int64_t)m * nm_m * nm_m >= PAR_MIN_VALUES)
      for (int r = 0; r < m; r++) {
        double score[RCC_BACKEND_NM_MAX_M];
        for (int j = 0; j < nm_m; j++) {
          const double x = Wt[(size_t)(i + j) * ldw + r], d = Hinv[(size_t)(i + j) * ldh + i + j];
          score[j] = x * x / (d * d);
        }
        for (int j = 0; j < nm_m; j++) {
          int rank = 0;
          for (int k = 0; k < nm_m; k++)
            rank += score[k] < score[j] || (score[k] == score[j] && k < j);
          maskt[(size_t)(i + j) * m + r] = rank >= nm_m - nm_n;
        }
      }
    }
    for (int r = 0; r < m; r++) {
      err[r] = mk[r] ? 0.0 : w[r] / h[i];
      if (!mk[r]) w[r] = 0.0;
    }
#pragma omp parallel for schedule(static) if ((int64_t)m * (cols - i) >= PAR_MIN_VALUES)
    for (int j = i + 1; j < cols; j++) {
      double *wj = Wt + (size_t)j * ldw;
      const double hj = h[j];
      for (int r = 0; r < m; r++)
        if (!mk[r]) wj[r] -= err[r] * hj;
    }
  }
  return RCC_OK;
}
