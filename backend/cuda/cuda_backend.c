/* The CUDA backend: device memory (a caching pool of CUDA's stream-ordered allocator, or
 * cudaMalloc; never managed memory), GEMM through cuBLAS
 * and the kernels of cuda_kernels.cu, the compression ops of cuda_compress_ops.c (cuSOLVER
 * and cuda_compress_kernels.cu), all queued on one stream of our own. Operations are
 * asynchronous; download and synchronize wait for the stream. Compiled only with CUDA. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_kernels.h"

/* The training kernels (cuda_train_ops.c). */
extern const struct rcc_backend_train_ops rcc_cuda_train_ops;

int rcc_backend_cuda_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError(); /* no driver or no device: clear the error, report none */
    return 0;
  }
  return count;
}

static void cuda_destroy(rcc_backend_t be) {
  cuda_impl_t *m = impl_of(be);
  if (m) {
    cudaSetDevice(m->device);
    /* Blocks still queued for release must be released before the pool goes; a pool with
     * live allocations is destroyed by CUDA once they are freed. */
    if (m->stream) cudaStreamSynchronize(m->stream);
    if (m->pool) cudaMemPoolDestroy(m->pool);
    if (m->cusolver) cusolverDnDestroy(m->cusolver);
    if (m->cublas) cublasDestroy(m->cublas);
    if (m->stream) cudaStreamDestroy(m->stream);
    free(m);
  }
  free(be);
}

/* The GPU runs its own threads; the CPU thread count does not apply. */
static void cuda_set_threads(rcc_backend_t be, int threads) {}

/* Records the failure and returns NULL, as rcc_backend_alloc promises. */
/* From the pool the allocation is ordered on our stream: every op that uses a buffer is
 * queued on that stream too, and copies and collectives on other streams synchronize first
 * (cuda_copy, comm_backend.c), so a block released by one layer is safely reused by the
 * next without waiting for the device. */
static void *cuda_alloc(rcc_backend_t be, size_t bytes) {
  cuda_impl_t *m = impl_of(be);
  void *p = NULL;
  /* An allocation of 0 bytes gives NULL, which callers would take for a failure. */
  const size_t n = bytes == 0 ? 256 : bytes;
  cudaError_t err = cudaSetDevice(m->device);
  if (err == cudaSuccess)
    err = m->pool ? cudaMallocFromPoolAsync(&p, n, m->pool, m->stream) : cudaMalloc(&p, n);
  if (err == cudaErrorMemoryAllocation && m->pool) {
    /* The pool's idle blocks may be the wrong sizes: hand them back to the device (once the
     * work queued on them is done) and try once more. */
    cudaGetLastError();
    err = cudaStreamSynchronize(m->stream);
    if (err == cudaSuccess) err = cudaMemPoolTrimTo(m->pool, 0);
    if (err == cudaSuccess) err = cudaMallocFromPoolAsync(&p, n, m->pool, m->stream);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    rcc_fail(err == cudaErrorMemoryAllocation ? RCC_ERR_NOMEM : RCC_ERR_CUDA,
             "cuda_backend.c: alloc: %s of %zu bytes on %s failed: %s",
             m->pool ? "cudaMallocFromPoolAsync" : "cudaMalloc", bytes, be->description,
             cudaGetErrorString(err));
    return NULL;
  }
  return p;
}

static void cuda_release(rcc_backend_t be, void *ptr) {
  cuda_impl_t *m = impl_of(be);
  if (!ptr) return;
  cudaError_t err = cudaSetDevice(m->device);
  if (err == cudaSuccess) err = m->pool ? cudaFreeAsync(ptr, m->stream) : cudaFree(ptr);
  /* Release cannot fail to its caller; leave no error behind for the next launch to report
   * as its own (a real fault is sticky and shows on the next synchronizing call anyway). */
  if (err != cudaSuccess) cudaGetLastError();
}

/* The pool of cuda_alloc, where the device supports memory pools. Its release threshold is
 * the whole address space: freed blocks stay cached until the backend is destroyed (the
 * caching allocator's trade: peak memory stays reserved, as in PyTorch). */
static rcc_status_t create_pool(cuda_impl_t *m) {
  int supported = 0;
  RCC_CHECK_CUDA(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, m->device));
  if (!supported) return RCC_OK;
  struct cudaMemPoolProps props = {0};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = m->device;
  RCC_CHECK_CUDA(cudaMemPoolCreate(&m->pool, &props));
  uint64_t keep_all = UINT64_MAX;
  RCC_CHECK_CUDA(cudaMemPoolSetAttribute(m->pool, cudaMemPoolAttrReleaseThreshold, &keep_all));
  return RCC_OK;
}

/* cudaMemcpyDefault lets unified addressing tell host from device pointers, so the same
 * function serves upload and download. The copy is complete when this returns (the host
 * buffer may be freed or read at once). */
static rcc_status_t cuda_copy(rcc_backend_t be, void *dst, const void *src, size_t bytes) {
  cuda_impl_t *m = impl_of(be);
  ENTER(be);
  RCC_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, m->stream));
  RCC_CHECK_CUDA(cudaStreamSynchronize(m->stream));
  return RCC_OK;
}

static rcc_status_t cuda_synchronize(rcc_backend_t be) {
  ENTER(be);
  RCC_CHECK_CUDA(cudaStreamSynchronize(impl_of(be)->stream));
  return RCC_OK;
}

/* Row-major through column-major cuBLAS: a row-major (M,N) matrix is the column-major
 * (N,M) matrix with the same leading dimension, i.e. its transpose. So row-major
 * C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands (B first) and
 * the sizes (N before M), keep each operand's own transpose flag and leading dimension. */
static rcc_status_t cuda_gemm_strided_batched(rcc_backend_t be, bool ta, bool tb, int M, int N,
                                              int K, float alpha, const float *A, int lda,
                                              int64_t sa, const float *B, int ldb, int64_t sb,
                                              float beta, float *C, int ldc, int64_t sc,
                                              int batch) {
  cuda_impl_t *m = impl_of(be);
  ENTER(be);
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1)
    RCC_CHECK_CUBLAS(
        cublasSgemm(m->cublas, opb, opa, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
  else
    RCC_CHECK_CUBLAS(cublasSgemmStridedBatched(m->cublas, opb, opa, N, M, K, &alpha, B, ldb, sb, A,
                                               lda, sa, &beta, C, ldc, sc, batch));
  return RCC_OK;
}

static rcc_status_t cuda_layernorm(rcc_backend_t be, float *out, const float *inp, const float *w,
                                   const float *b, int N, int C, float eps) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_layernorm(impl_of(be)->stream, out, inp, w, b, N, C, eps));
  return RCC_OK;
}

static rcc_status_t cuda_softmax(rcc_backend_t be, float *x, int R, int L, float scale,
                                 int causal_T, const uint8_t *key_valid, int rows_per_key) {
  ENTER(be);
  RCC_CHECK_CUDA(
      rcc_cuda_softmax(impl_of(be)->stream, x, R, L, scale, causal_T, key_valid, rows_per_key));
  return RCC_OK;
}

static rcc_status_t cuda_activation(rcc_backend_t be, rcc_activation_t act, float *x, int64_t n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_activation(impl_of(be)->stream, act, x, n));
  return RCC_OK;
}

static rcc_status_t cuda_add_bias(rcc_backend_t be, float *x, const float *bias, int N, int C) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_add_bias(impl_of(be)->stream, x, bias, N, C));
  return RCC_OK;
}

static rcc_status_t cuda_add(rcc_backend_t be, float *out, const float *a, const float *b,
                             int64_t n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_add(impl_of(be)->stream, out, a, b, n));
  return RCC_OK;
}

static rcc_status_t cuda_scale(rcc_backend_t be, float *x, float s, int64_t n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_scale(impl_of(be)->stream, x, s, n));
  return RCC_OK;
}

static rcc_status_t cuda_l2_normalize_rows(rcc_backend_t be, float *x, int N, int C) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_l2_normalize_rows(impl_of(be)->stream, x, N, C));
  return RCC_OK;
}

static const rcc_backend_ops_t cuda_ops = {
    .destroy = cuda_destroy,
    .set_threads = cuda_set_threads,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .upload = cuda_copy,
    .download = cuda_copy,
    .synchronize = cuda_synchronize,
    .gemm_strided_batched = cuda_gemm_strided_batched,
    .layernorm = cuda_layernorm,
    .softmax = cuda_softmax,
    .activation = cuda_activation,
    .add_bias = cuda_add_bias,
    .add = cuda_add,
    .scale = cuda_scale,
    .l2_normalize_rows = cuda_l2_normalize_rows,
    .svd_f64 = rcc_cuda_svd_f64,
    .cholesky_f64 = rcc_cuda_cholesky_f64,
    .cholesky_inverse_f64 = rcc_cuda_cholesky_inverse_f64,
    .row_topk_mask = rcc_cuda_row_topk_mask,
    .threshold_mask = rcc_cuda_threshold_mask,
    .nm_mask = rcc_cuda_nm_mask,
    .apply_mask = rcc_cuda_apply_mask,
    .scale_rows = rcc_cuda_scale_rows,
    .gram_f64 = rcc_cuda_gram_f64,
    .train = &rcc_cuda_train_ops,
    .gemm_f64 = rcc_cuda_gemm_f64,
    .trsm_f64 = rcc_cuda_trsm_f64,
    .f32_to_f64 = rcc_cuda_f32_to_f64,
    .f64_to_f32 = rcc_cuda_f64_to_f32,
    .row_dots_f64 = rcc_cuda_row_dots_f64,
    .prune_scores = rcc_cuda_prune_scores,
    .obs_sweep_f64 = rcc_cuda_obs_sweep_f64,
};

/* Stream, cuBLAS handle (bound to the stream) and the description. cuBLAS stays in its
 * default math mode: plain FP32, no TF32 tensor cores, so GEMMs agree with the CPU
 * reference to ~1e-6 instead of TF32's ~1e-3. */
static rcc_status_t cuda_setup(rcc_backend_t be, cuda_impl_t *m) {
  RCC_CHECK_CUDA(cudaSetDevice(m->device));
  RCC_CHECK_CUDA(cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking));
  RCC_TRY(create_pool(m));
  RCC_CHECK_CUBLAS(cublasCreate(&m->cublas));
  RCC_CHECK_CUBLAS(cublasSetStream(m->cublas, m->stream));
  RCC_CHECK_CUBLAS(cublasSetMathMode(m->cublas, CUBLAS_DEFAULT_MATH));
  struct cudaDeviceProp prop;
  RCC_CHECK_CUDA(cudaGetDeviceProperties(&prop, m->device));
  /* nvidia-smi's spelling, GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, so that users can
   * match the placement log with `nvidia-smi -L` */
  const unsigned char *u = (const unsigned char *)prop.uuid.bytes;
  snprintf(be->device_id, sizeof be->device_id,
           "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
           u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
           u[15]);
  snprintf(be->description, sizeof be->description, "cuda:%d (%.200s, %.0f GiB)", m->device,
           prop.name, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
  return RCC_OK;
}

rcc_status_t rcc_backend_cuda_create(rcc_backend_t *out, int device) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "cuda_backend.c: backend 'cuda:%d' requested but no CUDA device is visible "
                    "(cudaGetDeviceCount: %s); use \"cpu\" or \"auto\"",
                    device, err == cudaSuccess ? "0 devices" : cudaGetErrorString(err));
  }
  if (device < 0 || device >= count)
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "cuda_backend.c: backend 'cuda:%d' requested but only %d CUDA device%s "
                    "visible (cuda:0..cuda:%d)",
                    device, count, count == 1 ? " is" : "s are", count - 1);
  rcc_backend_t be = calloc(1, sizeof *be);
  cuda_impl_t *m = calloc(1, sizeof *m);
  if (!be || !m) {
    free(be);
    free(m);
    return rcc_fail(RCC_ERR_NOMEM, "cuda_backend.c: rcc_backend_cuda_create: out of memory");
  }
  be->ops = &cuda_ops;
  be->kind = RCC_BACKEND_CUDA;
  be->impl = m;
  m->device = device;
  rcc_status_t st = cuda_setup(be, m);
  if (st != RCC_OK) {
    cuda_destroy(be);
    return rcc_fail_context(st, "cuda_backend.c: creating backend cuda:%d", device);
  }
  *out = be;
  return RCC_OK;
}
