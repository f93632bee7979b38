/* CPU compression kernels, the reference the CUDA backend is tested against: thin SVD and
 * Cholesky through LAPACKE (float64, as compress/), and the pruning masks and scalings as
 * plain loops, OpenMP over rows once a matrix is large enough to pay for the thread team.
 *
 * Row-major through column-major LAPACK without copies: a row-major (r,c) buffer is, to
 * LAPACK, the column-major (c,r) matrix, i.e. the transpose. LAPACKE's LAPACK_ROW_MAJOR
 * would copy every matrix twice to undo that; the transposes are folded into the formulas
 * instead (see each function). */
#include "backend/cpu/cpu_compress_ops.h"

#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Below this many values a parallel region costs more than it saves (as in cpu_ops.c). */
#define PAR_MIN_VALUES ((int64_t)1 << 16)

/* What a negative LAPACKE info means: a memory error of LAPACKE's own work arrays, or an
 * invalid argument, which for checked sizes means the NaN check of the input failed. */
static rcc_status_t lapack_arg_error(lapack_int info, const char *where, const char *routine, int m,
                                     int n) {
  if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
    return rcc_fail(RCC_ERR_NOMEM, "cpu_compress_ops.c: %s: %s out of memory for %d x %d", where,
                    routine, m, n);
  return rcc_fail(RCC_ERR_NUMERIC,
                  "cpu_compress_ops.c: %s: %s rejected argument %d on %d x %d (NaN or Inf in the "
                  "matrix?)",
                  where, routine, (int)-info, m, n);
}

/* LAPACK sees the row-major A (m,n) as B = A^T (n,m), column-major with leading dimension
 * n. dgesdd gives B = X diag(S) Y^T with X (n,k) and Y^T (k,m) column-major, so
 * A = Y diag(S) X^T: Y^T stored column-major with leading dimension k is exactly U (m,k)
 * row-major, and X stored column-major with leading dimension n is exactly Vt (k,n)
 * row-major. dgesdd handles a wide B itself (an LQ step first), so neither orientation
 * needs a transposed copy. A is LAPACK's input and is overwritten. */
rcc_status_t rcc_cpu_svd_f64(rcc_backend_t be, int m, int n, double *A, double *U, double *S,
                             double *Vt) {
  const int k = m < n ? m : n;
  lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', n, m, A, n, S, Vt, n, U, k);
  if (info > 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "cpu_compress_ops.c: rcc_cpu_svd_f64: dgesdd did not converge on %d x %d "
                    "(info %d)",
                    m, n, (int)info);
  if (info < 0) return lapack_arg_error(info, "rcc_cpu_svd_f64", "dgesdd", m, n);
  return RCC_OK;
}

/* The row-major lower triangle is LAPACK's column-major upper triangle (A symmetric). */
static char lapack_uplo(rcc_triangle_t tri) { return tri == RCC_TRIANGLE_LOWER ? 'U' : 'L'; }

/* Sets the strict triangle opposite `tri` of A (n,n): to 0 (mirror false) or to the
 * transposed entries of the triangle `tri` (mirror true). */
static void fill_other_triangle(double *A, int n, rcc_triangle_t tri, bool mirror) {
#pragma omp parallel for schedule(static) if ((int64_t)n * n >= PAR_MIN_VALUES)
  for (int i = 0; i < n; i++) {
    /* Row i of the other triangle: columns i+1..n-1 (lower kept) or 0..i-1 (upper kept). */
    const int lo = tri == RCC_TRIANGLE_LOWER ? i + 1 : 0;
    const int hi = tri == RCC_TRIANGLE_LOWER ? n : i;
    for (int j = lo; j < hi; j++)
      A[(size_t)i * n + j] = mirror ? A[(size_t)j * n + i] : 0.0;
  }
}

/* Column-major dpotrf with the flipped triangle: 'U' factors B = R^T R with R upper in
 * column-major, which read row-major is L = R^T lower with A = L L^T (likewise 'L'). The
 * leading minors of A and A^T are the same, so info names A's own minor. */
rcc_status_t rcc_cpu_cholesky_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri) {
  lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, lapack_uplo(tri), n, A, n);
  if (info > 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "cpu_compress_ops.c: rcc_cpu_cholesky_f64: the %d x %d matrix is not "
                    "positive definite: the leading minor of order %d is not",
                    n, n, (int)info);
  if (info < 0) return lapack_arg_error(info, "rcc_cpu_cholesky_f64", "dpotrf", n, n);
  fill_other_triangle(A, n, tri, false);
  return RCC_OK;
}

/* dpotri writes the inverse into the factor's triangle only; the mirror fills the rest. */
rcc_status_t rcc_cpu_cholesky_inverse_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri) {
  lapack_int info = LAPACKE_dpotri(LAPACK_COL_MAJOR, lapack_uplo(tri), n, A, n);
  if (info > 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "cpu_compress_ops.c: rcc_cpu_cholesky_inverse_f64: diagonal entry %d of the "
                    "%d x %d factor is 0: the matrix is singular",
                    (int)info, n, n);
  if (info < 0) return lapack_arg_error(info, "rcc_cpu_cholesky_inverse_f64", "dpotri", n, n);
  fill_other_triangle(A, n, tri, true);
  return RCC_OK;
}

/* backend.h's order of scores as an unsigned key, larger = ranks higher. Flipping every bit
 * of a negative float and only the sign bit of a positive one makes unsigned order follow
 * float order; -0 is made +0 first so that the two zeros tie, as they compare equal. */
static uint32_t score_key(float x) {
  if (x == 0.0f) x = 0.0f;
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

/* The score key with the tie rule below it: among equal scores the higher index j gets the
 * larger key (compress/prune.h prunes the lower index first). Keys of distinct indices are
 * distinct, so "the k largest keys" is exact. */
static uint64_t rank_key(float x, int j) { return (uint64_t)score_key(x) << 32 | (uint32_t)j; }

static int descending_u64(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x < y) - (x > y);
}

/* Sets out[j] for the `keep` scores of s (n) with the largest rank keys, clears the rest:
 * sorted descending (in keys, n of scratch), the keep-th key is the smallest that stays. */
static void keep_highest(const float *s, int n, int keep, uint64_t *keys, uint8_t *out) {
  for (int j = 0; j < n; j++)
    keys[j] = rank_key(s[j], j);
  qsort(keys, (size_t)n, sizeof *keys, descending_u64);
  const uint64_t weakest_kept = keys[keep - 1];
  for (int j = 0; j < n; j++)
    out[j] = rank_key(s[j], j) >= weakest_kept;
}

/* Per row: the keep highest-ranked scores of the row. */
rcc_status_t rcc_cpu_row_topk_mask(rcc_backend_t be, const float *scores, int m, int n, int keep,
                                   uint8_t *mask) {
  if (keep == 0 || keep == n) {
    memset(mask, keep == n, (size_t)m * n);
    return RCC_OK;
  }
  const int threads = omp_get_max_threads();
  uint64_t *scratch = malloc((size_t)threads * n * sizeof *scratch); /* one row per thread */
  if (!scratch)
    return rcc_fail(RCC_ERR_NOMEM, "cpu_compress_ops.c: rcc_cpu_row_topk_mask: %d rows of %d keys",
                    threads, n);
#pragma omp parallel for schedule(static) num_threads(threads) if ((int64_t)m * n >= PAR_MIN_VALUES)
  for (int i = 0; i < m; i++) {
    const float *s = scores + (size_t)i * n;
    uint8_t *out = mask + (size_t)i * n;
    keep_highest(s, n, keep, scratch + (size_t)omp_get_thread_num() * n, out);
  }
  free(scratch);
  return RCC_OK;
}

rcc_status_t rcc_cpu_threshold_mask(rcc_backend_t be, const float *scores, int64_t count,
                                    float threshold, uint8_t *mask) {
#pragma omp parallel for schedule(static) if (count >= PAR_MIN_VALUES)
  for (int64_t i = 0; i < count; i++)
    mask[i] = fabsf(scores[i]) > threshold; /* false for NaN */
  return RCC_OK;
}

/* The N highest-ranked scores of each group of M stay. Row-major groups never straddle
 * rows (n % M == 0), so the matrix is count/M groups in a row. */
rcc_status_t rcc_cpu_nm_mask(rcc_backend_t be, const float *scores, int m, int n, int N, int M,
                             uint8_t *mask) {
  const int64_t count = (int64_t)m * n;
#pragma omp parallel for schedule(static) if (count * M >= PAR_MIN_VALUES)
  for (int64_t g = 0; g < count; g += M) {
    uint64_t keys[RCC_BACKEND_NM_MAX_M]; /* backend.c has checked M against it */
    keep_highest(scores + g, M, N, keys, mask + g);
  }
  return RCC_OK;
}

rcc_status_t rcc_cpu_apply_mask(rcc_backend_t be, float *W, const uint8_t *mask, int64_t count) {
#pragma omp parallel for schedule(static) if (count >= PAR_MIN_VALUES)
  for (int64_t i = 0; i < count; i++)
    if (!mask[i]) W[i] = 0.0f; /* not W * 0: that keeps NaN and gives -0 */
  return RCC_OK;
}

rcc_status_t rcc_cpu_scale_rows(rcc_backend_t be, float *W, const float *alpha, int m, int n) {
#pragma omp parallel for schedule(static) if ((int64_t)m * n >= PAR_MIN_VALUES)
  for (int i = 0; i < m; i++) {
    float *row = W + (size_t)i * n;
    for (int j = 0; j < n; j++)
      row[j] *= alpha[i];
  }
  return RCC_OK;
}
