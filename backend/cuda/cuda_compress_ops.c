/* The compression ops of the CUDA backend: thin SVD and Cholesky through cuSOLVER (float64,
 * the handle created once and kept in the backend's state), the pruning masks and scalings
 * through the kernels of cuda_compress_kernels.cu. The factorizations wait for the stream
 * to read cuSOLVER's devInfo; the masks and scalings are queued like every other op.
 *
 * Status: these ops have compiled and linked (CI has the CUDA toolkit but no GPU) but have
 * not yet run on a GPU. tests/gpu/test_backend_cuda_compress.c compares each of them with
 * the CPU reference of backend/cpu/cpu_compress_ops.c wherever a GPU is present.
 *
 * Row-major through column-major cuSOLVER, as in the CPU reference: a row-major (r,c)
 * buffer is the column-major (c,r) matrix, its transpose. */
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_compress_kernels.h"

const char *rcc_cusolver_status_name(cusolverStatus_t st) {
  switch (st) {
  case CUSOLVER_STATUS_SUCCESS: return "CUSOLVER_STATUS_SUCCESS";
  case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
  case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED (out of GPU memory)";
  case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
  case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
  case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
  case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
  case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
    return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
  case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
  case CUSOLVER_STATUS_INVALID_WORKSPACE: return "CUSOLVER_STATUS_INVALID_WORKSPACE";
  default: return "cuSOLVER error (see cusolver_common.h for the code)";
  }
}

static rcc_status_t bind_solver(cusolverDnHandle_t h, cudaStream_t stream) {
  RCC_CHECK_CUSOLVER(cusolverDnSetStream(h, stream));
  return RCC_OK;
}

/* The backend's cuSOLVER handle, created on first use and bound to the backend's stream.
 * It is stored only once bound, so a failed setup is retried by the next call. */
static rcc_status_t solver_of(rcc_backend_t be, cusolverDnHandle_t *out) {
  cuda_impl_t *c = impl_of(be);
  if (!c->cusolver) {
    cusolverDnHandle_t h = NULL;
    RCC_CHECK_CUSOLVER(cusolverDnCreate(&h));
    rcc_status_t st = bind_solver(h, c->stream);
    if (st != RCC_OK) {
      cusolverDnDestroy(h);
      return st;
    }
    c->cusolver = h;
  }
  *out = c->cusolver;
  return RCC_OK;
}

/* Scratch memory for one factorization: `doubles` doubles followed by one int for devInfo,
 * from the backend's own allocator (its caching pool where the device has one). */
static rcc_status_t workspace_alloc(rcc_backend_t be, size_t doubles, double **ws, int **info) {
  void *p = rcc_backend_alloc(be, doubles * sizeof(double) + sizeof(int));
  if (!p) return rcc_fail_context(RCC_ERR_NOMEM, "cuda_compress_ops.c: solver workspace");
  *ws = p;
  *info = (int *)(*ws + doubles);
  return RCC_OK;
}

/* Releases the workspace (ordered after the work queued in it) and passes `st` on. */
static rcc_status_t workspace_free(rcc_backend_t be, double *ws, rcc_status_t st) {
  rcc_backend_release(be, ws);
  return st;
}

/* Waits for the stream and copies cuSOLVER's devInfo to the host. */
static rcc_status_t read_info(cudaStream_t stream, const int *d_info, int *info) {
  RCC_CHECK_CUDA(cudaMemcpyAsync(info, d_info, sizeof *info, cudaMemcpyDeviceToHost, stream));
  RCC_CHECK_CUDA(cudaStreamSynchronize(stream));
  return RCC_OK;
}

/* Column-major out (rows,cols) = in^T, in being column-major (cols,rows). beta = 0 and
 * B = C (in place in C, which cuBLAS allows with transb N and ldb = ldc): C is only written. */
static rcc_status_t transpose_f64(cublasHandle_t cublas, int rows, int cols, const double *in,
                                  double *out) {
  const double one = 1.0, zero = 0.0;
  RCC_CHECK_CUBLAS(cublasDgeam(cublas, CUBLAS_OP_T, CUBLAS_OP_N, rows, cols, &one, in, cols, &zero,
                               out, rows, out, rows));
  return RCC_OK;
}

typedef struct {
  double *work; /* lwork doubles for cuSOLVER */
  int lwork;
  double *rwork;     /* k doubles: the unconverged superdiagonal when gesvd fails */
  double *T, *X, *Y; /* tall A only: A column-major (m,n), gesvd's U (m,k) and VT (k,n) */
  int *info;
} svd_workspace_t;

/* cusolverDnDgesvd needs a column-major matrix with at least as many rows as columns.
 *  - m <= n: the row-major A (m,n) is the column-major B = A^T (n,m), tall as is. gesvd
 *    gives B = X diag(S) Y^T, so A = Y diag(S) X^T: gesvd's U (n,k), column-major with
 *    leading dimension n, is exactly the row-major Vt (k,n), and its VT (k,m) with leading
 *    dimension k is exactly the row-major U (m,k). No copy; gesvd overwrites A.
 *  - m > n: B is wide, so A is transposed into T (column-major A (m,n)), and gesvd's
 *    A = X diag(S) Y^T gives U = X and Vt = Y^T, which are transposed back into the
 *    row-major outputs. */
static rcc_status_t svd_run(rcc_backend_t be, cusolverDnHandle_t h, int m, int n, double *A,
                            double *U, double *S, double *Vt, const svd_workspace_t *w) {
  cuda_impl_t *c = impl_of(be);
  const int k = m < n ? m : n;
  if (m <= n) {
    RCC_CHECK_CUSOLVER(cusolverDnDgesvd(h, 'S', 'S', n, m, A, n, S, Vt, n, U, k, w->work, w->lwork,
                                        w->rwork, w->info));
  } else {
    RCC_TRY(transpose_f64(c->cublas, m, n, A, w->T));
    RCC_CHECK_CUSOLVER(cusolverDnDgesvd(h, 'S', 'S', m, n, w->T, m, S, w->X, m, w->Y, k, w->work,
                                        w->lwork, w->rwork, w->info));
    RCC_TRY(transpose_f64(c->cublas, k, m, w->X, U));  /* column-major (k,m) = row-major U */
    RCC_TRY(transpose_f64(c->cublas, n, k, w->Y, Vt)); /* column-major (n,k) = row-major Vt */
  }
  int info = 0;
  RCC_TRY(read_info(c->stream, w->info, &info));
  if (info > 0)
    return rcc_fail(RCC_ERR_NUMERIC,
                    "cuda_compress_ops.c: rcc_cuda_svd_f64: gesvd did not converge on %d x %d "
                    "(%d superdiagonals left)",
                    m, n, info);
  if (info < 0)
    return rcc_fail(RCC_ERR_CUDA,
                    "cuda_compress_ops.c: rcc_cuda_svd_f64: gesvd rejected argument %d on %d x %d",
                    -info, m, n);
  return RCC_OK;
}

rcc_status_t rcc_cuda_svd_f64(rcc_backend_t be, int m, int n, double *A, double *U, double *S,
                              double *Vt) {
  ENTER(be);
  cusolverDnHandle_t h = NULL;
  RCC_TRY(solver_of(be, &h));
  const bool tall = m > n;
  const size_t k = (size_t)(m < n ? m : n);
  svd_workspace_t w = {0};
  RCC_CHECK_CUSOLVER(cusolverDnDgesvd_bufferSize(h, tall ? m : n, tall ? n : m, &w.lwork));
  const size_t copies = tall ? (size_t)m * n + (size_t)m * k + k * n : 0;
  double *ws = NULL;
  RCC_TRY(workspace_alloc(be, (size_t)w.lwork + k + copies, &ws, &w.info));
  w.work = ws;
  w.rwork = ws + w.lwork;
  if (tall) {
    w.T = w.rwork + k;
    w.X = w.T + (size_t)m * n;
    w.Y = w.X + (size_t)m * k;
  }
  return workspace_free(be, ws, svd_run(be, h, m, n, A, U, S, Vt, &w));
}

/* The row-major lower triangle is the column-major upper one (A symmetric), so cuSOLVER is
 * asked for the other triangle, as LAPACK is in the CPU reference. */
static cublasFillMode_t solver_fill(rcc_triangle_t tri) {
  return tri == RCC_TRIANGLE_LOWER ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
}

/* potrf and potri take the same arguments and report the same way; they differ in the op
 * that callers see in messages and in what a positive info says about the matrix. */
typedef struct {
  cusolverStatus_t (*run)(cusolverDnHandle_t, cublasFillMode_t, int, double *, int, double *, int,
                          int *);
  const char *op, *routine;
  const char *positive_info; /* printf format of op, n, n, info */
  /* The other triangle: zeroed after potrf; potri writes the inverse into the factor's
   * triangle only, so its mirror fills the rest. */
  bool mirror;
} potr_routine_t;

static const potr_routine_t potrf = {
    cusolverDnDpotrf, "rcc_cuda_cholesky_f64", "potrf",
    "cuda_compress_ops.c: %s: the %d x %d matrix is not positive definite: the leading minor "
    "of order %d is not",
    false};
static const potr_routine_t potri = {
    cusolverDnDpotri, "rcc_cuda_cholesky_inverse_f64", "potri",
    "cuda_compress_ops.c: %s: the %d x %d factor has a 0 at diagonal entry %d: the matrix is "
    "singular",
    true};

static rcc_status_t potr_run(cuda_impl_t *c, cusolverDnHandle_t h, const potr_routine_t *r, int n,
                             double *A, rcc_triangle_t tri, double *work, int lwork, int *d_info) {
  /* Not RCC_CHECK_CUSOLVER: its message would name the pointer, not the routine. */
  cusolverStatus_t st = r->run(h, solver_fill(tri), n, A, n, work, lwork, d_info);
  if (st != CUSOLVER_STATUS_SUCCESS)
    return rcc_fail(RCC_ERR_CUDA, "cuda_compress_ops.c: %s: %s failed: %s", r->op, r->routine,
                    rcc_cusolver_status_name(st));
  int info = 0;
  RCC_TRY(read_info(c->stream, d_info, &info));
  if (info > 0) return rcc_fail(RCC_ERR_NUMERIC, r->positive_info, r->op, n, n, info);
  if (info < 0)
    return rcc_fail(RCC_ERR_CUDA, "cuda_compress_ops.c: %s: %s rejected argument %d (n %d)", r->op,
                    r->routine, -info, n);
  RCC_CHECK_CUDA(
      rcc_cuda_fill_triangle_f64_launch(c->stream, A, n, tri == RCC_TRIANGLE_LOWER, r->mirror));
  return RCC_OK;
}

/* potrf and potri share their setup: the solver handle, the workspace size, the workspace. */
static rcc_status_t cholesky_op(rcc_backend_t be, int n, double *A, rcc_triangle_t tri,
                                bool inverse) {
  ENTER(be);
  cuda_impl_t *c = impl_of(be);
  cusolverDnHandle_t h = NULL;
  RCC_TRY(solver_of(be, &h));
  int lwork = 0;
  if (inverse)
    RCC_CHECK_CUSOLVER(cusolverDnDpotri_bufferSize(h, solver_fill(tri), n, A, n, &lwork));
  else
    RCC_CHECK_CUSOLVER(cusolverDnDpotrf_bufferSize(h, solver_fill(tri), n, A, n, &lwork));
  double *ws = NULL;
  int *d_info = NULL;
  RCC_TRY(workspace_alloc(be, (size_t)lwork, &ws, &d_info));
  return workspace_free(be, ws,
                        potr_run(c, h, inverse ? &potri : &potrf, n, A, tri, ws, lwork, d_info));
}

rcc_status_t rcc_cuda_cholesky_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri) {
  return cholesky_op(be, n, A, tri, false);
}

rcc_status_t rcc_cuda_cholesky_inverse_f64(rcc_backend_t be, int n, double *A, rcc_triangle_t tri) {
  return cholesky_op(be, n, A, tri, true);
}

rcc_status_t rcc_cuda_row_topk_mask(rcc_backend_t be, const float *scores, int m, int n, int keep,
                                    uint8_t *mask) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_row_topk_mask_launch(impl_of(be)->stream, scores, m, n, keep, mask));
  return RCC_OK;
}

rcc_status_t rcc_cuda_threshold_mask(rcc_backend_t be, const float *scores, int64_t count,
                                     float threshold, uint8_t *mask) {
  ENTER(be);
  RCC_CHECK_CUDA(
      rcc_cuda_threshold_mask_launch(impl_of(be)->stream, scores, count, threshold, mask));
  return RCC_OK;
}

rcc_status_t rcc_cuda_nm_mask(rcc_backend_t be, const float *scores, int m, int n, int N, int M,
                              uint8_t *mask) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_nm_mask_launch(impl_of(be)->stream, scores, m, n, N, M, mask));
  return RCC_OK;
}

rcc_status_t rcc_cuda_apply_mask(rcc_backend_t be, float *W, const uint8_t *mask, int64_t count) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_apply_mask_launch(impl_of(be)->stream, W, mask, count));
  return RCC_OK;
}

rcc_status_t rcc_cuda_scale_rows(rcc_backend_t be, float *W, const float *alpha, int m, int n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_scale_rows_launch(impl_of(be)->stream, W, alpha, m, n));
  return RCC_OK;
}
