/* Compute backend: one interface, chosen by name ("cpu", "cuda", "cuda:N", "auto").
 * All tensors are row-major, in the backend's memory (host memory for "cpu", device memory
 * for "cuda"); move data with rcc_backend_upload/download. They are float32, except for the
 * ops named *_f64 (float64, the precision of compress/'s factorizations) and the pruning
 * masks (uint8: 1 = kept, 0 = pruned).
 * Shapes in comments use fixed letters: N rows (tokens), C channels, T sequence,
 * H heads, B batch. Every op returns RCC_OK or an error recorded with rcc_fail(). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct rcc_backend *rcc_backend_t;

typedef enum { RCC_BACKEND_CPU, RCC_BACKEND_CUDA } rcc_backend_kind_t;

typedef enum {
  RCC_ACT_GELU,       /* exact erf GELU (HF "gelu") */
  RCC_ACT_GELU_TANH,  /* tanh approximation (HF "gelu_new", "gelu_pytorch_tanh") */
  RCC_ACT_QUICK_GELU, /* x * sigmoid(1.702 x) (HF "quick_gelu", OpenAI CLIP) */
  RCC_ACT_RELU,
} rcc_activation_t;

/* "auto" picks cuda:0 when a GPU is visible, else cpu (and logs that it fell back).
 * "cuda" on a build or machine without a GPU is an error with a clear message. */
rcc_status_t rcc_backend_init(rcc_backend_t *out, const char *name);
void rcc_backend_free(rcc_backend_t be);
/* Visible CUDA devices; 0 (not an error) without a CUDA build, driver or GPU. */
int rcc_backend_cuda_device_count(void);
rcc_backend_kind_t rcc_backend_kind(rcc_backend_t be);
/* Whether callers must treat the backend's memory as apart from the host's (upload,
 * download, no host pointer arithmetic on it): every backend but the CPU, and the CPU too
 * when the environment sets RCC_STAGES_ON_BACKEND=1. That switch lets the CPU-only tests
 * run the device code paths of the stages and of distillation, where upload and download
 * are plain copies, and compare them with the host paths. */
bool rcc_backend_device_path(rcc_backend_t be);
/* Human-readable description: "cpu (OpenBLAS 0.3.21, 2 threads)", "cuda:0 (NVIDIA H100)". */
const char *rcc_backend_describe(rcc_backend_t be);
/* The physical device, the same whatever CUDA_VISIBLE_DEVICES numbers it and on whatever
 * host or container: the GPU's UUID as nvidia-smi -L prints it ("GPU-1a2b3c4d-..."); ""
 * for the CPU. Tells whether two ranks share a GPU. */
const char *rcc_backend_device_id(rcc_backend_t be);
/* Threads used by the CPU backend's BLAS and own kernels (0 = leave the default). */
void rcc_backend_set_threads(rcc_backend_t be, int threads);

/* Memory in the backend's address space. alloc returns NULL (with rcc_fail) on failure. */
void *rcc_backend_alloc(rcc_backend_t be, size_t bytes);
void rcc_backend_release(rcc_backend_t be, void *ptr);
rcc_status_t rcc_backend_upload(rcc_backend_t be, void *dst, const void *host_src, size_t bytes);
rcc_status_t rcc_backend_download(rcc_backend_t be, void *host_dst, const void *src, size_t bytes);
rcc_status_t rcc_backend_synchronize(rcc_backend_t be);

/* C (M,N) = alpha * op(A) * op(B) + beta * C, row-major; op(A) is (M,K), op(B) is (K,N).
 * lda/ldb/ldc are row strides of A, B, C as stored. */
rcc_status_t rcc_gemm(rcc_backend_t be, bool trans_a, bool trans_b, int M, int N, int K,
                      float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc);
/* `batch` independent GEMMs; matrix i of A starts at A + i*stride_a (likewise B, C). */
rcc_status_t rcc_gemm_strided_batched(rcc_backend_t be, bool trans_a, bool trans_b, int M, int N,
                                      int K, float alpha, const float *A, int lda, int64_t stride_a,
                                      const float *B, int ldb, int64_t stride_b, float beta,
                                      float *C, int ldc, int64_t stride_c, int batch);

/* out (N,C) = (inp - mean) / sqrt(var + eps) * weight + bias, per row; out may equal inp. */
rcc_status_t rcc_layernorm(rcc_backend_t be, float *out, const float *inp, const float *weight,
                           const float *bias, int N, int C, float eps);
/* In-place softmax of each row of x (R,L) after multiplying by `scale`.
 * causal_T > 0: x holds (R/causal_T) blocks of (causal_T, L) scores and row t of each block
 * only sees columns 0..t (entries past t become 0). key_valid (may be NULL) is (R/rows_per_key, L)
 * with 0 for masked keys: row r uses key_valid[(r / rows_per_key) * L + j]. */
rcc_status_t rcc_softmax(rcc_backend_t be, float *x, int R, int L, float scale, int causal_T,
                         const uint8_t *key_valid, int rows_per_key);
/* In-place activation over n values. */
rcc_status_t rcc_activation(rcc_backend_t be, rcc_activation_t act, float *x, int64_t n);
/* x (N,C) += bias (C) broadcast over rows. */
rcc_status_t rcc_add_bias(rcc_backend_t be, float *x, const float *bias, int N, int C);
/* out = a + b over n values; out may alias a or b. */
rcc_status_t rcc_add(rcc_backend_t be, float *out, const float *a, const float *b, int64_t n);
/* x *= s over n values. */
rcc_status_t rcc_scale(rcc_backend_t be, float *x, float s, int64_t n);
/* Each row of x (N,C) divided by its L2 norm (rows of norm 0 stay 0). */
rcc_status_t rcc_l2_normalize_rows(rcc_backend_t be, float *x, int N, int C);

/* ---- Compression kernels: factorizations for low-rank and alpha, masks for pruning. ---- */

/* The calibration statistics of one layer input: H (d,d) += X^T X for X (N,d) float32,
 * computed in float64 (X is converted first, so every product is exact and only the sums
 * round). Only the upper triangle of the row-major H is updated; the strict lower triangle
 * is left as it was (mirror it once, after the last update). scratch: N*d doubles of the
 * backend's memory, overwritten. */
rcc_status_t rcc_backend_gram_f64(rcc_backend_t be, double *H, const float *X, int N, int d,
                                  double *scratch);

/* Which triangle of a row-major symmetric matrix holds the data. */
typedef enum { RCC_TRIANGLE_LOWER, RCC_TRIANGLE_UPPER } rcc_triangle_t;

/* Thin SVD: A (m,n) = U (m,k) diag(S) (k) Vt (k,n) with k = min(m,n), float64. S is
 * descending and >= 0; the columns of U and the rows of Vt are orthonormal (their signs are
 * whatever the solver gives: compare U diag(S) Vt, not U and Vt). A is destroyed (used as
 * the solver's input buffer); U, S and Vt must not overlap A or each other. On the CUDA
 * backend this op and the two Cholesky ops wait for their result (they read the solver's
 * status). */
rcc_status_t rcc_backend_svd_f64(rcc_backend_t be, int m, int n, double *A, double *U, double *S,
                                 double *Vt);

/* In-place Cholesky factorization of the symmetric positive definite A (n,n), float64.
 * Only the triangle `tri` of A is read. RCC_TRIANGLE_LOWER: A = L L^T, L is written to the
 * lower triangle; RCC_TRIANGLE_UPPER: A = R^T R, R is written to the upper triangle. The
 * other strict triangle is set to 0, so A is the triangular factor itself on return. Not
 * positive definite: RCC_ERR_NUMERIC naming the order of the first leading minor that is
 * not (A then holds partial results). */
rcc_status_t rcc_backend_cholesky_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri);
/* A (n,n) holds a factor from rcc_backend_cholesky_f64 with the same `tri` (only that
 * triangle is read); on return A holds the symmetric inverse of the factored matrix, both
 * triangles filled. A zero on the factor's diagonal: RCC_ERR_NUMERIC (singular). */
rcc_status_t rcc_backend_cholesky_inverse_f64(rcc_backend_t be, int n, double *A,
                                              rcc_triangle_t tri);

/* Order of scores in the mask ops (the same rule on every backend): by value, with -0 equal
 * to +0; a NaN ranks by its bit pattern (sign clear: above +inf; sign set: below -inf).
 * Among equal scores the higher index ranks higher, i.e. is kept first (the lower index is
 * pruned first, as in compress/prune.h). */

/* mask (m,n) = 1 for the keep_per_row highest-ranked scores (m,n) of each row, else 0:
 * exactly keep_per_row ones per row, 0 <= keep_per_row <= n, any n. */
rcc_status_t rcc_backend_row_topk_mask(rcc_backend_t be, const float *scores, int m, int n,
                                       int keep_per_row, uint8_t *mask);
/* mask (count) = 1 where |score| > threshold, strictly (|score| == threshold is pruned; NaN
 * scores are pruned). threshold must not be NaN. */
rcc_status_t rcc_backend_threshold_mask(rcc_backend_t be, const float *scores, int64_t count,
                                        float threshold, uint8_t *mask);
/* N:M structure: in each group of M consecutive scores of a row of scores (m,n), mask = 1
 * for the N highest-ranked and 0 for the other M - N. Needs 1 <= N <= M <=
 * RCC_BACKEND_NM_MAX_M (the work per score grows with M) and n % M == 0. */
#define RCC_BACKEND_NM_MAX_M 64
rcc_status_t rcc_backend_nm_mask(rcc_backend_t be, const float *scores, int m, int n, int N, int M,
                                 uint8_t *mask);
/* W (count) = mask ? W : +0 (a pruned entry becomes exactly +0, even when it was NaN). */
rcc_status_t rcc_backend_apply_mask(rcc_backend_t be, float *W, const uint8_t *mask, int64_t count);
/* Row i of W (m,n) *= alpha[i], alpha (m): the per-output-channel alpha scaling. */
rcc_status_t rcc_backend_scale_rows(rcc_backend_t be, float *W, const float *alpha, int m, int n);

/* ---- Dense linear algebra in float64 for the stages on the device. ----
 * What compress/lowrank_device.c and alpha_device.c need besides the factorizations above
 * so that the nullu and alphaedit stages run where the weights are (runner/stages.c). */

/* C (M,N) = alpha * op(A) * op(B) + beta * C in float64, row-major, as rcc_gemm. */
rcc_status_t rcc_backend_gemm_f64(rcc_backend_t be, bool trans_a, bool trans_b, int M, int N, int K,
                                  double alpha, const double *A, int lda, const double *B, int ldb,
                                  double beta, double *C, int ldc);
/* B (M,N) <- X, the solution of X op(T) = B (right) or op(T) X = B (left), float64,
 * row-major. T is triangular of order N (right) or M (left), row stride ldt; only its
 * triangle `tri` is read, diagonal included (non-unit). A solve, not a product with T^{-1}:
 * it is the accurate way to apply the inverse of a Cholesky factor. */
rcc_status_t rcc_backend_trsm_f64(rcc_backend_t be, bool right, rcc_triangle_t tri, bool trans,
                                  int M, int N, const double *T, int ldt, double *B, int ldb);
/* out (count) = (double)in: exact. */
rcc_status_t rcc_backend_f32_to_f64(rcc_backend_t be, double *out, const float *in, int64_t count);
/* out (count) = (float)in, rounded to nearest. */
rcc_status_t rcc_backend_f64_to_f32(rcc_backend_t be, float *out, const double *in, int64_t count);
/* out (m) = the dot products of the rows of A and B (m,n) float64: out[i] = sum_j A[i,j] B[i,j]
 * (the order of the sum is the backend's); n >= 1 when m > 0. */
rcc_status_t rcc_backend_row_dots_f64(rcc_backend_t be, double *out, const double *A,
                                      const double *B, int m, int n);
/* The pruning scores of W (m,n): scores = (float)(|W[i,j]| * col_scale[j]), the product in
 * float64 (col_scale (n) may be NULL: 1), and -1 where mask (m,n; may be NULL) is 0, so
 * that entries pruned before rank below every weight in the mask ops. col_scale >= 0. */
rcc_status_t rcc_backend_prune_scores(rcc_backend_t be, float *scores, const float *W,
                                      const double *col_scale, const uint8_t *mask, int m, int n);
/* The in-block column sweep of SparseGPT (compress/prune_sparsegpt.c), on `cols` columns
 * b0.. of a layer W (m, n) stored transposed, so that the backend walks each row of W with
 * loads that are contiguous across rows: Wt (cols, ldw) holds column b0 + i of W in its row
 * i, and maskt, errt (cols, m) use that layout with row stride m. Hinv: the (cols, cols)
 * diagonal block of the inverse-Hessian factor, row stride ldh, upper triangle read. Every
 * row r of W, independently, column by column in order i = 0, 1, ...:
 *   nm_n > 0 and i % nm_m == 0: the mask of the group i .. i + nm_m - 1 is chosen from the
 *     saliencies w^2 / Hinv[j,j]^2 of the weights as updated so far, the nm_m - nm_n of
 *     smallest (saliency, index) pruned; nm_n == 0: maskt is an input;
 *   kept: err = 0; pruned: err = e = w / Hinv[i,i], w = 0, and every later w_j of the block
 *     loses e * Hinv[i,j] (the product rounded, then the difference: the CUDA kernel does
 *     not fuse them, as an x86-64 host build does not, so the backends agree bit for bit).
 * Needs nm_n == 0 or 1 <= nm_n <= nm_m <= RCC_BACKEND_NM_MAX_M with cols % nm_m == 0. */
rcc_status_t rcc_backend_obs_sweep_f64(rcc_backend_t be, double *Wt, int ldw, uint8_t *maskt,
                                       double *errt, const double *Hinv, int ldh, int m, int cols,
                                       int nm_n, int nm_m);
