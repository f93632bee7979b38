/* Self-test of cudasim's libraries (cublas.cpp, cusolver.cpp, nccl.cpp): every routine
 * rcc-dist uses, checked against naive references written here (triple loops, products
 * that rebuild a factorized matrix), through the public API only (device buffers from
 * cudaMalloc, filled and read with cudaMemcpy). Covers transposes, leading dimensions
 * larger than the rows (with NaN padding that must stay unread and unwritten), strided
 * batches, BLAS's beta == 0 / alpha == 0 / k == 0 rules with NaN inputs, TF32 and FP16
 * input rounding, documented INVALID_VALUE cases, devInfo, and out-of-range extents that
 * must be fatal (fork + waitpid death tests). The NCCL part runs on every MPI rank
 * (ctest starts 2): collectives in place and not, error agreement in ncclCommInitRank,
 * and the deliberate stream semantics (a collective waits for its own stream only).
 * Plain main: prints each failure, exits 1 if any. */
#define OMPI_SKIP_MPICXX 1 /* the C API only */
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <nccl.h>

namespace {

int failures = 0;
int world_rank = 0;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      fprintf(stderr, "FAIL [rank %d] %s:%d: %s: ", world_rank, __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
    }                                                                                              \
  } while (0)

std::mt19937 rng(12345);

template <typename T> std::vector<T> random_vector(std::size_t n) {
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  std::vector<T> v(n);
  for (T &x : v)
    x = T(d(rng));
  return v;
}

/* A column-major rows x cols matrix in an ld x cols buffer: random, NaN in the padding. */
template <typename T> std::vector<T> random_matrix(int rows, int cols, int ld) {
  std::vector<T> v(std::size_t(ld) * std::max(cols, 1), T(kNaN));
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  for (int j = 0; j < cols; j++)
    for (int i = 0; i < rows; i++)
      v[i + std::size_t(j) * ld] = T(d(rng));
  return v;
}

template <typename T> T *to_device(const std::vector<T> &h) {
  void *p = nullptr;
  if (cudaMalloc(&p, h.size() * sizeof(T)) != cudaSuccess) {
    fprintf(stderr, "cudaMalloc failed\n");
    exit(1);
  }
  cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
  return static_cast<T *>(p);
}

/* cudaMemcpy to the host waits for the legacy stream (and the blocking streams). */
template <typename T> std::vector<T> to_host(const T *d, std::size_t n) {
  std::vector<T> h(n);
  cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
  return h;
}

bool same_bits(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

/* Element (i, j) of op(X) for column-major X with leading dimension ld. */
template <typename T> double op_at(const std::vector<T> &X, int ld, bool trans, int i, int j) {
  return double(trans ? X[j + std::size_t(i) * ld] : X[i + std::size_t(j) * ld]);
}

/* C = alpha op(A) op(B) + beta C, naive, in double; beta == 0 ignores C. */
template <typename T>
std::vector<double> ref_gemm(bool ta, bool tb, int m, int n, int k, double alpha,
                             const std::vector<T> &A, int lda, const std::vector<T> &B, int ldb,
                             double beta, const std::vector<T> &C, int ldc) {
  std::vector<double> out(std::size_t(m) * n);
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      double s = 0.0;
      for (int l = 0; l < k; l++)
        s += op_at(A, lda, ta, i, l) * op_at(B, ldb, tb, l, j);
      out[i + std::size_t(j) * m] =
          alpha * s + (beta == 0.0 ? 0.0 : beta * double(C[i + std::size_t(j) * ldc]));
    }
  return out;
}

/* The m x n block of `got` (leading dimension ld) against `want` (packed), and the padding
 * of `got` against `before` (it must be untouched). */
template <typename T>
void expect_block(const char *what, const std::vector<T> &got, int ld, int m, int n,
                  const std::vector<double> &want, const std::vector<T> &before, double tol) {
  double worst = 0.0;
  bool pad_ok = true;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < ld; i++) {
      const std::size_t at = i + std::size_t(j) * ld;
      if (at >= got.size()) break;
      if (i < m) {
        const double w = want[i + std::size_t(j) * m];
        const double e = std::fabs(double(got[at]) - w) / std::max(1.0, std::fabs(w));
        worst = std::isnan(e) ? std::numeric_limits<double>::infinity() : std::max(worst, e);
      } else if (!same_bits(double(got[at]), double(before[at]))) {
        pad_ok = false;
      }
    }
  CHECK(worst <= tol, "%s: max relative error %g > %g", what, worst, tol);
  CHECK(pad_ok, "%s: padding beyond the rows was written", what);
}

const cublasOperation_t kOps[2] = {CUBLAS_OP_N, CUBLAS_OP_T};

/* ---- death tests --------------------------------------------------------------------- */

/* Runs body in a child; passes if the child dies and its stderr holds "cudasim:" and
 * needle. Only before MPI_Init: forking an MPI process is not portable. */
void expect_fatal(const char *what, const char *needle, const std::function<void()> &body) {
  fflush(stdout);
  fflush(stderr);
  int fds[2];
  if (pipe(fds) != 0) {
    CHECK(false, "%s: pipe failed", what);
    return;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    body();
    cudaDeviceSynchronize();
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t got;
  while ((got = read(fds[0], buf, sizeof buf)) > 0)
    out.append(buf, std::size_t(got));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const bool died = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(died && out.find("cudasim:") != std::string::npos && out.find(needle) != std::string::npos,
        "%s: expected a cudasim fatal error naming \"%s\"; child %s, stderr: %s", what, needle,
        died ? "died" : "exited 0", out.c_str());
}

/* ---- cuBLAS -------------------------------------------------------------------------- */

void test_sgemm(cublasHandle_t h) {
  const int m = 5, n = 4, k = 3;
  for (cublasOperation_t ta : kOps)
    for (cublasOperation_t tb : kOps) {
      const bool tA = ta != CUBLAS_OP_N, tB = tb != CUBLAS_OP_N;
      const int ra = tA ? k : m, ca = tA ? m : k, rb = tB ? n : k, cb = tB ? k : n;
      const int lda = ra + 2, ldb = rb + 1, ldc = m + 3;
      auto A = random_matrix<float>(ra, ca, lda), B = random_matrix<float>(rb, cb, ldb);
      auto C = random_matrix<float>(m, n, ldc);
      float *dA = to_device(A), *dB = to_device(B), *dC = to_device(C);
      float alpha = 1.5f, beta = -0.5f;
      CHECK(cublasSgemm(h, ta, tb, m, n, k, &alpha, dA, lda, dB, ldb, &beta, dC, ldc) ==
                CUBLAS_STATUS_SUCCESS,
            "sgemm status");
      alpha = 100.0f; /* host pointer mode: the values at the call count, not later ones */
      beta = 100.0f;
      char what[64];
      snprintf(what, sizeof what, "sgemm op(A)=%c op(B)=%c", tA ? 'T' : 'N', tB ? 'T' : 'N');
      expect_block(what, to_host(dC, C.size()), ldc, m, n,
                   ref_gemm(tA, tB, m, n, k, 1.5, A, lda, B, ldb, -0.5, C, ldc), C, 1e-5);
      cudaFree(dA);
      cudaFree(dB);
      cudaFree(dC);
    }
}

/* beta == 0: C is not read, so NaN there is overwritten; k == 0: C = beta C. */
void test_sgemm_beta_zero_and_k_zero(cublasHandle_t h) {
  const int m = 3, n = 2, k = 4;
  auto A = random_matrix<float>(m, k, m), B = random_matrix<float>(k, n, k);
  std::vector<float> nan_c(std::size_t(m) * n, float(kNaN));
  float *dA = to_device(A), *dB = to_device(B), *dC = to_device(nan_c);
  const float one = 1.0f, zero = 0.0f, two = 2.0f;
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m) == 0,
        "status");
  expect_block("sgemm beta 0 over NaN C", to_host(dC, nan_c.size()), m, m, n,
               ref_gemm(false, false, m, n, k, 1.0, A, m, B, k, 0.0, nan_c, m), nan_c, 1e-5);
  cudaMemcpy(dC, nan_c.data(), nan_c.size() * sizeof(float), cudaMemcpyHostToDevice);
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, 0, &one, dA, m, dB, 1, &zero, dC, m) == 0,
        "status");
  auto got = to_host(dC, nan_c.size());
  bool zeros = true;
  for (float x : got)
    zeros = zeros && x == 0.0f;
  CHECK(zeros, "sgemm k == 0, beta 0 over NaN C must give zeros");
  auto C = random_matrix<float>(m, n, m);
  cudaMemcpy(dC, C.data(), C.size() * sizeof(float), cudaMemcpyHostToDevice);
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, 0, &one, dA, m, dB, 1, &two, dC, m) == 0,
        "status");
  got = to_host(dC, C.size());
  bool scaled = true;
  for (std::size_t i = 0; i < C.size(); i++)
    scaled = scaled && got[i] == 2.0f * C[i];
  CHECK(scaled, "sgemm k == 0 must give C = beta C");
  /* alpha == 0: A and B are not read (NaN there changes nothing). */
  std::vector<float> nan_a(A.size(), float(kNaN));
  float *dNaN = to_device(nan_a);
  cudaMemcpy(dC, C.data(), C.size() * sizeof(float), cudaMemcpyHostToDevice);
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &zero, dNaN, m, dNaN, k, &one, dC, m) ==
            0,
        "status");
  got = to_host(dC, C.size());
  CHECK(got == C, "sgemm alpha == 0 must leave C = beta C without reading A and B");
  cudaFree(dA);
  cudaFree(dB);
  cudaFree(dC);
  cudaFree(dNaN);
}

void test_sgemm_invalid(cublasHandle_t h) {
  const int m = 4, n = 3, k = 2;
  auto C = random_matrix<float>(m, n, m);
  float *dA = to_device(random_vector<float>(64)), *dB = to_device(random_vector<float>(64));
  float *dC = to_device(C);
  const float one = 1.0f;
  auto call = [&](cublasOperation_t ta, cublasOperation_t tb, int mm, int nn, int kk, int lda,
                  int ldb, int ldc, const float *alpha) {
    return cublasSgemm(h, ta, tb, mm, nn, kk, alpha, dA, lda, dB, ldb, &one, dC, ldc);
  };
  const cublasOperation_t N = CUBLAS_OP_N, T = CUBLAS_OP_T;
  CHECK(call(N, N, m, n, k, m - 1, k, m, &one) == CUBLAS_STATUS_INVALID_VALUE, "lda < m");
  CHECK(call(T, N, m, n, k, k - 1, k, m, &one) == CUBLAS_STATUS_INVALID_VALUE, "lda < k (T)");
  CHECK(call(N, N, m, n, k, m, k - 1, m, &one) == CUBLAS_STATUS_INVALID_VALUE, "ldb < k");
  CHECK(call(N, T, m, n, k, m, n - 1, m, &one) == CUBLAS_STATUS_INVALID_VALUE, "ldb < n (T)");
  CHECK(call(N, N, m, n, k, m, k, m - 1, &one) == CUBLAS_STATUS_INVALID_VALUE, "ldc < m");
  CHECK(call(N, N, -1, n, k, 1, k, 1, &one) == CUBLAS_STATUS_INVALID_VALUE, "m < 0");
  CHECK(call(N, N, m, -1, k, m, k, m, &one) == CUBLAS_STATUS_INVALID_VALUE, "n < 0");
  CHECK(call(N, N, m, n, -1, m, 1, m, &one) == CUBLAS_STATUS_INVALID_VALUE, "k < 0");
  CHECK(call(CUBLAS_OP_CONJG, N, m, n, k, m, k, m, &one) == CUBLAS_STATUS_INVALID_VALUE,
        "CUBLAS_OP_CONJG");
  CHECK(call(N, cublasOperation_t(7), m, n, k, m, k, m, &one) == CUBLAS_STATUS_INVALID_VALUE,
        "op 7");
  CHECK(call(N, N, m, n, k, m, k, m, nullptr) == CUBLAS_STATUS_INVALID_VALUE, "alpha NULL");
  CHECK(cublasSgemm(nullptr, N, N, m, n, k, &one, dA, m, dB, k, &one, dC, m) ==
            CUBLAS_STATUS_NOT_INITIALIZED,
        "NULL handle");
  CHECK(to_host(dC, C.size()) == C, "a rejected call must queue nothing");
  CHECK(call(N, N, 0, n, k, 1, k, 1, &one) == CUBLAS_STATUS_SUCCESS, "m == 0 is a quick return");
  CHECK(std::string(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE)) ==
            "CUBLAS_STATUS_INVALID_VALUE",
        "status name");
  CHECK(std::strlen(cublasGetStatusString(CUBLAS_STATUS_NOT_INITIALIZED)) > 0, "status string");
  CHECK(cublasSetMathMode(h, cublasMath_t(5)) == CUBLAS_STATUS_INVALID_VALUE, "math mode 5");
  CHECK(cublasSetMathMode(h, cublasMath_t(CUBLAS_DEFAULT_MATH |
                                          CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)) ==
            CUBLAS_STATUS_SUCCESS,
        "default math with the reduction flag");
  cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
  cudaFree(dA);
  cudaFree(dB);
  cudaFree(dC);
}

/* Batches with gaps between them, B shared by every batch (stride 0). */
void test_sgemm_strided_batched(cublasHandle_t h) {
  const int m = 4, n = 3, k = 5, batches = 3;
  const int lda = k + 1, ldb = k + 2, ldc = m + 1; /* A transposed: stored k x m */
  const long long sa = (long long)lda * m + 7, sb = 0, sc = (long long)ldc * n + 2;
  auto A =
      random_matrix<float>(int(sa * (batches - 1) + lda * m), 1, int(sa * (batches - 1) + lda * m));
  auto B = random_matrix<float>(k, n, ldb);
  std::vector<float> C(std::size_t(sc * (batches - 1) + ldc * n), float(kNaN));
  for (float &x : C)
    x = random_vector<float>(1)[0];
  float *dA = to_device(A), *dB = to_device(B), *dC = to_device(C);
  const float alpha = 0.75f, beta = 0.25f;
  CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, dA, lda, sa, dB,
                                  ldb, sb, &beta, dC, ldc, sc, batches) == CUBLAS_STATUS_SUCCESS,
        "status");
  auto got = to_host(dC, C.size());
  for (int b = 0; b < batches; b++) {
    std::vector<float> Ab(A.begin() + sa * b, A.end()), Cb(C.begin() + sc * b, C.end());
    std::vector<float> gotb(got.begin() + sc * b, got.begin() + sc * b + ldc * n);
    auto want = ref_gemm(true, false, m, n, k, alpha, Ab, lda, B, ldb, beta, Cb, ldc);
    char what[48];
    snprintf(what, sizeof what, "sgemm strided batch %d", b);
    expect_block(what, gotb, ldc, m, n, want, std::vector<float>(Cb.begin(), Cb.begin() + ldc * n),
                 1e-5);
    if (b + 1 < batches)
      for (long long g = ldc * n; g < sc; g++)
        CHECK(got[sc * b + g] == C[sc * b + g], "gap after batch %d was written", b);
  }
  CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, dA, lda, sa, dB,
                                  ldb, sb, &beta, dC, ldc, sc, 0) == CUBLAS_STATUS_SUCCESS,
        "batchCount 0");
  CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, dA, lda, sa, dB,
                                  ldb, sb, &beta, dC, ldc, sc, -1) == CUBLAS_STATUS_INVALID_VALUE,
        "batchCount -1");
  CHECK(to_host(dC, C.size()) == got, "batchCount 0 / -1 must queue nothing");
  cudaFree(dA);
  cudaFree(dB);
  cudaFree(dC);
}

/* A column (m x 1) times B = [1] under a math mode: what the inputs were rounded to. */
std::vector<float> gemm_inputs_as_seen(cublasHandle_t h, cublasMath_t mode,
                                       const std::vector<float> &a) {
  cublasSetMathMode(h, mode);
  const int m = int(a.size());
  float *dA = to_device(a), *dB = to_device(std::vector<float>{1.0f});
  float *dC = to_device(std::vector<float>(a.size(), 0.0f));
  const float one = 1.0f, zero = 0.0f;
  cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, 1, 1, &one, dA, m, dB, 1, &zero, dC, m);
  auto got = to_host(dC, a.size());
  cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
  cudaFree(dA);
  cudaFree(dB);
  cudaFree(dC);
  return got;
}

void test_math_modes(cublasHandle_t h) {
  const float u = 0x1p-11f; /* half a TF32 / FP16 unit in the last place at 1 */
  const std::vector<float> a = {1.0f + u / 2, 1.0f + u, 1.0f + 3 * u, 1.0f + 2 * u, -3.0f};
  /* ties go to even: 1 + u -> 1, 1 + 3u -> 1 + 4u */
  const std::vector<float> rounded = {1.0f, 1.0f, 1.0f + 4 * u, 1.0f + 2 * u, -3.0f};
  CHECK(gemm_inputs_as_seen(h, CUBLAS_DEFAULT_MATH, a) == a, "default math must be plain FP32");
  CHECK(gemm_inputs_as_seen(h, CUBLAS_PEDANTIC_MATH, a) == a, "pedantic math is plain FP32");
  CHECK(gemm_inputs_as_seen(h, CUBLAS_TF32_TENSOR_OP_MATH, a) == rounded,
        "TF32 must round inputs to 10 mantissa bits, ties to even");
  const float big = 70000.0f, tiny = 1e-8f;
  const std::vector<float> h16 = {big, 1.0f + u / 2, tiny, 65504.0f, 0x1p-20f};
  const std::vector<float> want16 = {std::numeric_limits<float>::infinity(), 1.0f, 0.0f, 65504.0f,
                                     0x1p-20f};
  CHECK(gemm_inputs_as_seen(h, CUBLAS_TENSOR_OP_MATH, h16) == want16,
        "tensor-op math must round inputs to FP16");
  /* Rounding applies to B as well: (1 + u/2) * (1 + u/2) is 1 under TF32. */
  cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH);
  float *dX = to_device(std::vector<float>{1.0f + u / 2}), *dY = to_device(std::vector<float>{0});
  const float one = 1.0f, zero = 0.0f;
  cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, dX, 1, dX, 1, &zero, dY, 1);
  CHECK(to_host(dY, 1)[0] == 1.0f, "TF32 must round B too");
  cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
  cudaFree(dX);
  cudaFree(dY);
}

void test_dgemm(cublasHandle_t h) {
  const int m = 4, n = 6, k = 5;
  for (cublasOperation_t ta : kOps)
    for (cublasOperation_t tb : kOps) {
      const bool tA = ta != CUBLAS_OP_N, tB = tb != CUBLAS_OP_N;
      const int ra = tA ? k : m, ca = tA ? m : k, rb = tB ? n : k, cb = tB ? k : n;
      const int lda = ra + 1, ldb = rb + 3, ldc = m + 2;
      auto A = random_matrix<double>(ra, ca, lda), B = random_matrix<double>(rb, cb, ldb);
      auto C = random_matrix<double>(m, n, ldc);
      double *dA = to_device(A), *dB = to_device(B), *dC = to_device(C);
      const double alpha = -1.25, beta = 2.0;
      CHECK(cublasDgemm(h, ta, tb, m, n, k, &alpha, dA, lda, dB, ldb, &beta, dC, ldc) == 0,
            "dgemm status");
      char what[64];
      snprintf(what, sizeof what, "dgemm op(A)=%c op(B)=%c", tA ? 'T' : 'N', tB ? 'T' : 'N');
      expect_block(what, to_host(dC, C.size()), ldc, m, n,
                   ref_gemm(tA, tB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc), C, 1e-13);
      cudaFree(dA);
      cudaFree(dB);
      cudaFree(dC);
    }
  double *d = to_device(random_vector<double>(64));
  const double one = 1.0;
  CHECK(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, d, 3, d, 4, &one, d, 4) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "dgemm lda < m");
  cudaFree(d);
}

void test_dsyrk(cublasHandle_t h) {
  const int n = 5, k = 3, ldc = n + 2;
  for (cublasFillMode_t uplo : {CUBLAS_FILL_MODE_LOWER, CUBLAS_FILL_MODE_UPPER})
    for (cublasOperation_t trans : kOps) {
      const bool t = trans != CUBLAS_OP_N;
      const int ra = t ? k : n, ca = t ? n : k, lda = ra + 1;
      auto A = random_matrix<double>(ra, ca, lda);
      for (double beta : {0.5, 0.0}) {
        auto C = random_matrix<double>(n, n, ldc);
        if (beta == 0.0)
          for (double &x : C)
            x = kNaN; /* beta 0: C not read */
        double *dA = to_device(A), *dC = to_device(C);
        const double alpha = 1.5;
        CHECK(cublasDsyrk(h, uplo, trans, n, k, &alpha, dA, lda, &beta, dC, ldc) == 0, "status");
        auto got = to_host(dC, C.size());
        /* op(A) op(A)^T = op(A) * op(A)^T: reuse ref_gemm with B = A transposed the other way */
        auto full = ref_gemm(t, !t, n, n, k, alpha, A, lda, A, lda, beta, C, ldc);
        bool tri_ok = true, other_ok = true;
        for (int j = 0; j < n; j++)
          for (int i = 0; i < n; i++) {
            const bool in = uplo == CUBLAS_FILL_MODE_LOWER ? i >= j : i <= j;
            const double g = got[i + std::size_t(j) * ldc];
            if (in)
              tri_ok = tri_ok && std::fabs(g - full[i + std::size_t(j) * n]) < 1e-13;
            else
              other_ok = other_ok && same_bits(g, C[i + std::size_t(j) * ldc]);
          }
        CHECK(tri_ok, "dsyrk uplo %d trans %d beta %g: triangle wrong", int(uplo), int(trans),
              beta);
        CHECK(other_ok, "dsyrk uplo %d trans %d beta %g: the other triangle was written", int(uplo),
              int(trans), beta);
        cudaFree(dA);
        cudaFree(dC);
      }
    }
  double *d = to_device(random_vector<double>(64));
  const double one = 1.0;
  CHECK(cublasDsyrk(h, CUBLAS_FILL_MODE_FULL, CUBLAS_OP_N, 3, 3, &one, d, 3, &one, d, 3) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "dsyrk FULL");
  CHECK(cublasDsyrk(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, 3, 3, &one, d, 3, &one, d, 2) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "dsyrk ldc < n");
  cudaFree(d);
}

/* op(A) X = alpha B or X op(A) = alpha B, checked by multiplying back with only the
 * referenced triangle (the rest of A is NaN, as is a unit diagonal, and must stay unread). */
void test_dtrsm(cublasHandle_t h) {
  const int m = 4, n = 3, ldb = m + 2;
  for (cublasSideMode_t side : {CUBLAS_SIDE_LEFT, CUBLAS_SIDE_RIGHT})
    for (cublasFillMode_t uplo : {CUBLAS_FILL_MODE_LOWER, CUBLAS_FILL_MODE_UPPER})
      for (cublasOperation_t trans : kOps)
        for (cublasDiagType_t diag : {CUBLAS_DIAG_NON_UNIT, CUBLAS_DIAG_UNIT}) {
          const bool left = side == CUBLAS_SIDE_LEFT, lower = uplo == CUBLAS_FILL_MODE_LOWER;
          const bool unit = diag == CUBLAS_DIAG_UNIT, t = trans != CUBLAS_OP_N;
          const int ka = left ? m : n, lda = ka + 1;
          auto A = random_matrix<double>(ka, ka, lda);
          std::vector<double> T(std::size_t(ka) * ka, 0.0); /* the triangle as used, packed */
          for (int j = 0; j < ka; j++)
            for (int i = 0; i < ka; i++) {
              double &a = A[i + std::size_t(j) * lda];
              if (i == j) {
                a += 4.0;
                if (unit) a = kNaN;
                T[i + std::size_t(j) * ka] = unit ? 1.0 : a;
              } else if ((i > j) == lower) {
                T[i + std::size_t(j) * ka] = a;
              } else {
                a = kNaN;
              }
            }
          auto B = random_matrix<double>(m, n, ldb);
          double *dA = to_device(A), *dB = to_device(B);
          const double alpha = 2.0;
          CHECK(cublasDtrsm(h, side, uplo, trans, diag, m, n, &alpha, dA, lda, dB, ldb) == 0,
                "status");
          auto X = to_host(dB, B.size());
          auto back = left ? ref_gemm(t, false, m, n, m, 1.0, T, ka, X, ldb, 0.0, X, ldb)
                           : ref_gemm(false, t, m, n, n, 1.0, X, ldb, T, ka, 0.0, X, ldb);
          for (double &x : back)
            x /= alpha;
          char what[80];
          snprintf(what, sizeof what, "dtrsm side %c uplo %c trans %c diag %c", left ? 'L' : 'R',
                   lower ? 'L' : 'U', t ? 'T' : 'N', unit ? 'U' : 'N');
          std::vector<double> packed(std::size_t(m) * n);
          for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++)
              packed[i + std::size_t(j) * m] = B[i + std::size_t(j) * ldb];
          /* back should equal B: compare via expect_block on a packed copy of `back` */
          std::vector<double> backld(B.size(), 0.0);
          for (int j = 0; j < n; j++)
            for (int i = 0; i < ldb; i++)
              backld[i + std::size_t(j) * ldb] =
                  i < m ? back[i + std::size_t(j) * m] : X[i + std::size_t(j) * ldb];
          expect_block(what, backld, ldb, m, n, packed, B, 1e-12);
          cudaFree(dA);
          cudaFree(dB);
        }
  /* alpha == 0: B = 0, A not read. */
  std::vector<double> nan_b(12, kNaN), nan_a(16, kNaN);
  double *dA = to_device(nan_a), *dB = to_device(nan_b);
  const double zero = 0.0;
  CHECK(cublasDtrsm(h, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT,
                    4, 3, &zero, dA, 4, dB, 4) == 0,
        "status");
  CHECK(to_host(dB, 12) == std::vector<double>(12, 0.0), "dtrsm alpha 0 must zero B");
  CHECK(cublasDtrsm(h, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT,
                    4, 3, &zero, dA, 2, dB, 4) == CUBLAS_STATUS_INVALID_VALUE,
        "dtrsm lda < n (right)");
  CHECK(cublasDtrsm(h, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, cublasDiagType_t(2),
                    4, 3, &zero, dA, 4, dB, 4) == CUBLAS_STATUS_INVALID_VALUE,
        "dtrsm diag 2");
  cudaFree(dA);
  cudaFree(dB);
}

void test_dgeam(cublasHandle_t h) {
  const int m = 3, n = 4, ldc = m + 1;
  for (cublasOperation_t ta : kOps)
    for (cublasOperation_t tb : kOps) {
      const bool tA = ta != CUBLAS_OP_N, tB = tb != CUBLAS_OP_N;
      const int lda = (tA ? n : m) + 2, ldb = (tB ? n : m) + 1;
      auto A = random_matrix<double>(tA ? n : m, tA ? m : n, lda);
      auto B = random_matrix<double>(tB ? n : m, tB ? m : n, ldb);
      auto C = random_matrix<double>(m, n, ldc);
      double *dA = to_device(A), *dB = to_device(B), *dC = to_device(C);
      const double alpha = 0.5, beta = -2.0;
      CHECK(cublasDgeam(h, ta, tb, m, n, &alpha, dA, lda, &beta, dB, ldb, dC, ldc) == 0, "status");
      std::vector<double> want(std::size_t(m) * n);
      for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
          want[i + std::size_t(j) * m] =
              alpha * op_at(A, lda, tA, i, j) + beta * op_at(B, ldb, tB, i, j);
      char what[48];
      snprintf(what, sizeof what, "dgeam op(A)=%c op(B)=%c", tA ? 'T' : 'N', tB ? 'T' : 'N');
      expect_block(what, to_host(dC, C.size()), ldc, m, n, want, C, 1e-15);
      cudaFree(dA);
      cudaFree(dB);
      cudaFree(dC);
    }
  /* The backend's transpose: B = C in place, beta 0, C NaN (B therefore unread). */
  auto in = random_matrix<double>(n, m, n); /* column-major (n, m) */
  std::vector<double> out_nan(std::size_t(m) * n, kNaN);
  double *dIn = to_device(in), *dOut = to_device(out_nan);
  const double one = 1.0, zero = 0.0;
  CHECK(cublasDgeam(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, &one, dIn, n, &zero, dOut, m, dOut, m) == 0,
        "transpose status");
  auto out = to_host(dOut, out_nan.size());
  bool exact = true;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++)
      exact = exact && out[i + std::size_t(j) * m] == in[j + std::size_t(i) * n];
  CHECK(exact, "dgeam transpose (B = C in place, beta 0 over NaN) must be exact");
  /* In place C = alpha C + beta op(B) with C == A. */
  auto Cm = random_matrix<double>(m, n, m);
  cudaMemcpy(dOut, Cm.data(), Cm.size() * sizeof(double), cudaMemcpyHostToDevice);
  const double two = 2.0;
  CHECK(cublasDgeam(h, CUBLAS_OP_N, CUBLAS_OP_T, m, n, &two, dOut, m, &one, dIn, n, dOut, m) == 0,
        "in place C == A");
  out = to_host(dOut, Cm.size());
  exact = true;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++)
      exact = exact &&
              std::fabs(out[i + std::size_t(j) * m] -
                        (2.0 * Cm[i + std::size_t(j) * m] + in[j + std::size_t(i) * n])) < 1e-15;
  CHECK(exact, "dgeam in place with C == A");
  CHECK(cublasDgeam(h, CUBLAS_OP_N, CUBLAS_OP_T, m, m, &one, dIn, m, &zero, dOut, m, dOut, m) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "C == B with transb T is not a documented in-place form");
  CHECK(cublasDgeam(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, &one, dOut, m + 1, &zero, dIn, m, dOut, m) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "C == A with lda != ldc");
  CHECK(cublasDgeam(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, nullptr, dIn, m, &zero, dIn, m, dOut, m) ==
            CUBLAS_STATUS_INVALID_VALUE,
        "alpha NULL");
  cudaFree(dIn);
  cudaFree(dOut);
}

void test_cublas_fatal(cublasHandle_t h) {
  const int m = 4, n = 4, k = 4;
  float *dA = to_device(std::vector<float>(16, 1.0f)), *dC = to_device(std::vector<float>(16));
  const float one = 1.0f;
  expect_fatal("sgemm lda past the allocation", "cublasSgemm: A", [&] {
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m + 1, dA, k, &one, dC, m);
  });
  expect_fatal("strided batch past the allocation", "cublasSgemmStridedBatched: C", [&] {
    cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA, 2, 4, dA, 2, 4, &one,
                              dC, 2, 5, 4);
  });
  /* The checked extent is exact: ld * (cols - 1) + rows elements fit, one fewer does not. */
  const int rows = 3, cols = 4, ld = 5, exact = ld * (cols - 1) + rows;
  float *dFit = to_device(std::vector<float>(std::size_t(exact), 1.0f));
  float *dShort = to_device(std::vector<float>(std::size_t(exact - 1), 1.0f));
  float *dB = to_device(std::vector<float>(std::size_t(cols) * 2, 1.0f));
  float *dOut = to_device(std::vector<float>(std::size_t(rows) * 2));
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, rows, 2, cols, &one, dFit, ld, dB, cols, &one,
                    dOut, rows) == CUBLAS_STATUS_SUCCESS,
        "an operand that exactly fits");
  CHECK(to_host(dOut, std::size_t(rows) * 2) == std::vector<float>(std::size_t(rows) * 2, 4.0f),
        "exact-fit sgemm result");
  expect_fatal("sgemm A one element short", "cublasSgemm: A", [&] {
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, rows, 2, cols, &one, dShort, ld, dB, cols, &one, dOut,
                rows);
  });
  /* Batched: stride * (batches - 1) + one batch's extent. */
  const long long stride = exact + 2;
  const int batches = 3, span = int(stride * (batches - 1) + exact);
  float *dSpan = to_device(std::vector<float>(std::size_t(span), 1.0f));
  float *dSpanShort = to_device(std::vector<float>(std::size_t(span - 1), 1.0f));
  float *dOutB = to_device(std::vector<float>(std::size_t(rows) * 2 * batches));
  CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, rows, 2, cols, &one, dSpan, ld,
                                  stride, dB, cols, 0, &one, dOutB, rows, rows * 2,
                                  batches) == CUBLAS_STATUS_SUCCESS,
        "batched operands that exactly fit");
  expect_fatal("batched A one element short", "cublasSgemmStridedBatched: A", [&] {
    cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, rows, 2, cols, &one, dSpanShort, ld,
                              stride, dB, cols, 0, &one, dOutB, rows, rows * 2, batches);
  });
  for (void *p : {(void *)dFit, (void *)dShort, (void *)dB, (void *)dOut, (void *)dSpan,
                  (void *)dSpanShort, (void *)dOutB})
    cudaFree(p);
  std::vector<float> host(16, 1.0f);
  expect_fatal("host pointer as C", "not device memory", [&] {
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dA, k, &one, host.data(), m);
  });
  expect_fatal("device pointer as alpha", "alpha", [&] {
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, dA, dA, m, dA, k, &one, dC, m);
  });
  double *dD = to_device(std::vector<double>(32, 1.0));
  const double done = 1.0;
  expect_fatal("dgeam partial overlap", "overlaps", [&] {
    cublasDgeam(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, &done, dD + 1, 4, &done, dD + 16, 4, dD, 4);
  });
  cudaFree(dA);
  cudaFree(dC);
  cudaFree(dD);
}

/* ---- cuSOLVER ------------------------------------------------------------------------ */

struct svd_result {
  std::vector<double> S, U, VT;
  int info = -99;
};

svd_result run_gesvd(cusolverDnHandle_t h, cudaStream_t s, signed char ju, signed char jv,
                     const std::vector<double> &A, int m, int n, int lda, int ldu, int ldvt,
                     bool use_rwork) {
  const int mn = std::min(m, n), ucols = ju == 'A' ? m : mn;
  int lwork = 0;
  CHECK(cusolverDnDgesvd_bufferSize(h, m, n, &lwork) == CUSOLVER_STATUS_SUCCESS && lwork > 0,
        "gesvd bufferSize");
  double *dA = to_device(A), *dS = to_device(std::vector<double>(mn));
  double *dU = to_device(std::vector<double>(std::size_t(ldu) * ucols));
  double *dVT = to_device(std::vector<double>(std::size_t(ldvt) * n));
  double *dW = to_device(std::vector<double>(std::size_t(lwork)));
  double *dR = use_rwork ? to_device(std::vector<double>(mn)) : nullptr;
  int *dInfo = to_device(std::vector<int>{-99});
  CHECK(cusolverDnDgesvd(h, ju, jv, m, n, dA, lda, dS, dU, ldu, dVT, ldvt, dW, lwork, dR, dInfo) ==
            CUSOLVER_STATUS_SUCCESS,
        "gesvd %c%c status", ju, jv);
  cudaStreamSynchronize(s);
  svd_result r;
  r.S = to_host(dS, mn);
  r.U = to_host(dU, std::size_t(ldu) * ucols);
  r.VT = to_host(dVT, std::size_t(ldvt) * n);
  r.info = to_host(dInfo, 1)[0];
  for (void *p :
       {(void *)dA, (void *)dS, (void *)dU, (void *)dVT, (void *)dW, (void *)dR, (void *)dInfo})
    cudaFree(p);
  return r;
}

void test_gesvd(cusolverDnHandle_t h, cudaStream_t s) {
  const int m = 6, n = 4, lda = m + 2;
  auto A = random_matrix<double>(m, n, lda);
  for (char job : {'S', 'A'}) {
    const int ldu = m + 1, ldvt = n + 1, mn = n, ucols = job == 'A' ? m : mn;
    auto r = run_gesvd(h, s, job, job, A, m, n, lda, ldu, ldvt, job == 'S');
    CHECK(r.info == 0, "gesvd %c devInfo %d", job, r.info);
    double rebuild = 0.0, orth_u = 0.0, orth_v = 0.0;
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) {
        double x = 0.0;
        for (int l = 0; l < mn; l++)
          x += r.U[i + std::size_t(l) * ldu] * r.S[l] * r.VT[l + std::size_t(j) * ldvt];
        rebuild = std::max(rebuild, std::fabs(x - A[i + std::size_t(j) * lda]));
      }
    for (int a = 0; a < ucols; a++)
      for (int b = 0; b < ucols; b++) {
        double x = 0.0;
        for (int i = 0; i < m; i++)
          x += r.U[i + std::size_t(a) * ldu] * r.U[i + std::size_t(b) * ldu];
        orth_u = std::max(orth_u, std::fabs(x - (a == b)));
      }
    for (int a = 0; a < n; a++)
      for (int b = 0; b < n; b++) {
        double x = 0.0;
        for (int j = 0; j < n; j++)
          x += r.VT[a + std::size_t(j) * ldvt] * r.VT[b + std::size_t(j) * ldvt];
        orth_v = std::max(orth_v, std::fabs(x - (a == b)));
      }
    CHECK(rebuild < 1e-12, "gesvd %c: U S VT differs from A by %g", job, rebuild);
    CHECK(orth_u < 1e-12 && orth_v < 1e-12, "gesvd %c: U or VT not orthonormal (%g, %g)", job,
          orth_u, orth_v);
    bool sorted = true;
    for (int l = 0; l < mn; l++)
      sorted = sorted && r.S[l] >= 0 && (l == 0 || r.S[l] <= r.S[l - 1]);
    CHECK(sorted, "gesvd %c: S not descending and non-negative", job);
    auto values = run_gesvd(h, s, 'N', 'N', A, m, n, lda, 1, 1, false);
    double ds = 0.0;
    for (int l = 0; l < mn; l++)
      ds = std::max(ds, std::fabs(values.S[l] - r.S[l]));
    CHECK(values.info == 0 && ds < 1e-12, "gesvd NN: singular values differ by %g", ds);
  }
  int lwork = 0;
  cusolverDnDgesvd_bufferSize(h, m, n, &lwork);
  double *dA = to_device(A), *dS = to_device(std::vector<double>(n));
  /* Room for every shape tried below, so that only the status can tell. */
  double *dU = to_device(std::vector<double>(std::size_t(m) * m));
  double *dVT = to_device(std::vector<double>(std::size_t(m) * m));
  int lwork_wide = 0; /* what the m < n shape would need, were it supported */
  cusolverDnDgesvd_bufferSize(h, n, m, &lwork_wide);
  double *dW = to_device(std::vector<double>(std::size_t(std::max(lwork, lwork_wide)) * 2));
  int *dInfo = to_device(std::vector<int>{-99});
  auto call = [&](signed char ju, signed char jv, int mm, int nn, int ld, int ldu, int ldvt,
                  int lw) {
    return cusolverDnDgesvd(h, ju, jv, mm, nn, dA, ld, dS, dU, ldu, dVT, ldvt, dW, lw, nullptr,
                            dInfo);
  };
  const cusolverStatus_t bad = CUSOLVER_STATUS_INVALID_VALUE;
  CHECK(call('S', 'S', n, m, n, n, n, lwork_wide) == bad, "gesvd m < n must be INVALID_VALUE");
  CHECK(call('S', 'S', m, n, lda, m, n, lwork - 1) == bad, "gesvd lwork < bufferSize");
  CHECK(call('X', 'S', m, n, lda, m, n, lwork) == bad, "gesvd jobu 'X'");
  CHECK(call('O', 'O', m, n, lda, m, n, lwork) == bad, "gesvd jobu = jobvt = 'O'");
  CHECK(call('S', 'S', m, n, m - 1, m, n, lwork) == bad, "gesvd lda < m");
  CHECK(call('S', 'S', m, n, lda, m - 1, n, lwork) == bad, "gesvd ldu < m");
  CHECK(call('S', 'A', m, n, lda, m, n - 1, lwork) == bad, "gesvd ldvt < n");
  CHECK(to_host(dInfo, 1)[0] == -99, "a rejected gesvd must queue nothing");
  CHECK(cusolverDnDgesvd(nullptr, 'S', 'S', m, n, dA, lda, dS, dU, m, dVT, n, dW, lwork, nullptr,
                         dInfo) == CUSOLVER_STATUS_NOT_INITIALIZED,
        "gesvd NULL handle");
  expect_fatal("gesvd work smaller than lwork", "work", [&] {
    cusolverDnDgesvd(h, 'S', 'S', m, n, dA, lda, dS, dU, m, dVT, n, dW,
                     2 * std::max(lwork, lwork_wide) + 1, nullptr, dInfo);
  });
  expect_fatal("gesvd A past the allocation", "cusolverDnDgesvd: A", [&] {
    cusolverDnDgesvd(h, 'S', 'S', m, n, dA, lda + 1, dS, dU, m, dVT, n, dW, lwork, nullptr, dInfo);
  });
  for (void *p : {(void *)dA, (void *)dS, (void *)dU, (void *)dVT, (void *)dW, (void *)dInfo})
    cudaFree(p);
}

/* A symmetric positive definite n x n matrix in an lda x n buffer (NaN padding). */
std::vector<double> spd_matrix(int n, int lda) {
  auto M = random_matrix<double>(n, n, n);
  std::vector<double> A(std::size_t(lda) * n, kNaN);
  for (int j = 0; j < n; j++)
    for (int i = 0; i < n; i++) {
      double x = i == j ? n : 0.0;
      for (int l = 0; l < n; l++)
        x += M[i + std::size_t(l) * n] * M[j + std::size_t(l) * n];
      A[i + std::size_t(j) * lda] = x;
    }
  return A;
}

/* potrf (factor) then optionally potri; the other triangle must be left as it was. */
int run_potr(cusolverDnHandle_t h, cudaStream_t s, cublasFillMode_t uplo, std::vector<double> &A,
             int n, int lda, bool inverse) {
  int lwork = 0;
  CHECK(cusolverDnDpotrf_bufferSize(h, uplo, n, nullptr, lda, &lwork) == 0, "potrf bufferSize");
  int lwork_i = 0;
  CHECK(cusolverDnDpotri_bufferSize(h, uplo, n, nullptr, lda, &lwork_i) == 0, "potri bufferSize");
  lwork = std::max(lwork, lwork_i);
  double *dA = to_device(A), *dW = to_device(std::vector<double>(std::max(lwork, 1)));
  int *dInfo = to_device(std::vector<int>{-99});
  CHECK(cusolverDnDpotrf(h, uplo, n, dA, lda, dW, lwork, dInfo) == 0, "potrf status");
  if (inverse) {
    cudaStreamSynchronize(s);
    CHECK(to_host(dInfo, 1)[0] == 0, "potrf before potri failed");
    CHECK(cusolverDnDpotri(h, uplo, n, dA, lda, dW, lwork, dInfo) == 0, "potri status");
  }
  cudaStreamSynchronize(s);
  A = to_host(dA, A.size());
  const int info = to_host(dInfo, 1)[0];
  cudaFree(dA);
  cudaFree(dW);
  cudaFree(dInfo);
  return info;
}

void test_potrf_potri(cusolverDnHandle_t h, cudaStream_t s) {
  const int n = 5, lda = n + 2;
  for (cublasFillMode_t uplo : {CUBLAS_FILL_MODE_LOWER, CUBLAS_FILL_MODE_UPPER}) {
    const bool lower = uplo == CUBLAS_FILL_MODE_LOWER;
    auto A = spd_matrix(n, lda);
    /* A sentinel in the unreferenced triangle: it must come back unchanged. */
    for (int j = 0; j < n; j++)
      for (int i = 0; i < n; i++)
        if (lower ? i < j : i > j) A[i + std::size_t(j) * lda] = 1234.5;
    auto F = A;
    CHECK(run_potr(h, s, uplo, F, n, lda, false) == 0, "potrf devInfo");
    double err = 0.0;
    bool other_ok = true;
    for (int j = 0; j < n; j++)
      for (int i = 0; i < n; i++) {
        if (lower ? i < j : i > j) {
          other_ok = other_ok && F[i + std::size_t(j) * lda] == 1234.5;
          continue;
        }
        double x = 0.0; /* (L L^T)(i,j) or (U^T U)(i,j) */
        for (int l = 0; l <= std::min(i, j); l++)
          x += lower ? F[i + std::size_t(l) * lda] * F[j + std::size_t(l) * lda]
                     : F[l + std::size_t(i) * lda] * F[l + std::size_t(j) * lda];
        err = std::max(err, std::fabs(x - A[i + std::size_t(j) * lda]));
      }
    CHECK(err < 1e-12, "potrf %c: factor rebuilds A within %g", lower ? 'L' : 'U', err);
    CHECK(other_ok, "potrf %c wrote the other triangle", lower ? 'L' : 'U');
    auto Inv = A;
    CHECK(run_potr(h, s, uplo, Inv, n, lda, true) == 0, "potri devInfo");
    err = 0.0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double x = 0.0;
        for (int l = 0; l < n; l++) {
          const bool stored = lower ? l >= j : l <= j;
          const double inv = stored ? Inv[l + std::size_t(j) * lda] : Inv[j + std::size_t(l) * lda];
          const bool a_stored = lower ? i >= l : i <= l;
          const double a = a_stored ? A[i + std::size_t(l) * lda] : A[l + std::size_t(i) * lda];
          x += a * inv;
        }
        err = std::max(err, std::fabs(x - (i == j)));
      }
    CHECK(err < 1e-12, "potri %c: A * inverse differs from I by %g", lower ? 'L' : 'U', err);
  }
  /* Not positive definite at order 2. */
  std::vector<double> D(std::size_t(3) * 3, 0.0);
  D[0] = 4.0;
  D[4] = -1.0;
  D[8] = 9.0;
  CHECK(run_potr(h, s, CUBLAS_FILL_MODE_LOWER, D, 3, 3, false) == 2,
        "potrf of a non-SPD matrix must report devInfo 2");
  int lwork = -1;
  double *dA = to_device(std::vector<double>(64, 1.0)), *dW = to_device(std::vector<double>(1024));
  int *dInfo = to_device(std::vector<int>{-99});
  cusolverDnDpotrf_bufferSize(h, CUBLAS_FILL_MODE_LOWER, 4, dA, 4, &lwork);
  CHECK(cusolverDnDpotrf(h, CUBLAS_FILL_MODE_LOWER, 4, dA, 3, dW, lwork, dInfo) ==
            CUSOLVER_STATUS_INVALID_VALUE,
        "potrf lda < n");
  CHECK(cusolverDnDpotrf(h, CUBLAS_FILL_MODE_FULL, 4, dA, 4, dW, lwork, dInfo) ==
            CUSOLVER_STATUS_INVALID_VALUE,
        "potrf FULL");
  CHECK(lwork > 0 && cusolverDnDpotrf(h, CUBLAS_FILL_MODE_LOWER, 4, dA, 4, dW, lwork - 1, dInfo) ==
                         CUSOLVER_STATUS_INVALID_VALUE,
        "potrf Lwork < bufferSize");
  CHECK(cusolverDnDpotri_bufferSize(h, CUBLAS_FILL_MODE_UPPER, -1, dA, 4, &lwork) ==
            CUSOLVER_STATUS_INVALID_VALUE,
        "potri bufferSize n < 0");
  CHECK(to_host(dInfo, 1)[0] == -99, "a rejected potrf must queue nothing");
  expect_fatal("potrf devInfo not device memory", "devInfo", [&] {
    int host_info = 0;
    cusolverDnDpotrf(h, CUBLAS_FILL_MODE_LOWER, 4, dA, 4, dW, lwork, &host_info);
  });
  cudaFree(dA);
  cudaFree(dW);
  cudaFree(dInfo);
}

/* ---- NCCL ---------------------------------------------------------------------------- */

void test_nccl_without_mpi() {
  ncclUniqueId a, b;
  CHECK(ncclGetUniqueId(&a) == ncclSuccess && ncclGetUniqueId(&b) == ncclSuccess, "unique id");
  CHECK(std::memcmp(&a, &b, sizeof a) != 0, "two unique ids must differ");
  CHECK(ncclGetUniqueId(nullptr) == ncclInvalidArgument, "ncclGetUniqueId(NULL)");
  ncclComm_t comm = nullptr;
  CHECK(ncclCommInitRank(&comm, 1, a, 0) == ncclInvalidUsage,
        "ncclCommInitRank without MPI must be ncclInvalidUsage");
  CHECK(std::strlen(ncclGetLastError(nullptr)) > 0, "ncclGetLastError after a failure");
  CHECK(std::strlen(ncclGetErrorString(ncclInvalidArgument)) > 0, "ncclGetErrorString");
}

ncclUniqueId shared_id(int rank) {
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (rank == 0) ncclGetUniqueId(&id);
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  return id;
}

template <typename T>
void expect_equal(const char *what, const std::vector<T> &got, const std::vector<T> &want) {
  CHECK(got == want, "%s: result differs", what);
}

void test_nccl(int rank, int size) {
  ncclComm_t comm = nullptr;
  CHECK(ncclCommInitRank(&comm, size, shared_id(rank), rank) == ncclSuccess, "ncclCommInitRank: %s",
        ncclGetLastError(nullptr));
  if (!comm) return;
  cudaStream_t s, other;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking);
  const std::size_t count = 1000;

  /* float32 sum, out of place and in place */
  std::vector<float> xf(count), sumf(count, 0.0f);
  for (std::size_t i = 0; i < count; i++) {
    xf[i] = float(rank + 1) * 0.5f + float(i);
    for (int r = 0; r < size; r++)
      sumf[i] += float(r + 1) * 0.5f + float(i);
  }
  float *dx = to_device(xf), *dy = to_device(std::vector<float>(count));
  CHECK(ncclAllReduce(dx, dy, count, ncclFloat32, ncclSum, comm, s) == ncclSuccess, "allreduce");
  cudaStreamSynchronize(s);
  expect_equal("allreduce f32 sum", to_host(dy, count), sumf);
  expect_equal("allreduce must not change sendbuff", to_host(dx, count), xf);
  CHECK(ncclAllReduce(dx, dx, count, ncclFloat32, ncclSum, comm, s) == ncclSuccess, "in place");
  expect_equal("allreduce f32 sum in place", to_host(dx, count), sumf);
  std::vector<float> avg(sumf);
  for (float &v : avg)
    v /= float(size);
  cudaMemcpy(dx, xf.data(), count * sizeof(float), cudaMemcpyHostToDevice);
  CHECK(ncclAllReduce(dx, dy, count, ncclFloat32, ncclAvg, comm, s) == ncclSuccess, "avg");
  expect_equal("allreduce f32 avg", to_host(dy, count), avg);

  /* int32 max / min, float64 prod, int64 sum past 2^32, uint8 sum */
  std::vector<int> xi = {rank * 10 - 5, -rank, 7 + rank};
  int *di = to_device(xi), *dio = to_device(std::vector<int>(3));
  CHECK(ncclAllReduce(di, dio, 3, ncclInt32, ncclMax, comm, s) == ncclSuccess, "max");
  expect_equal("allreduce i32 max", to_host(dio, 3),
               std::vector<int>{(size - 1) * 10 - 5, 0, 7 + size - 1});
  CHECK(ncclAllReduce(di, dio, 3, ncclInt32, ncclMin, comm, s) == ncclSuccess, "min");
  expect_equal("allreduce i32 min", to_host(dio, 3), std::vector<int>{-5, -(size - 1), 7});
  double *dd = to_device(std::vector<double>{double(rank + 2), -1.0});
  CHECK(ncclAllReduce(dd, dd, 2, ncclFloat64, ncclProd, comm, s) == ncclSuccess, "prod");
  double prod = 1.0;
  for (int r = 0; r < size; r++)
    prod *= r + 2;
  expect_equal("allreduce f64 prod", to_host(dd, 2),
               std::vector<double>{prod, size % 2 ? -1.0 : 1.0});
  std::int64_t big = (std::int64_t(1) << 40) + rank;
  std::int64_t *dl = to_device(std::vector<std::int64_t>{big});
  CHECK(ncclAllReduce(dl, dl, 1, ncclInt64, ncclSum, comm, s) == ncclSuccess, "i64");
  expect_equal("allreduce i64 sum", to_host(dl, 1),
               std::vector<std::int64_t>{(std::int64_t(1) << 40) * size + size * (size - 1) / 2});
  std::uint8_t *du = to_device(std::vector<std::uint8_t>{std::uint8_t(rank + 1), 3});
  CHECK(ncclAllReduce(du, du, 2, ncclUint8, ncclSum, comm, s) == ncclSuccess, "u8");
  expect_equal(
      "allreduce u8 sum", to_host(du, 2),
      std::vector<std::uint8_t>{std::uint8_t(size * (size + 1) / 2), std::uint8_t(3 * size)});

  /* broadcast from the last rank, in place and out of place (sendbuff ignored off root) */
  const int root = size - 1;
  std::vector<double> mine = {double(rank), double(rank) * 2, 42.0};
  std::vector<double> roots = {double(root), double(root) * 2, 42.0};
  double *db = to_device(mine);
  CHECK(ncclBroadcast(db, db, 3, ncclFloat64, root, comm, s) == ncclSuccess, "bcast");
  expect_equal("broadcast in place", to_host(db, 3), roots);
  double *dsrc = to_device(mine), *ddst = to_device(std::vector<double>(3));
  CHECK(ncclBroadcast(rank == root ? dsrc : nullptr, ddst, 3, ncclFloat64, root, comm, s) ==
            ncclSuccess,
        "bcast out of place");
  expect_equal("broadcast out of place", to_host(ddst, 3), roots);

  /* all-gather: in place (send = recv + rank * count) and out of place */
  const std::size_t per = 5;
  std::vector<int> all(per * size);
  for (std::size_t i = 0; i < all.size(); i++)
    all[i] = int(100 * (i / per) + i % per);
  std::vector<int> block(all.begin() + per * rank, all.begin() + per * (rank + 1));
  std::vector<int> recv_init(per * size, -1);
  std::copy(block.begin(), block.end(), recv_init.begin() + per * rank);
  int *dr = to_device(recv_init);
  CHECK(ncclAllGather(dr + per * rank, dr, per, ncclInt32, comm, s) == ncclSuccess, "allgather");
  expect_equal("allgather in place", to_host(dr, all.size()), all);
  int *dblock = to_device(block), *dr2 = to_device(std::vector<int>(per * size, -1));
  CHECK(ncclAllGather(dblock, dr2, per, ncclInt32, comm, s) == ncclSuccess, "allgather");
  expect_equal("allgather out of place", to_host(dr2, all.size()), all);

  /* A collective waits for its own stream only: a copy queued on `other` is not seen until
   * `other` is synchronized; one queued on `s` is. */
  std::vector<float> ones(count, 1.0f), twos(count, 2.0f);
  float *dsrc1 = to_device(twos);
  cudaMemcpy(dx, ones.data(), count * sizeof(float), cudaMemcpyHostToDevice);
  cudaMemcpyAsync(dx, dsrc1, count * sizeof(float), cudaMemcpyDeviceToDevice, other);
  CHECK(ncclAllReduce(dx, dy, count, ncclFloat32, ncclSum, comm, s) == ncclSuccess, "stale");
  expect_equal("collective must not wait for another stream", to_host(dy, count),
               std::vector<float>(count, float(size)));
  cudaStreamSynchronize(other);
  cudaMemcpy(dx, ones.data(), count * sizeof(float), cudaMemcpyHostToDevice);
  cudaMemcpyAsync(dx, dsrc1, count * sizeof(float), cudaMemcpyDeviceToDevice, s);
  CHECK(ncclAllReduce(dx, dy, count, ncclFloat32, ncclSum, comm, s) == ncclSuccess, "ordered");
  expect_equal("collective must follow its own stream's work", to_host(dy, count),
               std::vector<float>(count, 2.0f * float(size)));

  /* invalid arguments */
  CHECK(ncclBroadcast(db, db, 3, ncclFloat64, size, comm, s) == ncclInvalidArgument, "root");
  CHECK(ncclAllReduce(dx, dy, 4, ncclDataType_t(42), ncclSum, comm, s) == ncclInvalidArgument,
        "bad datatype");
  CHECK(ncclAllReduce(dx, dy, 4, ncclFloat32, ncclRedOp_t(9), comm, s) == ncclInvalidArgument,
        "bad op");
  CHECK(ncclAllReduce(dx, dy, 4, ncclFloat32, ncclSum, nullptr, s) == ncclInvalidArgument,
        "NULL comm");
  CHECK(std::strlen(ncclGetLastError(comm)) > 0, "last error after a failure");

  /* ncclCommInitRank failures reach every rank alike (no hang) */
  ncclComm_t bad = nullptr;
  CHECK(ncclCommInitRank(&bad, size + 1, shared_id(rank), rank) != ncclSuccess && !bad,
        "nranks larger than the job must fail");
  ncclUniqueId zero;
  std::memset(&zero, 0, sizeof zero);
  CHECK(ncclCommInitRank(&bad, size, zero, rank) != ncclSuccess && !bad,
        "an id not from ncclGetUniqueId must fail");
  if (size > 1)
    CHECK(ncclCommInitRank(&bad, size, shared_id(rank), 0) != ncclSuccess && !bad,
          "the same rank on every process must fail");
  CHECK(ncclCommInitRank(&bad, size, shared_id(rank), size) == ncclInvalidArgument && !bad,
        "rank >= nranks must be ncclInvalidArgument");

  ncclComm_t second = nullptr;
  CHECK(ncclCommInitRank(&second, size, shared_id(rank), rank) == ncclSuccess, "second comm");
  CHECK(ncclCommAbort(second) == ncclSuccess, "ncclCommAbort");
  CHECK(ncclCommDestroy(comm) == ncclSuccess, "ncclCommDestroy");
  CHECK(ncclCommDestroy(nullptr) == ncclSuccess, "ncclCommDestroy(NULL)");
  for (void *p : {(void *)dx, (void *)dy, (void *)di, (void *)dio, (void *)dd, (void *)dl,
                  (void *)du, (void *)db, (void *)dsrc, (void *)ddst, (void *)dr, (void *)dblock,
                  (void *)dr2, (void *)dsrc1})
    cudaFree(p);
  cudaStreamDestroy(s);
  cudaStreamDestroy(other);
}

} // namespace

int main(int argc, char **argv) {
  /* rank of this process before MPI_Init, for messages; MPI itself starts after the death
   * tests, which fork. */
  if (const char *r = getenv("OMPI_COMM_WORLD_RANK")) world_rank = atoi(r);
  rng.seed(12345u + unsigned(world_rank));

  cublasHandle_t blas = nullptr;
  CHECK(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
  test_sgemm(blas);
  test_sgemm_beta_zero_and_k_zero(blas);
  test_sgemm_invalid(blas);
  test_sgemm_strided_batched(blas);
  test_math_modes(blas);
  test_dgemm(blas);
  test_dsyrk(blas);
  test_dtrsm(blas);
  test_dgeam(blas);
  test_cublas_fatal(blas);
  /* The same on a stream of its own. */
  cudaStream_t bs;
  cudaStreamCreate(&bs);
  CHECK(cublasSetStream(blas, bs) == CUBLAS_STATUS_SUCCESS, "cublasSetStream");
  test_sgemm(blas);
  CHECK(cublasDestroy(blas) == CUBLAS_STATUS_SUCCESS, "cublasDestroy");
  cudaStreamDestroy(bs);

  cusolverDnHandle_t solver = nullptr;
  CHECK(cusolverDnCreate(&solver) == CUSOLVER_STATUS_SUCCESS, "cusolverDnCreate");
  cudaStream_t ss;
  cudaStreamCreateWithFlags(&ss, cudaStreamNonBlocking);
  CHECK(cusolverDnSetStream(solver, ss) == CUSOLVER_STATUS_SUCCESS, "cusolverDnSetStream");
  test_gesvd(solver, ss);
  test_potrf_potri(solver, ss);
  CHECK(cusolverDnDestroy(solver) == CUSOLVER_STATUS_SUCCESS, "cusolverDnDestroy");
  cudaStreamDestroy(ss);

  test_nccl_without_mpi();
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  world_rank = rank;
  test_nccl(rank, size);
  MPI_Finalize();
  ncclComm_t late = nullptr;
  CHECK(ncclCommInitRank(&late, 1, ncclUniqueId{}, 0) == ncclInvalidUsage,
        "ncclCommInitRank after MPI_Finalize must be ncclInvalidUsage");

  if (failures) {
    fprintf(stderr, "test_cudasim_libs [rank %d]: %d check(s) failed\n", world_rank, failures);
    return 1;
  }
  printf("test_cudasim_libs [rank %d of %d]: all checks passed\n", world_rank, size);
  return 0;
}
