/* The CPU backend: host memory, GEMM through OpenBLAS's cblas_sgemm, threads shared by
 * OpenBLAS and OpenMP, and the function table that plugs the kernels of cpu_ops.c into
 * rcc_backend_t. The readable reference every other backend is tested against. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"

/* A GEMM with at most this many multiply-adds (M*N*K) counts as small: e.g. attention's
 * (T,64)x(64,T) scores and (T,T)x(T,64) context products for T up to ~250. */
#define SMALL_GEMM_MACS ((int64_t)1 << 22)

static void cpu_describe(rcc_backend_t be) {
  /* openblas_get_config() reads "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell ...":
   * keep the name and the version. */
  char name[32] = "OpenBLAS", version[32] = "";
  const char *config = openblas_get_config();
  if (config) sscanf(config, "%31s %31s", name, version);
  int threads = openblas_get_num_threads();
  snprintf(be->description, sizeof be->description, "cpu (%s%s%s, %d thread%s)", name,
           version[0] ? " " : "", version, threads, threads == 1 ? "" : "s");
}

static void cpu_destroy(rcc_backend_t be) { free(be); }

static void cpu_set_threads(rcc_backend_t be, int threads) {
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);
  cpu_describe(be);
}

/* 64-byte aligned (a cache line, an AVX-512 vector), size rounded up to a multiple of 64
 * as aligned_alloc requires. */
static void *cpu_alloc(rcc_backend_t be, size_t bytes) {
  if (bytes > SIZE_MAX - 64) {
    rcc_fail(RCC_ERR_NOMEM, "cpu_backend.c: alloc: %zu bytes is past the address space", bytes);
    return NULL;
  }
  size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, rounded);
  if (!p)
    rcc_fail(RCC_ERR_NOMEM, "cpu_backend.c: alloc: out of memory allocating %zu bytes", bytes);
  return p;
}

static void cpu_release(rcc_backend_t be, void *ptr) { free(ptr); }

/* Host to host: upload and download are both a copy. */
static rcc_status_t cpu_copy(rcc_backend_t be, void *dst, const void *src, size_t bytes) {
  if (dst != src) memmove(dst, src, bytes);
  return RCC_OK;
}

static rcc_status_t cpu_synchronize(rcc_backend_t be) { return RCC_OK; }

/* C (M,N) = alpha op(A) op(B) + beta C for `batch` matrices, row-major.
 *
 * Threading. OpenBLAS parallelises one GEMM by splitting it into panels, one per thread,
 * and joins the threads at the end. For a large GEMM (the MLP and QKV projections,
 * (B*T, 768) x (768, 3072)) that is the right thing, so a single or a large GEMM goes to
 * OpenBLAS whole. Attention's batched GEMMs are the opposite case: B*H independent
 * products of (T,64)x(64,T) or (T,T)x(T,64) with T ~ 50..200, i.e. 0.3 to 5 MFLOP each,
 * which one core finishes in 10-200 us; splitting each of them across threads costs a
 * wake-up and a join per matrix, of the same order as the work itself, and leaves each
 * thread tiny panels. Independent matrices need no join until the end, so for a batch of
 * small GEMMs we run whole matrices in parallel with OpenMP (static schedule: equal work
 * per matrix) and keep OpenBLAS single-threaded meanwhile, so that the two thread pools
 * do not oversubscribe the cores. Measured on 2 cores, 192 products (T,64)x(64,T):
 * T=50: 4.0 ms threaded one by one, 1.0 ms over the batch; T=77: 32 ms vs 2.8 ms. */
static rcc_status_t cpu_gemm_strided_batched(rcc_backend_t be, bool ta, bool tb, int M, int N,
                                             int K, float alpha, const float *A, int lda,
                                             int64_t sa, const float *B, int ldb, int64_t sb,
                                             float beta, float *C, int ldc, int64_t sc, int batch) {
  enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
  int blas_threads = openblas_get_num_threads();
  bool small = (int64_t)M * N * K <= SMALL_GEMM_MACS;
  if (batch > 1 && small && omp_get_max_threads() > 1) {
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < batch; i++)
      cblas_sgemm(CblasRowMajor, opa, opb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta,
                  C + i * sc, ldc);
    openblas_set_num_threads(blas_threads);
    return RCC_OK;
  }
  for (int i = 0; i < batch; i++)
    cblas_sgemm(CblasRowMajor, opa, opb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta,
                C + i * sc, ldc);
  return RCC_OK;
}

static const rcc_backend_ops_t cpu_ops = {
    .destroy = cpu_destroy,
    .set_threads = cpu_set_threads,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .synchronize = cpu_synchronize,
    .gemm_strided_batched = cpu_gemm_strided_batched,
    .layernorm = rcc_cpu_layernorm,
    .softmax = rcc_cpu_softmax,
    .activation = rcc_cpu_activation,
    .add_bias = rcc_cpu_add_bias,
    .add = rcc_cpu_add,
    .scale = rcc_cpu_scale,
    .l2_normalize_rows = rcc_cpu_l2_normalize_rows,
};

rcc_status_t rcc_backend_cpu_create(rcc_backend_t *out) {
  rcc_backend_t be = calloc(1, sizeof *be);
  if (!be) return rcc_fail(RCC_ERR_NOMEM, "cpu_backend.c: rcc_backend_cpu_create: out of memory");
  be->ops = &cpu_ops;
  be->kind = RCC_BACKEND_CPU;
  be->impl = NULL; /* no state: OpenBLAS and OpenMP keep their own */
  cpu_describe(be);
  *out = be;
  return RCC_OK;
}
