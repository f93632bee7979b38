/* The CPU backend: host memory, GEMM through OpenBLAS's cblas_sgemm, threads shared by
 * OpenBLAS and OpenMP, and the function table that plugs the kernels of cpu_ops.c and
 * cpu_compress_ops.c into rcc_backend_t. The readable reference every other backend is
 * tested against. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_compress_ops.h"
#include "backend/cpu/cpu_ops.h"

/* The training kernels (cpu_train_ops.c). */
extern const struct rcc_backend_train_ops rcc_cpu_train_ops;

/* A GEMM with at most this many multiply-adds (M*N*K) counts as small: e.g. attention's
 * (T,64)x(64,T) scores and (T,T)x(T,64) context products for T up to ~250. */
#define SMALL_GEMM_MACS ((int64_t)1 << 22)

static void cpu_describe(rcc_backend_t be) {
  /* openblas_get_config() reads "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell ...":
   * keep the name and the version. */
  char name[32] = "OpenBLAS", version[32] = "";
  const char *config = openblas_get_config();
  if (config) sscanf(config, "%31s %31s", name, version);
  int threads = omp_get_max_threads();
  snprintf(be->description, sizeof be->description, "cpu (%s%s%s, %d thread%s)", name,
           version[0] ? " " : "", version, threads, threads == 1 ? "" : "s");
}

static void cpu_destroy(rcc_backend_t be) { free(be); }

static void cpu_set_threads(rcc_backend_t be, int threads) {
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
 * Threading: one pool, OpenMP's. OpenBLAS runs single-threaded inside our parallel
 * regions. With OpenBLAS's own pthread pool beside OpenMP's, each pool's idle threads
 * spin while the other works: on 2 cores perf showed 29% of a ViT-B/32 forward spent
 * spinning in OpenMP and 2 threads slower than 1 (bench/forward). So:
 *  - a batch of small GEMMs (attention: B*H products of (T,64)x(64,T), 10-200 us each)
 *    runs whole matrices in parallel, no join per matrix (2 cores, 192 products at T=77:
 *    2.8 ms against 32 ms threaded one by one);
 *  - one large GEMM (projections, MLP: (B*T, 768) x (768, 3072)) is split into one block of
 *    rows of C per thread (columns when there are too few rows); each thread packs its own
 *    panels, which costs a few percent against OpenBLAS's shared packing but keeps one pool. */
static void gemm_block(enum CBLAS_TRANSPOSE opa, enum CBLAS_TRANSPOSE opb, int M, int N, int K,
                       float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                       float *C, int ldc) {
  const int threads = omp_get_max_threads();
  if (threads <= 1 || (int64_t)M * N * K <= SMALL_GEMM_MACS) {
    cblas_sgemm(CblasRowMajor, opa, opb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const bool by_rows = M >= 16 * threads;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int total = by_rows ? M : N;
    const int lo = (int)((int64_t)total * t / nt), hi = (int)((int64_t)total * (t + 1) / nt);
    if (hi > lo) {
      if (by_rows) {
        /* rows lo..hi of op(A) and C; op(A) = A^T reads columns lo..hi of A */
        const float *a = opa == CblasNoTrans ? A + (size_t)lo * lda : A + lo;
        cblas_sgemm(CblasRowMajor, opa, opb, hi - lo, N, K, alpha, a, lda, B, ldb, beta,
                    C + (size_t)lo * ldc, ldc);
      } else {
        /* columns lo..hi of op(B) and C; op(B) = B^T reads rows lo..hi of B */
        const float *b = opb == CblasNoTrans ? B + lo : B + (size_t)lo * ldb;
        cblas_sgemm(CblasRowMajor, opa, opb, M, hi - lo, K, alpha, A, lda, b, ldb, beta, C + lo,
                    ldc);
      }
    }
  }
}

static rcc_status_t cpu_gemm_strided_batched(rcc_backend_t be, bool ta, bool tb, int M, int N,
                                             int K, float alpha, const float *A, int lda,
                                             int64_t sa, const float *B, int ldb, int64_t sb,
                                             float beta, float *C, int ldc, int64_t sc, int batch) {
  enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
  bool small = (int64_t)M * N * K <= SMALL_GEMM_MACS;
  if (batch > 1 && small && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < batch; i++)
      cblas_sgemm(CblasRowMajor, opa, opb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta,
                  C + i * sc, ldc);
    return RCC_OK;
  }
  for (int i = 0; i < batch; i++)
    gemm_block(opa, opb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, ldc);
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
    .svd_f64 = rcc_cpu_svd_f64,
    .cholesky_f64 = rcc_cpu_cholesky_f64,
    .cholesky_inverse_f64 = rcc_cpu_cholesky_inverse_f64,
    .row_topk_mask = rcc_cpu_row_topk_mask,
    .threshold_mask = rcc_cpu_threshold_mask,
    .nm_mask = rcc_cpu_nm_mask,
    .apply_mask = rcc_cpu_apply_mask,
    .scale_rows = rcc_cpu_scale_rows,
    .gram_f64 = rcc_cpu_gram_f64,
    .train = &rcc_cpu_train_ops,
    .gemm_f64 = rcc_cpu_gemm_f64,
    .trsm_f64 = rcc_cpu_trsm_f64,
    .f32_to_f64 = rcc_cpu_f32_to_f64,
    .f64_to_f32 = rcc_cpu_f64_to_f32,
    .row_dots_f64 = rcc_cpu_row_dots_f64,
    .prune_scores = rcc_cpu_prune_scores,
    .obs_sweep_f64 = rcc_cpu_obs_sweep_f64,
};

rcc_status_t rcc_backend_cpu_create(rcc_backend_t *out) {
  rcc_backend_t be = calloc(1, sizeof *be);
  if (!be) return rcc_fail(RCC_ERR_NOMEM, "cpu_backend.c: rcc_backend_cpu_create: out of memory");
  be->ops = &cpu_ops;
  be->kind = RCC_BACKEND_CPU;
  be->impl = NULL; /* no state: OpenBLAS and OpenMP keep their own */
  /* All parallelism is OpenMP's (see cpu_gemm_strided_batched); OpenBLAS stays serial. */
  openblas_set_num_threads(1);
  cpu_describe(be);
  *out = be;
  return RCC_OK;
}
