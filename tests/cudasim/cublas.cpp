/* cudasim's cuBLAS: the routines of include/cublas_v2.h, by the semantics of NVIDIA's cuBLAS
 * documentation, computed on the CPU by OpenBLAS (column-major cblas).
 *
 * Each call does what the real library does before it launches anything: it validates its
 * arguments (an invalid one returns CUBLAS_STATUS_INVALID_VALUE and queues nothing), reads
 * *alpha and *beta (host pointer mode: the caller's variables may be gone when the work
 * runs), checks that every matrix it will touch lies inside one device allocation (so an
 * out-of-bounds leading dimension or a host pointer is reported by name), then queues the
 * computation on the handle's stream. BLAS's "not referenced" rules are kept: beta == 0
 * overwrites C without reading it (NaN there disappears, as on a GPU), alpha == 0 or k == 0
 * leaves A and B unread. CUBLAS_TF32_TENSOR_OP_MATH and the deprecated CUBLAS_TENSOR_OP_MATH
 * round single-precision GEMM inputs to TF32 / FP16, so precision loss shows on the CPU. */
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <type_traits>
#include <vector>

#include "cudasim_internal.hpp"
#include <cublas_v2.h>

struct cudasim_cublas {
  cudaStream_t stream = nullptr; /* cuBLAS's default: the legacy default stream */
  unsigned math = CUBLAS_DEFAULT_MATH;
};

namespace {

std::mutex registry_mutex;

std::set<cublasHandle_t> &live_handles() {
  static std::set<cublasHandle_t> handles;
  return handles;
}

/* NULL is CUBLAS_STATUS_NOT_INITIALIZED, as documented. Any other pointer that is not a
 * live handle (destroyed, or never created) is undefined behaviour in cuBLAS: report it. */
bool live(cublasHandle_t h, const char *what) {
  if (!h) return false;
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (!live_handles().count(h))
    cudasim::fatal("%s: %p is not a live cuBLAS handle (destroyed, or never created)", what,
                   static_cast<void *>(h));
  return true;
}

bool valid_op(cublasOperation_t op) {
  return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;
}

bool valid_fill(cublasFillMode_t uplo) {
  return uplo == CUBLAS_FILL_MODE_LOWER || uplo == CUBLAS_FILL_MODE_UPPER;
}

/* For real data CUBLAS_OP_C is the transpose. */
CBLAS_TRANSPOSE to_cblas(cublasOperation_t op) {
  return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans;
}

CBLAS_UPLO to_cblas(cublasFillMode_t uplo) {
  return uplo == CUBLAS_FILL_MODE_LOWER ? CblasLower : CblasUpper;
}

/* Elements from the first to one past the last of a column-major rows x cols matrix with
 * leading dimension ld: what a routine touches, whichever triangle it reads. */
std::size_t extent(int rows, int cols, int ld) {
  if (rows <= 0 || cols <= 0) return 0;
  return std::size_t(ld) * std::size_t(cols - 1) + std::size_t(rows);
}

template <typename T>
void require_matrix(const char *fn, const char *arg, const T *p, int rows, int cols, int ld) {
  char what[96];
  snprintf(what, sizeof what, "%s: %s", fn, arg);
  cudasim::require_device_range(p, extent(rows, cols, ld) * sizeof(T), what);
}

/* Every batch of a strided operand, as one span: from the lowest batch's first element to
 * the highest batch's last (strides may be 0, or negative). */
template <typename T>
void require_batched(const char *fn, const char *arg, const T *p, int rows, int cols, int ld,
                     long long stride, int batches) {
  const std::size_t one = extent(rows, cols, ld);
  if (one == 0 || batches == 0) return;
  long long last;
  if (__builtin_mul_overflow(stride, (long long)(batches - 1), &last))
    cudasim::fatal("%s: %s: stride %lld x %d batches overflows", fn, arg, stride, batches);
  const long long lo = std::min(0LL, last), hi = std::max(0LL, last) + (long long)one;
  char what[96];
  snprintf(what, sizeof what, "%s: %s (all %d batches)", fn, arg, batches);
  const auto start =
      reinterpret_cast<std::uintptr_t>(p) + std::uintptr_t(lo * (long long)sizeof(T));
  cudasim::require_device_range(reinterpret_cast<const void *>(start),
                                std::size_t(hi - lo) * sizeof(T), what);
}

/* Host pointer mode: the scalar is read now, on the host. A device pointer here would be
 * read as garbage (or fault) by the real library; say what went wrong instead. */
template <typename T> T host_scalar(const T *p, const char *fn, const char *arg) {
  const void *base;
  std::size_t size;
  if (cudasim::find_allocation(p, &base, &size))
    cudasim::fatal("%s: %s points to device memory, but the pointer mode is "
                   "CUBLAS_POINTER_MODE_HOST (cudasim emulates only that mode)",
                   fn, arg);
  return *p;
}

/* C = beta C over a rows x cols block; beta == 0 writes zeros without reading C. */
template <typename T> void scale_block(T *C, int ldc, int rows, int cols, T beta) {
  if (beta == T(1)) return;
  for (int j = 0; j < cols; j++)
    for (int i = 0; i < rows; i++) {
      T &c = C[i + std::size_t(j) * ldc];
      c = beta == T(0) ? T(0) : beta * c;
    }
}

/* The same over one triangle of an n x n block. */
void scale_triangle(double *C, int ldc, int n, cublasFillMode_t uplo, double beta) {
  if (beta == 1.0) return;
  for (int j = 0; j < n; j++) {
    const int from = uplo == CUBLAS_FILL_MODE_LOWER ? j : 0;
    const int to = uplo == CUBLAS_FILL_MODE_LOWER ? n : j + 1;
    for (int i = from; i < to; i++) {
      double &c = C[i + std::size_t(j) * ldc];
      c = beta == 0.0 ? 0.0 : beta * c;
    }
  }
}

/* Rounds a float to `keep` explicit mantissa bits, to nearest with ties to even; a carry
 * into the exponent is the correct result (up to infinity). */
float round_mantissa(float x, int keep) {
  std::uint32_t u;
  memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u) return x; /* inf and NaN stay */
  const int drop = 23 - keep;
  const std::uint32_t half = (1u << (drop - 1)) - 1u;
  u += half + ((u >> drop) & 1u);
  u &= ~((1u << drop) - 1u);
  memcpy(&x, &u, sizeof u);
  return x;
}

/* TF32: FP32's exponent range with 10 explicit mantissa bits. */
float round_tf32(float x) { return round_mantissa(x, 10); }

/* IEEE half: 10 mantissa bits, overflow to infinity past 65504, subnormals below 2^-14. */
float round_fp16(float x) {
  if (!std::isfinite(x)) return x;
  const float a = std::fabs(x);
  if (a >= 65520.0f) return std::copysign(std::numeric_limits<float>::infinity(), x);
  if (a < 0x1p-14f) return std::copysign(std::nearbyint(a * 0x1p24f) * 0x1p-24f, x);
  return round_mantissa(x, 10);
}

/* A packed copy (leading dimension rows) of a stored rows x cols operand, rounded. */
std::vector<float> rounded_copy(const float *A, int lda, int rows, int cols,
                                float (*round)(float)) {
  std::vector<float> out(std::size_t(rows) * std::size_t(cols));
  for (int j = 0; j < cols; j++)
    for (int i = 0; i < rows; i++)
      out[i + std::size_t(j) * rows] = round(A[i + std::size_t(j) * lda]);
  return out;
}

void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
                const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
  cblas_sgemm(CblasColMajor, ta, tb, m, n, k, alpha, A, lda, B, ldb, 1.0f, C, ldc);
}

void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
                const double *A, int lda, const double *B, int ldb, double *C, int ldc) {
  cblas_dgemm(CblasColMajor, ta, tb, m, n, k, alpha, A, lda, B, ldb, 1.0, C, ldc);
}

/* The documented rule for every reduced-precision mode of single-precision GEMM. */
float (*input_rounding(unsigned math))(float) {
  switch (math & ~unsigned(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)) {
  case CUBLAS_TF32_TENSOR_OP_MATH: return round_tf32;
  case CUBLAS_TENSOR_OP_MATH: return round_fp16; /* CUBLAS_COMPUTE_32F_FAST_16F */
  default: return nullptr;
  }
}

/* One GEMM, run on the stream: C = beta C first (so beta == 0 never reads C), then
 * C += alpha op(A) op(B) unless alpha == 0 or k == 0, where A and B are not read. */
template <typename T>
void gemm_work(float (*round)(float), cublasOperation_t ta, cublasOperation_t tb, int m, int n,
               int k, T alpha, const T *A, int lda, const T *B, int ldb, T beta, T *C, int ldc) {
  scale_block(C, ldc, m, n, beta);
  if (alpha == T(0) || k == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (round) {
      const int ra = ta == CUBLAS_OP_N ? m : k, ca = ta == CUBLAS_OP_N ? k : m;
      const int rb = tb == CUBLAS_OP_N ? k : n, cb = tb == CUBLAS_OP_N ? n : k;
      const std::vector<float> a = rounded_copy(A, lda, ra, ca, round);
      const std::vector<float> b = rounded_copy(B, ldb, rb, cb, round);
      cblas_gemm(to_cblas(ta), to_cblas(tb), m, n, k, alpha, a.data(), ra, b.data(), rb, C, ldc);
      return;
    }
  }
  cblas_gemm(to_cblas(ta), to_cblas(tb), m, n, k, alpha, A, lda, B, ldb, C, ldc);
}

/* The documented INVALID_VALUE conditions of cublas<t>gemm (and its batched forms). */
bool gemm_args_valid(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda,
                     int ldb, int ldc, const void *alpha, const void *beta) {
  if (!valid_op(ta) || !valid_op(tb) || m < 0 || n < 0 || k < 0 || !alpha || !beta) return false;
  const int ra = ta == CUBLAS_OP_N ? m : k, rb = tb == CUBLAS_OP_N ? k : n;
  return lda >= std::max(1, ra) && ldb >= std::max(1, rb) && ldc >= std::max(1, m);
}

template <typename T>
cublasStatus_t gemm(const char *fn, cublasHandle_t handle, cublasOperation_t ta,
                    cublasOperation_t tb, int m, int n, int k, const T *alpha, const T *A, int lda,
                    const T *B, int ldb, const T *beta, T *C, int ldc) {
  if (!live(handle, fn)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!gemm_args_valid(ta, tb, m, n, k, lda, ldb, ldc, alpha, beta))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const T a = host_scalar(alpha, fn, "alpha"), b = host_scalar(beta, fn, "beta");
  if (a != T(0) && k != 0) {
    require_matrix(fn, "A", A, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda);
    require_matrix(fn, "B", B, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb);
  }
  require_matrix(fn, "C", C, m, n, ldc);
  /* The math mode in force now applies, as in cuBLAS; it only matters for float. */
  float (*round)(float) = std::is_same_v<T, float> ? input_rounding(handle->math) : nullptr;
  cudasim::enqueue(handle->stream, fn,
                   [=] { gemm_work<T>(round, ta, tb, m, n, k, a, A, lda, B, ldb, b, C, ldc); });
  return CUBLAS_STATUS_SUCCESS;
}

/* Do two byte ranges share a byte? */
bool overlap(const void *p, std::size_t pn, const void *q, std::size_t qn) {
  const auto a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(q);
  return pn && qn && a < b + qn && b < a + pn;
}

} // namespace

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = nullptr;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
    return CUBLAS_STATUS_NOT_INITIALIZED; /* the CUDA runtime could not initialise */
  cublasHandle_t h = new cudasim_cublas;
  std::lock_guard<std::mutex> lock(registry_mutex);
  live_handles().insert(h);
  *handle = h;
  return CUBLAS_STATUS_SUCCESS;
}

/* Documented to synchronize the device (it releases resources the queued work may use). */
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!live(handle, "cublasDestroy")) return CUBLAS_STATUS_NOT_INITIALIZED;
  cudasim::flush_all();
  std::lock_guard<std::mutex> lock(registry_mutex);
  live_handles().erase(handle);
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

/* A stream that does not exist is reported when work is queued on it. */
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!live(handle, "cublasSetStream")) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

/* One of the four modes, optionally with the reduction flag; anything else is invalid. */
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!live(handle, "cublasSetMathMode")) return CUBLAS_STATUS_NOT_INITIALIZED;
  const unsigned m = unsigned(mode);
  if ((m & ~unsigned(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)) > 3u)
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = m;
  return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
  case CUBLAS_STATUS_SUCCESS: return "success";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
  case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
  case CUBLAS_STATUS_INVALID_VALUE: return "an unsupported value or parameter was passed";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "the device lacks a required architectural feature";
  case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  case CUBLAS_STATUS_LICENSE_ERROR: return "the functionality requested requires a license";
  }
  return "unknown cuBLAS status";
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
  return gemm("cublasSgemm", handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

cublasStatus_t cublasDgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const double *alpha,
                           const double *A, int lda, const double *B, int ldb, const double *beta,
                           double *C, int ldc) {
  return gemm("cublasDgemm", handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long int strideA, const float *B, int ldb,
                                         long long int strideB, const float *beta, float *C,
                                         int ldc, long long int strideC, int batchCount) {
  static const char fn[] = "cublasSgemmStridedBatched";
  if (!live(handle, fn)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!gemm_args_valid(transa, transb, m, n, k, lda, ldb, ldc, alpha, beta) || batchCount < 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;
  const float a = host_scalar(alpha, fn, "alpha"), b = host_scalar(beta, fn, "beta");
  const int ra = transa == CUBLAS_OP_N ? m : k, ca = transa == CUBLAS_OP_N ? k : m;
  const int rb = transb == CUBLAS_OP_N ? k : n, cb = transb == CUBLAS_OP_N ? n : k;
  if (a != 0.0f && k != 0) {
    require_batched(fn, "A", A, ra, ca, lda, strideA, batchCount);
    require_batched(fn, "B", B, rb, cb, ldb, strideB, batchCount);
  }
  require_batched(fn, "C", C, m, n, ldc, strideC, batchCount);
  float (*round)(float) = input_rounding(handle->math);
  cudasim::enqueue(handle->stream, fn, [=] {
    for (int i = 0; i < batchCount; i++)
      gemm_work<float>(round, transa, transb, m, n, k, a, A + strideA * i, lda, B + strideB * i,
                       ldb, b, C + strideC * i, ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDsyrk(cublasHandle_t handle, cublasFillMode_t uplo, cublasOperation_t trans,
                           int n, int k, const double *alpha, const double *A, int lda,
                           const double *beta, double *C, int ldc) {
  static const char fn[] = "cublasDsyrk";
  if (!live(handle, fn)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int ra = trans == CUBLAS_OP_N ? n : k;
  if (!valid_fill(uplo) || !valid_op(trans) || n < 0 || k < 0 || !alpha || !beta ||
      lda < std::max(1, ra) || ldc < std::max(1, n))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (n == 0) return CUBLAS_STATUS_SUCCESS;
  const double a = host_scalar(alpha, fn, "alpha"), b = host_scalar(beta, fn, "beta");
  if (a != 0.0 && k != 0) require_matrix(fn, "A", A, ra, trans == CUBLAS_OP_N ? k : n, lda);
  require_matrix(fn, "C", C, n, n, ldc); /* either triangle spans C[0] .. C[n-1 + (n-1) ldc] */
  cudasim::enqueue(handle->stream, fn, [=] {
    scale_triangle(C, ldc, n, uplo, b);
    if (a != 0.0 && k != 0)
      cblas_dsyrk(CblasColMajor, to_cblas(uplo), to_cblas(trans), n, k, a, A, lda, 1.0, C, ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDtrsm(cublasHandle_t handle, cublasSideMode_t side, cublasFillMode_t uplo,
                           cublasOperation_t trans, cublasDiagType_t diag, int m, int n,
                           const double *alpha, const double *A, int lda, double *B, int ldb) {
  static const char fn[] = "cublasDtrsm";
  if (!live(handle, fn)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const bool left = side == CUBLAS_SIDE_LEFT;
  const int ka = left ? m : n;
  if ((side != CUBLAS_SIDE_LEFT && side != CUBLAS_SIDE_RIGHT) || !valid_fill(uplo) ||
      !valid_op(trans) || (diag != CUBLAS_DIAG_NON_UNIT && diag != CUBLAS_DIAG_UNIT) || m < 0 ||
      n < 0 || !alpha || lda < std::max(1, ka) || ldb < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const double a = host_scalar(alpha, fn, "alpha");
  if (a != 0.0) require_matrix(fn, "A", A, ka, ka, lda);
  require_matrix(fn, "B", B, m, n, ldb);
  cudasim::enqueue(handle->stream, fn, [=] {
    if (a == 0.0) { /* BLAS: B = 0 without reading A or B */
      scale_block(B, ldb, m, n, 0.0);
      return;
    }
    cblas_dtrsm(CblasColMajor, left ? CblasLeft : CblasRight, to_cblas(uplo), to_cblas(trans),
                diag == CUBLAS_DIAG_UNIT ? CblasUnit : CblasNonUnit, m, n, a, A, lda, B, ldb);
  });
  return CUBLAS_STATUS_SUCCESS;
}

/* C = alpha op(A) + beta op(B). In place is documented only as C == A with lda == ldc and
 * transa N, or C == B with ldb == ldc and transb N (anything else with C equal to A or B
 * is CUBLAS_STATUS_INVALID_VALUE); any other overlap with C is undefined. alpha == 0 leaves
 * A unread and beta == 0 leaves B unread ("does not have to be a valid input"). */
cublasStatus_t cublasDgeam(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, const double *alpha,
                           const double *A, int lda, const double *beta, const double *B, int ldb,
                           double *C, int ldc) {
  static const char fn[] = "cublasDgeam";
  if (!live(handle, fn)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int ra = transa == CUBLAS_OP_N ? m : n, rb = transb == CUBLAS_OP_N ? m : n;
  if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || !alpha || !beta ||
      lda < std::max(1, ra) || ldb < std::max(1, rb) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (C == A && (lda != ldc || transa != CUBLAS_OP_N)) return CUBLAS_STATUS_INVALID_VALUE;
  if (C == B && (ldb != ldc || transb != CUBLAS_OP_N)) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const double a = host_scalar(alpha, fn, "alpha"), b = host_scalar(beta, fn, "beta");
  const int ca = transa == CUBLAS_OP_N ? n : m, cb = transb == CUBLAS_OP_N ? n : m;
  const std::size_t bytes_a = a != 0.0 ? extent(ra, ca, lda) * sizeof(double) : 0;
  const std::size_t bytes_b = b != 0.0 ? extent(rb, cb, ldb) * sizeof(double) : 0;
  const std::size_t bytes_c = extent(m, n, ldc) * sizeof(double);
  if (bytes_a) require_matrix(fn, "A", A, ra, ca, lda);
  if (bytes_b) require_matrix(fn, "B", B, rb, cb, ldb);
  require_matrix(fn, "C", C, m, n, ldc);
  if ((C != A && overlap(C, bytes_c, A, bytes_a)) || (C != B && overlap(C, bytes_c, B, bytes_b)))
    cudasim::fatal("%s: C overlaps A or B without being the same matrix: undefined (only "
                   "C == A or C == B is supported in place)",
                   fn);
  cudasim::enqueue(handle->stream, fn, [=] {
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) {
        double v = 0.0;
        if (a != 0.0)
          v += a *
               (transa == CUBLAS_OP_N ? A[i + std::size_t(j) * lda] : A[j + std::size_t(i) * lda]);
        if (b != 0.0)
          v += b *
               (transb == CUBLAS_OP_N ? B[i + std::size_t(j) * ldb] : B[j + std::size_t(i) * ldb]);
        C[i + std::size_t(j) * ldc] = v;
      }
  });
  return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
